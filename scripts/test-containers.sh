#!/usr/bin/env bash
# The container end-to-end suite (the Makefile's `test-containers` target), from a fresh clone:
#   1. checks that the Docker engine and the compose plugin answer (it starts and installs nothing:
#      scripts/ci/install-docker.sh does that on a Debian 12 machine);
#   2. .venv with the pinned test tools (scripts/python-tools.sh);
#   3. base images, PostgreSQL's included (scripts/ensure-base-images.sh --postgres);
#   4. builds the image of every service with the build metadata (VERSION, REVISION, CREATED; the
#      same values as scripts/stack-up.sh, so that both reuse one set of images) and the log
#      collector image (the suite's webhook receiver runs on it);
#   5. runs `pytest -q integration/containers` and returns its status.
# The suite starts its own compose projects on free ports of 127.0.0.1 and removes them (down -v) at
# the end, even on failure.
# Extra arguments go to pytest (e.g. -k prod, -x). Environment: VERSION (image tag, default dev).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
started=$SECONDS

if ! docker info >/dev/null 2>&1; then
  cat >&2 <<'MSG'
test-containers: the Docker engine does not answer.
  On a Debian 12 machine without systemd, as root:  scripts/ci/install-docker.sh
  (installs docker.io and the compose plugin when missing, starts dockerd and waits for it);
  if Docker is installed:  dockerd >/var/log/dockerd.log 2>&1 &
MSG
  exit 1
fi
if ! docker compose version >/dev/null 2>&1; then
  echo "test-containers: the Docker Compose v2 plugin is missing (scripts/ci/install-docker.sh installs it)" >&2
  exit 1
fi

bin=$(scripts/python-tools.sh)
scripts/ensure-base-images.sh --postgres

if git rev-parse --git-dir >/dev/null 2>&1; then
  export REVISION=${REVISION:-$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)}
  export CREATED=${CREATED:-$(git log -1 --format=%cI 2>/dev/null || echo 1970-01-01T00:00:00Z)}
fi
export COMPOSE_DOCKER_CLI_BUILD=1 DOCKER_BUILDKIT=1 COMPOSE_BAKE=${COMPOSE_BAKE:-false}
build_started=$SECONDS
docker compose -f compose/compose.yaml -f compose/compose.logging.yaml build
echo "test-containers: images built in $((SECONDS - build_started)) s (tag ${VERSION:-dev}, revision ${REVISION:-unknown})"

status=0
"$bin/pytest" -q -p no:cacheprovider integration/containers "$@" || status=$?
echo "test-containers: pytest exit $status; $((SECONDS - started)) s in total"
exit $status
