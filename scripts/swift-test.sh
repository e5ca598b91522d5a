#!/usr/bin/env bash
# Builds and runs the Swift tests. The store and API suites run on SQLite and on PostgreSQL: unless
# CODE_TEST_POSTGRES_URL points at a server (as in GitHub Actions) or CODE_TEST_SKIP_POSTGRES=1 says there
# is none, a throwaway server from Debian's postgresql package is started for the run and stopped after.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
if [[ -z "${CODE_TEST_POSTGRES_URL:-}" && "${CODE_TEST_SKIP_POSTGRES:-}" != 1 ]]; then
  CODE_TEST_POSTGRES_URL=$(scripts/test-postgres.sh start)
  export CODE_TEST_POSTGRES_URL
  trap 'scripts/test-postgres.sh stop' EXIT
fi
swift build --build-tests "$@"
# Every test has its own bound where it waits; this one is for a hang nobody foresaw (seen once, a live
# HTTP test while every store operation failed): the run fails in 20 minutes instead of using up CI's 90.
# It takes under a minute here and a few on CI.
timeout --kill-after=30 1200 swift test --skip-build "$@"
