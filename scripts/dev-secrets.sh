#!/usr/bin/env bash
# Creates the development secrets that are missing, one file per secret named after it. Existing
# secrets are never changed. Prints what it created (names only, never values).
#
#   admin_key          admin API key of code-api     code_ + 43 url-safe chars (32 random bytes)
#   mcp_api_key        operator key of code-mcp      code_ + 43 url-safe chars (32 random bytes)
#   mcp_auth_token     bearer token of MCP clients   43 url-safe chars (32 random bytes)
#   service_token      bearer token of the services scripts/new-service.sh generates
#   webhook_secret     HMAC secret of the webhook rollout driver (32 random bytes)
#   postgres_password  password of the PostgreSQL user `code` (compose.prod.yaml)
#
# Two uses:
#   scripts/dev-secrets.sh [DIR]           on the host (default: SECRETS_DIR or <repo>/secrets): for
#                                          `make run` and the test suites. The directory is 0700 and
#                                          the files 0644. To hand such a folder to compose.prod.yaml
#                                          (SECRETS_DIR, mounted whole at /run/secrets), make it
#                                          readable by the services' uid 1001 as that file says.
#   dev-secrets --group DIR                in the one-shot `secrets-init` container of
#                                          compose/compose.yaml (uid 0, gid 1001), on the volume the
#                                          services mount: directory 0750 and files 0440 with the
#                                          process's group, readable by the services (1001:1001)
#                                          and by no other user. Needs only bash and coreutils.
# Production should inject secrets from a secret manager, or a folder as compose.prod.yaml describes.
set -euo pipefail

group=0
if [[ ${1:-} == --group ]]; then
  group=1
  shift
fi
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-${SECRETS_DIR:-$root/secrets}}

# 32 random bytes, base64url without padding: 43 characters.
random43() { head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '='; }

if ((group)); then
  umask 027
  file_mode=0440
  mkdir -p "$dir"
  chgrp "$(id -g)" "$dir"
  chmod 0750 "$dir"
else
  umask 077
  file_mode=0644
  mkdir -p "$dir"
  chmod 0700 "$dir"
fi
created=()
for name in admin_key mcp_api_key mcp_auth_token service_token webhook_secret postgres_password; do
  file="$dir/$name"
  if [[ -s "$file" ]]; then
    continue
  fi
  case $name in
    admin_key | mcp_api_key) value="code_$(random43)" ;;
    *) value=$(random43) ;;
  esac
  # No trailing newline: the value is exactly the file's content.
  printf '%s' "$value" >"$file.tmp"
  chmod "$file_mode" "$file.tmp"
  mv "$file.tmp" "$file"
  created+=("$name")
done
if ((${#created[@]})); then
  echo "dev-secrets: created ${created[*]} in $dir"
else
  echo "dev-secrets: all secrets present in $dir"
fi
