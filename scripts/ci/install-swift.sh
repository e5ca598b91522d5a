#!/usr/bin/env bash
# Installs the package's toolchain, Swift 6.3, on a GitHub-hosted Ubuntu 24.04 runner, whose image
# does not carry it: swift.org's release tarball, unpacked in the job's temporary folder and put on
# PATH for the job's later steps, and libsqlite3-dev, which GRDB links. For the CI jobs that build
# or format Swift outside the swift:6.3-bookworm container (lint: swift-format; containers: the
# generated-service test). Machines of this project (.ci/run) have the toolchain already.
set -euo pipefail
release=${SWIFT_RELEASE:-swift-6.3.1-RELEASE}
: "${RUNNER_TEMP:?RUNNER_TEMP is set by GitHub Actions}" "${GITHUB_PATH:?GITHUB_PATH is set by GitHub Actions}"
sudo apt-get update
sudo apt-get install -y --no-install-recommends libsqlite3-dev
curl -fsSL "https://download.swift.org/${release,,}/ubuntu2404/${release}/${release}-ubuntu24.04.tar.gz" |
  tar -xz -C "$RUNNER_TEMP"
echo "$RUNNER_TEMP/${release}-ubuntu24.04/usr/bin" >>"$GITHUB_PATH"
"$RUNNER_TEMP/${release}-ubuntu24.04/usr/bin/swift" --version
