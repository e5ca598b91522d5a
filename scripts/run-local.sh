#!/usr/bin/env bash
# Runs code-api, code-worker and code-mcp from a debug build on 127.0.0.1 (8000, 8001, 3000; metrics on
# 9090, 9091, 9092) until Ctrl-C, which stops all three gracefully. For development without containers;
# `make up` runs the real stack. Uses the development secrets in secrets/ (created when missing) and a
# SQLite file in data/.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/dev-secrets.sh >/dev/null
swift build
bin=$(swift build --show-bin-path)
export HOST=127.0.0.1 LOG_FORMAT=${LOG_FORMAT:-text} DATABASE_URL=${DATABASE_URL:-sqlite://data/code.db}
pids=()
stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait; }
trap stop INT TERM EXIT
PORT=8000 METRICS_PORT=9090 CODE_ADMIN_KEY_FILE=secrets/admin_key CODE_MCP_API_KEY_FILE=secrets/mcp_api_key \
  "$bin/code-api" & pids+=($!)
PORT=8001 METRICS_PORT=9091 "$bin/code-worker" & pids+=($!)
PORT=3000 METRICS_PORT=9092 CODE_API_URL=http://127.0.0.1:8000 CODE_WORKER_URL=http://127.0.0.1:8001 \
  MCP_API_KEY_FILE=secrets/mcp_api_key MCP_AUTH_TOKENS_FILE=secrets/mcp_auth_token "$bin/code-mcp" & pids+=($!)
echo "code-api http://127.0.0.1:8000  code-worker http://127.0.0.1:8001  code-mcp http://127.0.0.1:3000/mcp"
echo "admin key: secrets/admin_key  MCP token: secrets/mcp_auth_token"
wait
