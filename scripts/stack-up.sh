#!/usr/bin/env bash
# Runs the CODE services stack on this machine with the security overlay:
#   1. checks that the Docker engine answers (it does not start or install it);
#   2. ensures the base images (scripts/ensure-base-images.sh: local, pulled or built offline);
#   3. creates the development secrets that are missing (scripts/dev-secrets.sh);
#   4. docker compose -f compose/compose.yaml -f compose/compose.security.yaml up --build --wait
#   5. prints the URLs and where the admin key is.
# Extra overlays: STACK_OVERLAYS="logging" (names of compose/compose.NAME.yaml files).
# Extra arguments go to `docker compose up` (e.g. --force-recreate).
# Stop with scripts/stack-down.sh (the data volume is kept; --volumes removes it).
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
scripts/dev-secrets.sh

# Build metadata: stable for a given commit, so that an unchanged tree reuses images and containers.
if git rev-parse --git-dir >/dev/null 2>&1; then
  export REVISION=${REVISION:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
  export CREATED=${CREATED:-$(git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)}
fi
files=(-f compose/compose.yaml -f compose/compose.security.yaml)
for overlay in ${STACK_OVERLAYS:-}; do
  files+=(-f "compose/compose.$overlay.yaml")
done

# BuildKit through the daemon; without the buildx plugin, compose's Bake mode only prints a warning.
export COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=1 COMPOSE_BAKE=${COMPOSE_BAKE:-false}
docker compose "${files[@]}" up --build --wait "$@"

bind=${BIND_ADDRESS:-127.0.0.1}
cat <<EOF_URLS

CODE services are up (docker compose ${files[*]} ps):
  api     http://$bind:${API_PORT:-8000}      (health: /health/ready)
  worker  http://$bind:${WORKER_PORT:-8001}
  mcp     http://$bind:${MCP_PORT:-3000}/mcp  (bearer token: secrets/mcp_auth_token)
Admin API key: $root/secrets/admin_key   (e.g. curl -H "Authorization: Bearer \$(cat secrets/admin_key)" ...)
Logs: docker compose ${files[*]} logs -f     Stop: scripts/stack-down.sh
EOF_URLS
