#!/usr/bin/env bash
# Runs the CODE services stack on this machine (`make up`), as `docker compose up` from the root does,
# also where no registry answers:
#   1. checks that the Docker engine answers (it does not start or install it);
#   2. ensures the base images (scripts/ensure-base-images.sh: local, pulled or built offline);
#   3. docker compose up --build --wait: every service of services.json, hardened, on SQLite; the
#      one-shot secrets-init creates the development secrets that are missing in their volume;
#   4. copies the admin key and the MCP token out of that volume into secrets/ (0700, files 0600),
#      for the README's curl session and MCP clients, and prints the URLs.
# Extra overlays: STACK_OVERLAYS="logging" (names of compose/compose.NAME.yaml files).
# Extra arguments go to `docker compose up` (e.g. --force-recreate).
# Stop with scripts/stack-down.sh (the data and secrets volumes are kept; --volumes removes them).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

if ! docker info >/dev/null 2>&1; then
  cat >&2 <<'MSG'
stack-up: the Docker engine does not answer.
  On a Debian 12 machine without systemd, as root:  scripts/ci/install-docker.sh
  (installs docker.io and the compose plugin when missing, starts dockerd and waits for it);
  if Docker is installed:  dockerd >/var/log/dockerd.log 2>&1 &
  If the engine runs but you lack access to it: add yourself to the docker group or use sudo.
MSG
  exit 1
fi
if ! docker compose version >/dev/null 2>&1; then
  echo "stack-up: the Docker Compose v2 plugin is missing (scripts/ci/install-docker.sh installs it)" >&2
  exit 1
fi

scripts/ensure-base-images.sh

# Build metadata: stable for a given commit, so that an unchanged tree reuses images and containers.
if git rev-parse --git-dir >/dev/null 2>&1; then
  export REVISION=${REVISION:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
  export CREATED=${CREATED:-$(git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)}
fi
files=(-f compose/compose.yaml)
for overlay in ${STACK_OVERLAYS:-}; do
  files+=(-f "compose/compose.$overlay.yaml")
done

# BuildKit through the daemon; without the buildx plugin, compose's Bake mode only prints a warning.
export COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=1 COMPOSE_BAKE=${COMPOSE_BAKE:-false}
docker compose "${files[@]}" up --build --wait "$@"

# The secrets clients need, readable by the developer only.
install -d -m 0700 secrets
for name in admin_key mcp_auth_token; do
  if ! docker compose "${files[@]}" cp "secrets-init:/secrets/$name" - 2>/dev/null | tar -xO >"secrets/$name.tmp"; then
    echo "stack-up: could not copy $name out of the secrets volume (docker compose cp secrets-init:/secrets/$name)" >&2
    exit 1
  fi
  chmod 0600 "secrets/$name.tmp"
  mv "secrets/$name.tmp" "secrets/$name"
done

bind=${BIND_ADDRESS:-127.0.0.1}
echo
echo "CODE services are up (docker compose ${files[*]} ps):"
python3 - "$bind" <<'PY'
import json, os, sys
for service in json.load(open("services.json"))["services"]:
    port = os.environ.get(service["compose"].upper().replace("-", "_") + "_PORT", service["port"])
    path = "/mcp" if service["name"] == "code-mcp" else ""
    print(f"  {service['compose']:<8} {service['name']:<12} http://{sys.argv[1]}:{port}{path}")
PY
cat <<EOF_URLS
Admin API key: $root/secrets/admin_key   (e.g. curl -H "Authorization: Bearer \$(cat secrets/admin_key)" ...)
MCP token:     $root/secrets/mcp_auth_token
Logs: docker compose ${files[*]} logs -f     Stop: scripts/stack-down.sh
EOF_URLS
