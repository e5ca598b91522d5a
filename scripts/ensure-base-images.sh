#!/usr/bin/env bash
# Makes every base image that docker/Dockerfile (and the compose overlays) name available in the
# local image store. For each image: use the local one, else `docker pull` (short timeout), else
# build an equivalent from Debian packages and tag it with the same name. Idempotent and fast when
# the images exist (a few `docker image inspect` calls). Prints what it did, one line per image.
# Where a registry answers, `docker compose up` pulls the first two itself and this is not needed:
# the services' runtime is assembled inside docker/Dockerfile from debian:bookworm-slim.
#
#   debian:bookworm-slim        debootstrap --variant=minbase, slimmed as the official image is
#                               (debuerreotype's minimizing config and slimify rules).
#   swift:6.3-bookworm          the official image's recipe: its Debian packages, the toolchain of
#                               this machine (/opt/swift/usr copied into /usr), plus the package
#                               mirror /opt/swift-packages and git's `insteadOf` rules so that
#                               `swift package resolve` works offline inside `docker build`.
#                               On a real CI the official image is pulled and GitHub is reachable;
#                               the extra mirror layer is then simply absent and unused.
#   postgres:15-bookworm        (--postgres, for compose.prod.yaml) pulled, else built from
#                               Debian's postgresql-15 (docker/runtime/postgres/).
#   prom/prometheus:v2.42.0     (--prometheus, for compose.monitoring.yaml) pulled, else built from
#                               Debian's prometheus 2.42 (docker/runtime/prometheus/).
#
# Usage: scripts/ensure-base-images.sh [--postgres] [--prometheus] [--force NAME]...
#   --postgres    also ensure the PostgreSQL image of the prod overlay
#   --prometheus  also ensure the Prometheus image of the monitoring overlay
#   --force NAME  rebuild NAME (debian, swift, postgres or prometheus) even when present
# Environment: DEBIAN_IMAGE, SWIFT_IMAGE, POSTGRES_IMAGE, PROMETHEUS_IMAGE (names),
#   DEBIAN_MIRROR (default http://deb.debian.org/debian), SWIFT_TOOLCHAIN (default /opt/swift),
#   SWIFT_PACKAGES (default /opt/swift-packages), PULL_TIMEOUT (seconds, default 60).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
debian_image=${DEBIAN_IMAGE:-debian:bookworm-slim}
swift_image=${SWIFT_IMAGE:-swift:6.3-bookworm}
postgres_image=${POSTGRES_IMAGE:-postgres:15-bookworm}
prometheus_image=${PROMETHEUS_IMAGE:-prom/prometheus:v2.42.0}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
toolchain=${SWIFT_TOOLCHAIN:-/opt/swift}
packages=${SWIFT_PACKAGES:-/opt/swift-packages}
pull_timeout=${PULL_TIMEOUT:-60}

want_postgres=0
want_prometheus=0
declare -A force=()
while (($#)); do
  case $1 in
    --postgres) want_postgres=1 ;;
    --prometheus) want_prometheus=1 ;;
    --force) force[${2:?--force needs a name}]=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "ensure-base-images: unknown argument $1" >&2; exit 64 ;;
  esac
  shift
done

say() { printf 'ensure-base-images: %s\n' "$*"; }
die() { printf 'ensure-base-images: %s\n' "$*" >&2; exit 1; }

docker info >/dev/null 2>&1 ||
  die "the Docker engine does not answer (start it: scripts/ci/install-docker.sh, as root)"

# BuildKit is needed for the local Dockerfiles. /usr/local/bin/docker (28.x) may lack buildx, in
# which case its `docker build` is the legacy builder; Debian's /usr/bin/docker (20.10) has
# BuildKit built in.
docker_build() {
  if docker buildx version >/dev/null 2>&1; then
    docker buildx build --load "$@"
  elif [[ -x /usr/bin/docker ]]; then
    DOCKER_BUILDKIT=1 /usr/bin/docker build "$@"
  else
    DOCKER_BUILDKIT=1 docker build "$@"
  fi
}

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }
image_label() { docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true; }

try_pull() {
  say "$1: not in the local store, trying docker pull (${pull_timeout}s)"
  if timeout "$pull_timeout" docker pull --quiet "$1" >/dev/null 2>&1; then
    say "$1: pulled"
    return 0
  fi
  say "$1: pull failed (no registry reachable), building an equivalent from Debian packages"
  return 1
}

elapsed() { echo "$((SECONDS - $1))s"; }

