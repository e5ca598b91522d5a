#!/usr/bin/env bash
# Embeds a version and git revision into the next build by rewriting the two literals of
# Sources/CodeRuntime/BuildInfo.swift. Used by the Dockerfile (build args VERSION, REVISION) and by
# release builds; a plain `swift build` keeps the fallback values "0.0.0-dev" and "unknown".
# Usage: scripts/stamp-build-info.sh VERSION REVISION [ROOT]
set -euo pipefail
version=${1:?usage: stamp-build-info.sh VERSION REVISION [ROOT]}
revision=${2:?usage: stamp-build-info.sh VERSION REVISION [ROOT]}
root=${3:-$(cd "$(dirname "$0")/.." && pwd)}
file="$root/Sources/CodeRuntime/BuildInfo.swift"
# Only characters that are safe inside a Swift string literal and a sed replacement.
for value in "$version" "$revision"; do
  if [[ ! "$value" =~ ^[A-Za-z0-9._+-]{1,64}$ ]]; then
    echo "stamp-build-info: refusing unsafe value '$value'" >&2
    exit 64
  fi
done
sed -i -E \
  -e "s/(public static let version = )\"[^\"]*\"/\1\"$version\"/" \
  -e "s/(public static let revision = )\"[^\"]*\"/\1\"$revision\"/" \
  "$file"
grep -q "version = \"$version\"" "$file" && grep -q "revision = \"$revision\"" "$file"
