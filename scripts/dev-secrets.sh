#!/usr/bin/env bash
# Creates the development secrets that compose/compose.yaml (and compose.prod.yaml) read, one file
# per secret named after it, in secrets/ at the repository root (git-ignored). Only missing files
# are created: existing secrets are never changed. Prints what it created.
#
#   admin_key          admin API key of code-api     code_ + 43 url-safe chars (32 random bytes)
#   mcp_api_key        operator key of code-mcp      code_ + 43 url-safe chars (32 random bytes)
#   mcp_auth_token     bearer token of MCP clients   43 url-safe chars (32 random bytes)
#   webhook_secret     HMAC secret of the webhook rollout driver
#   postgres_password  password of the PostgreSQL user `code` (compose.prod.yaml)
#
# Permissions, a trade-off made for development: compose bind-mounts file secrets into
# /run/secrets with the host file's owner and mode (the secrets' uid/gid/mode settings are
# swarm-only), and the services run as uid 1001. The files are therefore 0644, readable by
# uid 1001 in the containers, while the directory is 0700 so that other users of the host cannot
# reach them. The alternative, files owned by 1001 with mode 0600, needs root to create and
# leaves the developer unable to read their own keys without sudo. Production should inject
# secrets from a secret manager (or files owned by 1001, mode 0400) instead.
#
# Usage: scripts/dev-secrets.sh [DIR]   (default: SECRETS_DIR or <repo>/secrets)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=${1:-${SECRETS_DIR:-$root/secrets}}

# 32 random bytes, base64url without padding: 43 characters.
random43() { head -c 32 /dev/urandom | base64 -w0 | tr '+/' '-_' | tr -d '='; }

umask 077
mkdir -p "$dir"
chmod 0700 "$dir"
created=()
for name in admin_key mcp_api_key mcp_auth_token webhook_secret postgres_password; do
  file="$dir/$name"
  if [[ -s "$file" ]]; then
    if [[ $(stat -c %a "$file") != 644 && $(stat -c %u "$file") != 1001 ]]; then
      echo "dev-secrets: warning: $file is not readable by uid 1001 (mode $(stat -c %a "$file")); chmod 0644 it" >&2
    fi
    continue
  fi
  case $name in
    admin_key | mcp_api_key) value="code_$(random43)" ;;
    *) value=$(random43) ;;
  esac
  # No trailing newline: the value is exactly the file's content.
  printf '%s' "$value" >"$file.tmp"
  chmod 0644 "$file.tmp"
  mv "$file.tmp" "$file"
  created+=("$name")
done
if ((${#created[@]})); then
  echo "dev-secrets: created ${created[*]} in $dir"
else
  echo "dev-secrets: all secrets present in $dir"
fi
