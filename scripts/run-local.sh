#!/usr/bin/env bash
# Runs every service of services.json from a debug build on 127.0.0.1 (code-api 8000, code-worker 8001,
# code-mcp 3000, ...; metrics on 9090, 9091, ... in the list's order) until Ctrl-C, which stops them all
# gracefully. For development without containers; `make up` runs the real stack. Uses the development
# secrets in secrets/ (created when missing) and a SQLite file in data/. Every service gets the same
# environment and reads only its own variables.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/dev-secrets.sh >/dev/null
swift build
bin=$(swift build --show-bin-path)
# name port, one line per service.
mapfile -t services < <(python3 -c 'import json; [print(s["name"], s["port"]) for s in json.load(open("services.json"))["services"]]')
port_of() { local line; for line in "${services[@]}"; do [[ ${line% *} == "$1" ]] && echo "${line#* }"; done; }

export HOST=127.0.0.1 LOG_FORMAT=${LOG_FORMAT:-text} DATABASE_URL=${DATABASE_URL:-sqlite://data/code.db}
export CODE_ADMIN_KEY_FILE=secrets/admin_key CODE_MCP_API_KEY_FILE=secrets/mcp_api_key
export MCP_API_KEY_FILE=secrets/mcp_api_key MCP_AUTH_TOKENS_FILE=secrets/mcp_auth_token AUTH_TOKENS_FILE=secrets/service_token
api_port=$(port_of code-api) worker_port=$(port_of code-worker)
export CODE_API_URL="http://127.0.0.1:$api_port" CODE_WORKER_URL="http://127.0.0.1:$worker_port"

pids=()
stop() { kill -TERM "${pids[@]}" 2>/dev/null || true; wait; }
trap stop INT TERM EXIT
metrics_port=9090
for line in "${services[@]}"; do
  name=${line% *} port=${line#* }
  PORT=$port METRICS_PORT=$metrics_port "$bin/$name" &
  pids+=($!)
  echo "$name http://127.0.0.1:$port (metrics :$metrics_port)"
  metrics_port=$((metrics_port + 1))
done
echo "admin key: secrets/admin_key  MCP token: secrets/mcp_auth_token  service token: secrets/service_token"
wait