# --- debian:bookworm-slim ------------------------------------------------------------------------
build_debian_slim() {
  command -v debootstrap >/dev/null 2>&1 ||
    die "debootstrap is missing (apt-get install debootstrap, or run scripts/ci/install-docker.sh)"
  local start=$SECONDS dir
  dir=$(mktemp -d /var/tmp/debian-slim.XXXXXX)
  # shellcheck disable=SC2064 # expand $dir now: it is local to this function
  trap "rm -rf '$dir'" RETURN
  debootstrap --variant=minbase --components=main bookworm "$dir" "$mirror" >"$dir.log" 2>&1 ||
    { tail -n 20 "$dir.log" >&2; die "debootstrap failed (log: $dir.log)"; }
  rm -f "$dir.log"

  # Sources as in the official image (deb822, with updates and security).
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

  # debuerreotype-minimizing-config: no service starts, no fsync, apt caches cleaned after each
  # install, compressed indexes, no translations, aggressive autoremove.
  printf '#!/bin/sh\nexit 101\n' >"$dir/usr/sbin/policy-rc.d"
  chmod 0755 "$dir/usr/sbin/policy-rc.d"
  echo 'force-unsafe-io' >"$dir/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$dir/etc/apt/apt.conf.d/docker-autoremove-suggests"
  local clean='"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true";'
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<EOF
DPkg::Post-Invoke { $clean };
APT::Update::Post-Invoke { $clean };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
  echo 'Acquire::GzipIndexes "true";' >"$dir/etc/apt/apt.conf.d/docker-gzip-indexes"
  echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/docker-no-languages"

  # Security and point-release updates, as the official image carries them.
  chroot "$dir" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    sh -c 'apt-get -o APT::Sandbox::User=root update -qq &&
           apt-get -o APT::Sandbox::User=root upgrade -y -qq && apt-get clean' >"$dir.log" 2>&1 ||
    { tail -n 20 "$dir.log" >&2; die "apt-get upgrade in the new rootfs failed (log: $dir.log)"; }
  rm -f "$dir.log"

  # debuerreotype-slimify: the dpkg path-exclude configuration keeps later installs slim too.
  cat >"$dir/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# This is the "slim" variant of the Debian base image.
# Many files which are normally unnecessary in containers are excluded,
# and this configuration file keeps them that way.
path-exclude /usr/share/doc/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*

path-include /usr/share/doc/*/copyright
path-include /usr/share/doc/kde/HTML/C/*
path-include /usr/share/gnome/help/*/C/*
path-include /usr/share/locale/all_languages
path-include /usr/share/locale/currency/*
path-include /usr/share/locale/l10n/*
path-include /usr/share/locale/languages
path-include /usr/share/locale/locale.alias
path-include /usr/share/omf/*/*-C.emf
EOF
  local d
  for d in doc groff info linda lintian/overrides locale man; do
    [[ -d "$dir/usr/share/$d" ]] || continue
    find "$dir/usr/share/$d" -mindepth 1 -depth \
      -not \( -path "$dir/usr/share/doc/*/copyright" -o -path "$dir/usr/share/locale/locale.alias" \) \
      -not -type d -delete
    find "$dir/usr/share/$d" -mindepth 1 -depth -type d -empty -delete
  done

  # debuerreotype-fixup: no logs, caches, host identity or apt lists in the image.
  rm -rf "$dir"/var/lib/apt/lists/* "$dir"/var/cache/apt/*.bin "$dir"/var/cache/apt/archives/*.deb \
    "$dir"/var/cache/ldconfig/aux-cache "$dir"/var/log/{dpkg,bootstrap,alternatives}.log \
    "$dir"/var/log/apt/* "$dir"/var/cache/debconf/*-old "$dir"/var/lib/dpkg/*-old "$dir"/tmp/*
  : >"$dir/etc/resolv.conf"
  : >"$dir/etc/hostname"
  [[ ! -e "$dir/etc/machine-id" ]] || : >"$dir/etc/machine-id"

  tar --numeric-owner --xattrs -C "$dir" -c . |
    docker import \
      --change 'CMD ["bash"]' \
      --change "LABEL org.opencontainers.image.description=\"Debian 12 minbase, slimmed like the official image; built locally by scripts/ensure-base-images.sh\"" \
      - "$debian_image" >/dev/null
  say "$debian_image: built with debootstrap in $(elapsed "$start") ($(image_size "$debian_image"))"
}

image_size() { docker image inspect --format '{{.Size}}' "$1" | awk '{ printf "%.0f MB", $1 / 1e6 }'; }

# --- swift:6.3-bookworm ------------------------------------------------------------------------
# The fingerprint of the package mirror (every ref of every bare repository): a mirror that gained
# versions leads to a rebuild of the builder image, so that `swift package resolve` sees them.
mirror_fingerprint() {
  [[ -d "$packages" ]] || { echo none; return; }
  find "$packages" -mindepth 2 -maxdepth 2 -name '*.git' -type d | sort | while read -r repo; do
    echo "$repo"
    git -C "$repo" for-each-ref --format='%(refname) %(objectname)'
  done | sha256sum | cut -c1-16
}

build_swift() {
  [[ -x "$toolchain/usr/bin/swift" ]] || die "no Swift toolchain at $toolchain (set SWIFT_TOOLCHAIN)"
  local start=$SECONDS name fingerprint=$1
  name="swift-builder-$$"
  # The official image's Dockerfile (swift-docker 6.3/debian/12): these packages, with recommends,
  # then the toolchain tarball unpacked into /. The toolchain of this machine is that tarball.
  docker run --detach --name "$name" "$debian_image" sleep infinity >/dev/null
  # shellcheck disable=SC2064 # expand $name now: it is local to this function
  trap "docker rm -f '$name' >/dev/null 2>&1 || true" RETURN
  docker exec "$name" bash -c '
      export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true &&
      apt-get -q update >/dev/null && apt-get -q install -y \
        binutils libicu-dev libcurl4-openssl-dev libedit-dev libsqlite3-dev libncurses-dev \
        libpython3-dev libxml2-dev pkg-config uuid-dev tzdata git gcc libstdc++-12-dev >/dev/null &&
      rm -r /var/lib/apt/lists/*' || die "apt-get install in the Swift builder failed"
  docker cp "$toolchain/usr/." "$name:/usr/"
  docker exec "$name" chmod -R o+r /usr/lib/swift
  if [[ -d "$packages" ]]; then
    docker cp "$packages/." "$name:/opt/swift-packages/"
    # Only git's insteadOf rules of this machine's /etc/gitconfig: the mirror stands in for GitHub.
    local gitconfig
    gitconfig=$(mktemp)
    printf '[url "/opt/swift-packages/"]\n\tinsteadOf = https://github.com/\n\tinsteadOf = git@github.com:\n\tinsteadOf = ssh://git@github.com/\n' >"$gitconfig"
    chmod 0644 "$gitconfig"
    docker cp "$gitconfig" "$name:/etc/gitconfig"
    rm -f "$gitconfig"
  fi
  docker exec "$name" swift --version 2>&1 | head -n 1 | sed 's/^/ensure-base-images:   /'
  docker commit \
    --change 'CMD ["/bin/bash"]' \
    --change 'LABEL description="Docker Container for the Swift programming language (local equivalent)"' \
    --change "LABEL code.base.mirror-fingerprint=$fingerprint" \
    "$name" "$swift_image" >/dev/null
  say "$swift_image: built from $debian_image + $toolchain in $(elapsed "$start") ($(image_size "$swift_image"))"
}

# --- postgres:15-bookworm, built from docker/runtime/postgres/ --------------------------------
recipe_fingerprint() { (cd "$root/$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16; }

build_recipe() { # NAME DIR FINGERPRINT
  local start=$SECONDS
  docker_build --quiet --pull=false \
    --build-arg "DEBIAN_IMAGE=$debian_image" \
    --label "code.base.recipe-fingerprint=$3" \
    --tag "$1" "$root/$2" >/dev/null
  say "$1: built from $2 in $(elapsed "$start") ($(image_size "$1"))"
}

ensure_recipe() { # NAME DIR KEY
  local fingerprint
  fingerprint=$(recipe_fingerprint "$2")
  if [[ -z ${force[$3]:-} ]] && image_exists "$1"; then
    local have
    have=$(image_label "$1" code.base.recipe-fingerprint)
    # An image without the label was pulled: the official one.
    if [[ $have == "$fingerprint" || -z $have ]]; then
      say "$1: present"
      return
    fi
    say "$1: present but built from an older $2 recipe, rebuilding"
  elif [[ -z ${force[$3]:-} ]] && try_pull "$1"; then
    return
  fi
  build_recipe "$1" "$2" "$fingerprint"
}

# --- main ---------------------------------------------------------------------------------------
if [[ -z ${force[debian]:-} ]] && image_exists "$debian_image"; then
  say "$debian_image: present"
elif [[ -n ${force[debian]:-} ]] || ! try_pull "$debian_image"; then
  build_debian_slim
fi

fingerprint=$(mirror_fingerprint)
if [[ -z ${force[swift]:-} ]] && image_exists "$swift_image"; then
  have=$(image_label "$swift_image" code.base.mirror-fingerprint)
  if [[ -n $have && $have != "$fingerprint" ]]; then
    say "$swift_image: the package mirror changed since it was built, rebuilding"
    build_swift "$fingerprint"
  else
    say "$swift_image: present"
  fi
elif [[ -n ${force[swift]:-} ]] || ! try_pull "$swift_image"; then
  build_swift "$fingerprint"
fi

if ((want_postgres)); then
  ensure_recipe "$postgres_image" docker/runtime/postgres postgres
fi
if ((want_prometheus)); then
  ensure_recipe "$prometheus_image" docker/runtime/prometheus prometheus
fi
