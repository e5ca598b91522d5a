#!/usr/bin/env bash
# Re-derives compose/seccomp/code-services.json from traces of the end-to-end workload
# (scripts/seccomp/derive.py has the details) and prints the counts, ours and Docker's default.
#
#   scripts/seccomp/derive.sh            all: host traces (strace, 2 runs) + container audit, writes the profile
#   scripts/seccomp/derive.sh trace      host traces only (keeps earlier audit findings)
#   scripts/seccomp/derive.sh audit      the container suite under the audit variant only
#   scripts/seccomp/derive.sh count      print the counts of the current profile and Docker's default
#
# Needs root (strace of the binaries, dmesg for the audit, /proc/sys/kernel/printk_ratelimit), a
# running Docker engine, the images built (scripts/test-containers.sh builds them, or
# `docker compose -f compose/compose.yaml build`), strace and psql/postgresql (Debian packages).
# Work files (extracted binaries, traces) go to out/seccomp/ (git-ignored). About 6 minutes.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
if [[ $(id -u) -ne 0 ]]; then
  echo "derive: run as root (strace, dmesg, printk_ratelimit)" >&2
  exit 1
fi
for tool in strace psql dmesg; do
  command -v "$tool" >/dev/null || { echo "derive: $tool is missing (apt-get install strace postgresql util-linux)" >&2; exit 1; }
done
if ! docker info >/dev/null 2>&1; then
  echo "derive: the Docker engine does not answer (scripts/ci/install-docker.sh starts it)" >&2
  exit 1
fi
bin=$(scripts/python-tools.sh)
exec "$bin/python" -W ignore::DeprecationWarning scripts/seccomp/derive.py "${@:-all}"
