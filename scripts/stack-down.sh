#!/usr/bin/env bash
# Stops the stack started by scripts/stack-up.sh. Each service gets SIGTERM and its
# stop_grace_period to drain. The SQLite and secrets volumes are kept unless --volumes is given.
# Usage: scripts/stack-down.sh [--volumes]   (STACK_OVERLAYS as for stack-up.sh)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
files=(-f compose/compose.yaml)
for overlay in ${STACK_OVERLAYS:-}; do
  files+=(-f "compose/compose.$overlay.yaml")
done
docker compose "${files[@]}" down "$@"
