"""Checks one merged compose configuration (`docker compose config --format json`) against the
project's promises, so that no overlay combination can quietly run a service without them:

- every service of services.json is there, built from docker/Dockerfile's `service` target with its
  own SERVICE and PORT;
- every service of services.json runs with a read-only root file system, no capability, no new
  privileges, the seccomp allowlist, a noexec /tmp, memory, CPU and process-count limits, and not as
  root; except where compose.dev.yaml runs it from the toolchain image (`development` target), which
  relaxes that on purpose;
- every other container (PostgreSQL, the log collector, the one-shot secrets-init, test helpers)
  has a read-only root, no capability and no new privileges;
- the monitoring overlay's Prometheus and Grafana (compose.monitoring.yaml) also run as a non-root
  user with a noexec,nosuid /tmp and publish ports on 127.0.0.1 only (they keep Docker's default
  seccomp profile: the services' allowlist does not fit the Go runtime);
- every container of every combination, the development one included, has memory, CPU and
  process-count limits: defence in depth against a leak or a fork loop wherever it runs.

    python3 scripts/check-compose-hardening.py CONFIG.json [COMBINATION]

Prints each problem and exits 1 if there is one. Used by `scripts/lint.sh compose`.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROFILE = "seccomp/code-services.json"


def service_problems(name: str, config: dict, listed: dict) -> list[str]:
    problems = []
    build = config.get("build") or {}
    if build.get("target") == "development":
        return limit_problems(config)
    args = build.get("args") or {}
    if build and build.get("target") != "service":
        problems.append(f"built from target {build.get('target')!r}, not 'service'")
    if build and args.get("SERVICE") != listed["name"]:
        problems.append(f"build arg SERVICE is {args.get('SERVICE')!r}, services.json says {listed['name']!r}")
    if build and args.get("PORT") != str(listed["port"]):
        problems.append(f"build arg PORT is {args.get('PORT')!r}, services.json says {listed['port']}")
    if listed["name"] not in str(config.get("image", "")):
        problems.append(f"image {config.get('image')!r} is not named after {listed['name']}")
    options = config.get("security_opt") or []
    if not any(option.startswith("seccomp:") and option.endswith(PROFILE) for option in options):
        problems.append(f"no seccomp allowlist ({PROFILE}) in security_opt {options}")
    if not any(entry.split(":", 1)[0] == "/tmp" and {"noexec", "nosuid"} <= set(entry.split(":", 1)[1].split(","))
               for entry in config.get("tmpfs") or [] if ":" in entry):
        problems.append(f"no noexec,nosuid tmpfs on /tmp: {config.get('tmpfs')}")
    if str(config.get("user") or "1001").split(":")[0] in ("0", "root"):
        problems.append(f"runs as {config.get('user')}")
    return problems + container_problems(config)


def limit_problems(config: dict) -> list[str]:
    limits = ((config.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    return [f"no {limit} limit" for limit in ("memory", "cpus", "pids") if not limits.get(limit)]


def container_problems(config: dict) -> list[str]:
    problems = limit_problems(config)
    if config.get("read_only") is not True:
        problems.append("root file system is not read-only")
    if config.get("cap_drop") != ["ALL"] or config.get("cap_add"):
        problems.append(f"capabilities: cap_drop {config.get('cap_drop')}, cap_add {config.get('cap_add')}")
    if "no-new-privileges:true" not in (config.get("security_opt") or []):
        problems.append("no no-new-privileges")
    if config.get("privileged"):
        problems.append("privileged")
    return problems


MONITORING = ("prometheus", "grafana")


def monitoring_problems(config: dict) -> list[str]:
    problems = container_problems(config)
    if str(config.get("user") or "0").split(":")[0] in ("0", "root"):
        problems.append(f"runs as {config.get('user') or 'the image user (set user: to a non-root uid)'}")
    if not any(entry.split(":", 1)[0] == "/tmp" and {"noexec", "nosuid"} <= set(entry.split(":", 1)[1].split(","))
               for entry in config.get("tmpfs") or [] if ":" in entry):
        problems.append(f"no noexec,nosuid tmpfs on /tmp: {config.get('tmpfs')}")
    problems += [f"port {port.get('target')} published on {port.get('host_ip') or 'every address'}, not 127.0.0.1"
                 for port in config.get("ports") or [] if port.get("host_ip") != "127.0.0.1"]
    return problems


def main(argv: list[str]) -> int:
    merged = json.loads(Path(argv[0]).read_text())["services"]
    combination = argv[1] if len(argv) > 1 else ""
    listed = {service["compose"]: service for service in json.loads((ROOT / "services.json").read_text())["services"]}
    problems = [f"{name}: missing (services.json lists it)" for name in listed if name not in merged]
    for name, config in merged.items():
        found = (service_problems(name, config, listed[name]) if name in listed
                 else monitoring_problems(config) if name in MONITORING else container_problems(config))
        problems += [f"{name}: {problem}" for problem in found]
    for problem in problems:
        print(f"check-compose-hardening [{combination or 'base'}]: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
