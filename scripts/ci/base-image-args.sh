#!/usr/bin/env bash
# Reads the digest lock of the base images, docker/base-images/Dockerfile, and prints one
# NAME=image:tag@sha256:<digest> line per pinned image. NAME is the line's stage name upper-cased:
# `FROM swift:6.3-bookworm@sha256:... AS swift_image` gives SWIFT_IMAGE=swift:6.3-bookworm@sha256:...,
# the build argument of docker/Dockerfile. The CI and release workflows call it; Dependabot keeps
# the lock file current (see docs/ci-cd.md, "Base images").
#
# Usage: scripts/ci/base-image-args.sh [--github-output] [--pull] [LOCK_FILE]
#   --github-output  also append name=value per image to $GITHUB_OUTPUT, name in lower case
#                    (swift_image=swift:6.3-bookworm@sha256:...)
#   --pull           docker pull each image by digest and tag it with its plain tag
#                    (swift:6.3-bookworm), so that builds and scripts that name the tag use the
#                    pinned image (scripts/ensure-base-images.sh takes a present image as is)
# Fails, printing nothing, when a line is not a comment, `FROM image:tag@sha256:<64 hex> AS name`
# or the closing `USER` line, when a name repeats, or when nothing is pinned.
set -euo pipefail

github_output=0
pull=0
lock=""
while (($#)); do
  case $1 in
    --github-output) github_output=1 ;;
    --pull) pull=1 ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "base-image-args: unknown option $1" >&2; exit 64 ;;
    *) lock=$1 ;;
  esac
  shift
done
if [[ -z $lock ]]; then
  lock="$(cd "$(dirname "$0")/../.." && pwd)/docker/base-images/Dockerfile"
fi
[[ -f $lock ]] || { echo "base-image-args: no lock file $lock" >&2; exit 1; }

from_re='^FROM[[:space:]]+([a-z0-9][a-z0-9._/-]*):([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})@(sha256:[0-9a-f]{64})[[:space:]]+AS[[:space:]]+([a-z][a-z0-9_]*)$'
declare -A seen=()
names=()
refs=()
repos=()
tags=()
number=0
while IFS= read -r line || [[ -n $line ]]; do
  number=$((number + 1))
  line="${line%$'\r'}"
  [[ $line =~ ^[[:space:]]*(#.*)?$ ]] && continue
  if [[ $line =~ $from_re ]]; then
    repo="${BASH_REMATCH[1]}" tag="${BASH_REMATCH[2]}" digest="${BASH_REMATCH[3]}" name="${BASH_REMATCH[4]}"
    if [[ -n ${seen[$name]:-} ]]; then
      echo "base-image-args: $lock:$number: $name is pinned twice" >&2
      exit 1
    fi
    seen[$name]=1
    names+=("$name")
    refs+=("${repo}:${tag}@${digest}")
    repos+=("${repo}@${digest}")
    tags+=("${repo}:${tag}")
  elif [[ $line =~ ^USER[[:space:]]+[0-9]+(:[0-9]+)?$ ]]; then
    continue
  else
    echo "base-image-args: $lock:$number: not 'FROM image:tag@sha256:<64 hex> AS name': $line" >&2
    exit 1
  fi
done <"$lock"
((${#names[@]})) || { echo "base-image-args: $lock pins no image" >&2; exit 1; }

for i in "${!names[@]}"; do
  printf '%s=%s\n' "${names[$i]^^}" "${refs[$i]}"
done
if ((github_output)); then
  : "${GITHUB_OUTPUT:?--github-output needs GITHUB_OUTPUT}"
  for i in "${!names[@]}"; do
    printf '%s=%s\n' "${names[$i]}" "${refs[$i]}"
  done >>"$GITHUB_OUTPUT"
fi
if ((pull)); then
  for i in "${!names[@]}"; do
    docker pull --quiet "${repos[$i]}" >/dev/null
    docker tag "${repos[$i]}" "${tags[$i]}"
    echo "base-image-args: ${tags[$i]} is ${repos[$i]}" >&2
  done
fi
