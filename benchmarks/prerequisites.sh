#!/usr/bin/env bash
# Debian packages the benchmarks use: wrk (load), nginx-light (the /health/live ceiling), postgresql
# (worker throughput), libcurl4-openssl-dev (code-mcp's static release link). Installs the missing ones
# when run as root with apt-get; otherwise names them and carries on (run.py reports what it could not run).
set -euo pipefail
missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v nginx >/dev/null || [[ -x /usr/sbin/nginx ]] || missing+=(nginx-light)
command -v psql >/dev/null || missing+=(postgresql)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
dpkg -s libcurl4-openssl-dev >/dev/null 2>&1 || missing+=(libcurl4-openssl-dev)
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi
if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
  echo "bench: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null \
    || { apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null; }
else
  echo "bench: missing Debian packages: ${missing[*]} (apt-get install -y ${missing[*]})" >&2
fi
