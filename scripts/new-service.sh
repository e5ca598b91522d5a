#!/usr/bin/env bash
# Generates a new service from templates/service, wired into the package, the service list and the
# compose stack, hardened and tested like the others:
#
#   scripts/new-service.sh NAME PORT        e.g. scripts/new-service.sh code-notify 8002
#
# It refuses a malformed or taken NAME or PORT with a message and changes nothing then. What it
# writes, and what to edit next: docs/new-service.md. The work is done by scripts/new_service.py
# (Python 3's standard library only).
set -euo pipefail
exec python3 "$(dirname "$0")/new_service.py" "$@"
