#!/bin/sh
# Entry point of the `development` target (docker/Dockerfile): runs the service named by $SERVICE
# (code-api, code-worker or code-mcp) from the sources mounted read-only at /workspace.
#
# The sources are copied into /build/src, a volume (SwiftPM writes Package.resolved and .swiftpm
# next to Package.swift, which a read-only mount forbids); `cp -p` keeps modification times so
# that the debug build in /build/.build stays incremental. The three development services share
# that volume, so the copy and the build run under one lock. `docker compose watch` restarts the
# container on a source change (compose.dev.yaml), which rebuilds and runs the new code.
set -eu
: "${SERVICE:?SERVICE must name the product to run (code-api, code-worker or code-mcp)}"
src=/build/src
mkdir -p "$src"
# shellcheck disable=SC2016 # the inner script expands its own $1 and $SERVICE
flock /build/.lock sh -eu -c '
  src=$1
  rm -rf "$src/Sources" "$src/Tests"
  cp -p /workspace/Package.swift "$src/"
  cp -Rp /workspace/Sources /workspace/Tests "$src/"
  cd "$src"
  swift build --scratch-path /build/.build --product "$SERVICE"
' dev-run "$src"
exec "/build/.build/debug/$SERVICE" "$@"
