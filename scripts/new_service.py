"""Generates a service from templates/service (run it through scripts/new-service.sh NAME PORT).

Everything is checked before anything is written: a malformed or taken name or port, or a
repository whose markers are missing, changes nothing. Then it writes

  new files   Sources/<Module>/ (settings, buildApplication, an example route), Sources/<name>/
              (the thin executable running the library's command), Tests/<Module>Tests/, docs/services/<name>.md
              and deploy/kubernetes/base/<name>/ (its Deployment, Service, PodDisruptionBudget and
              NetworkPolicy, hardened through the shared component)
  and edits   services.json (the list of services: workflows, the container suite, the seccomp
              derivation, run-local and the benchmarks read it), Package.swift (one line in
              `generatedServices`), and, above their marker lines ("scripts/new-service.sh adds ...
              above this line."), one entry from templates/service/wiring/ in each file of WIRING:
              compose, the Kubernetes base and overlays, the Swarm stack, the multi-call binary's
              table of services (Sources/code-services/main.swift: its import and its command, so
              that the images, which all run that binary, run it) - and nothing else.

Placeholders in the template's paths and contents: __NAME__ (code-notify), __MODULE__ (CodeNotify),
__STEM__ (Notify), __COMPOSE__ (notify), __ENVPREFIX__ (NOTIFY), __PORT__, __DESCRIPTION__.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "templates" / "service"
SERVICES = ROOT / "services.json"
PACKAGE = ROOT / "Package.swift"
COMPOSE = ROOT / "compose" / "compose.yaml"
WIRING_TEMPLATES = TEMPLATE / "wiring"
MARKER = "scripts/new-service.sh adds services above this line."
SECRET_MARKER = "scripts/new-service.sh adds secrets above this line."
STACK = ROOT / "deploy" / "swarm" / "stack.yaml"
# The multi-call binary that the container images ship: its table of services.
MULTI_CALL = ROOT / "Sources" / "code-services" / "main.swift"
# Where a service is wired in: (file, its entry in templates/service/wiring/, the marker line the entry
# goes above; None: an import, which goes into the file's block of imports in sorted order, as
# swift-format wants them). An entry already in the file is not added again (the secret generated
# services share).
WIRING = [
    (COMPOSE, "compose.yaml", MARKER),
    (ROOT / "deploy" / "kubernetes" / "base" / "kustomization.yaml", "kubernetes-base.yaml", MARKER),
    (ROOT / "deploy" / "kubernetes" / "overlays" / "dev" / "kustomization.yaml", "kubernetes-dev.yaml", MARKER),
    (ROOT / "deploy" / "kubernetes" / "overlays" / "prod" / "kustomization.yaml", "kubernetes-prod.yaml", MARKER),
    (STACK, "swarm-service.yaml", MARKER),
    (STACK, "swarm-secret.yaml", SECRET_MARKER),
    (MULTI_CALL, "code-services-import.txt", None),
    (MULTI_CALL, "code-services-command.txt", MARKER),
]
WIRED_FILES = list(dict.fromkeys(path for path, _, _ in WIRING))
# Ports the stack already uses besides the services' own: the metrics listener and the log collector.
RESERVED_PORTS = {9090: "METRICS_PORT of every service", 24224: "the log collector (compose.logging.yaml)"}
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")
USAGE = "usage: scripts/new-service.sh NAME PORT   (e.g. scripts/new-service.sh code-notify 8002)"


class Refusal(Exception):
    """A reason not to generate; nothing has been written."""


def camel(words: list[str]) -> str:
    return "".join(word[:1].upper() + word[1:] for word in words)


def names(name: str, port: int) -> dict[str, str]:
    words = name.split("-")
    stem_words = words[1:] if words[0] == "code" and len(words) > 1 else words
    compose = "-".join(stem_words)
    return {
        "__NAME__": name,
        "__MODULE__": camel(words),
        "__STEM__": camel(stem_words),
        "__COMPOSE__": compose,
        "__ENVPREFIX__": compose.upper().replace("-", "_"),
        "__PORT__": str(port),
        "__DESCRIPTION__": f"{name}: a CODE service generated from templates/service",
    }


def substitute(text: str, values: dict[str, str]) -> str:
    for placeholder, value in values.items():
        text = text.replace(placeholder, value)
    return text


def load_services() -> list[dict]:
    try:
        return json.loads(SERVICES.read_text())["services"]
    except (OSError, ValueError, KeyError) as error:
        raise Refusal(f"cannot read the service list {SERVICES.relative_to(ROOT)}: {error}") from error


def parse_arguments(argv: list[str]) -> tuple[str, int]:
    if len(argv) != 2:
        raise Refusal(USAGE)
    name, port_text = argv
    if not NAME_PATTERN.match(name) or not 2 <= len(name) <= 40:
        raise Refusal(f"NAME '{name}' is malformed: lower-case letters and digits in words joined by single hyphens, "
                      f"starting with a letter, 2 to 40 characters (a DNS label, e.g. code-notify)")
    if not re.fullmatch(r"[0-9]{1,5}", port_text) or not 1024 <= int(port_text) <= 65535:
        raise Refusal(f"PORT '{port_text}' is malformed: a number from 1024 to 65535 (the services run without "
                      f"capabilities, so they cannot bind ports below 1024)")
    return name, int(port_text)


def check_free(name: str, port: int, values: dict[str, str], services: list[dict]) -> None:
    for service in services:
        if service["name"] == name:
            raise Refusal(f"NAME '{name}' is taken: services.json already lists it")
        if service.get("compose") == values["__COMPOSE__"]:
            raise Refusal(f"NAME '{name}' is taken: its compose service name '{values['__COMPOSE__']}' belongs to {service['name']}")
        if service["port"] == port:
            raise Refusal(f"PORT {port} is taken by {service['name']} (services.json)")
    if port in RESERVED_PORTS:
        raise Refusal(f"PORT {port} is taken by {RESERVED_PORTS[port]}")
    module = values["__MODULE__"]
    package = PACKAGE.read_text()
    for target in (name, module, module + "Tests"):
        if f'"{target}"' in package:
            raise Refusal(f"NAME '{name}' is taken: Package.swift already has a target or product named {target}")
        for folder in ("Sources", "Tests"):
            if (ROOT / folder / target).exists():
                raise Refusal(f"NAME '{name}' is taken: {folder}/{target} exists")
    if (ROOT / "docs" / "services" / f"{name}.md").exists():
        raise Refusal(f"NAME '{name}' is taken: docs/services/{name}.md exists")
    if re.search(rf"^  {re.escape(values['__COMPOSE__'])}:\s*$", COMPOSE.read_text(), re.MULTILINE):
        raise Refusal(f"NAME '{name}' is taken: compose/compose.yaml already has a service '{values['__COMPOSE__']}'")


def insert_before_marker(path: Path, content: str, text: str, marker: str) -> str:
    """`content` (of `path`) with `text` above its one line holding `marker`; unchanged when it holds `text`."""
    if text in content:
        return content
    lines = content.splitlines(keepends=True)
    marked = [index for index, line in enumerate(lines) if marker in line]
    if len(marked) != 1:
        raise Refusal(f"{path.relative_to(ROOT)} must have exactly one line with '{marker}'")
    index = marked[0]
    return "".join(lines[:index]) + text + "".join(lines[index:])


def insert_import(path: Path, content: str, text: str) -> str:
    """`content` (of `path`) with the import line `text` in its one block of imports, kept sorted."""
    if text in content.splitlines(keepends=True):
        return content
    lines = content.splitlines(keepends=True)
    imports = [index for index, line in enumerate(lines) if line.startswith("import ")]
    if not imports or imports[-1] - imports[0] + 1 != len(imports):
        raise Refusal(f"{path.relative_to(ROOT)} must have its imports in one block of consecutive lines")
    first, last = imports[0], imports[-1]
    return "".join(lines[:first] + sorted(lines[first:last + 1] + [text]) + lines[last + 1:])


def render_services(services: list[dict]) -> str:
    """services.json in its own layout: one field per line, lists on one line."""
    blocks = []
    for service in services:
        fields = [f'      {json.dumps(key)}: {json.dumps(value)}' for key, value in service.items()]
        blocks.append("    {\n" + ",\n".join(fields) + "\n    }")
    return '{\n  "services": [\n' + ",\n".join(blocks) + "\n  ]\n}\n"


def plan(name: str, port: int) -> dict[Path, str]:
    """Every file to write, with its content; raises Refusal before anything is written."""
    values = names(name, port)
    services = load_services()
    check_free(name, port, values, services)
    if not TEMPLATE.is_dir():
        raise Refusal(f"the template {TEMPLATE.relative_to(ROOT)} is missing")

    writes: dict[Path, str] = {}
    for source in sorted(TEMPLATE.rglob("*")):
        relative = source.relative_to(TEMPLATE)
        if source.is_dir() or relative.parts[0] == "wiring":
            continue
        target = ROOT / substitute(str(relative), values)
        if target.exists():
            raise Refusal(f"{target.relative_to(ROOT)} exists")
        writes[target] = substitute(source.read_text(), values)

    entry = {"name": name, "compose": values["__COMPOSE__"], "port": port,
             "description": values["__DESCRIPTION__"], "needs": []}
    writes[SERVICES] = render_services(services + [entry])
    package_line = f'    GeneratedService(name: "{name}", module: "{values["__MODULE__"]}"),\n'
    writes[PACKAGE] = insert_before_marker(PACKAGE, PACKAGE.read_text(), package_line, MARKER)
    for path, entry_template, marker in WIRING:
        entry = substitute((WIRING_TEMPLATES / entry_template).read_text(), values)
        content = writes.get(path, path.read_text())
        writes[path] = insert_import(path, content, entry) if marker is None else insert_before_marker(path, content, entry, marker)
    return writes


def main(argv: list[str]) -> int:
    try:
        name, port = parse_arguments(argv)
        writes = plan(name, port)
    except Refusal as refusal:
        print(f"new-service: {refusal}; nothing was changed", file=sys.stderr)
        return 64 if str(refusal) == USAGE else 1
    for path, content in writes.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
    values = names(name, port)
    edited = [SERVICES, PACKAGE, *WIRED_FILES]
    created = sorted(str(path.relative_to(ROOT)) for path in writes if path not in edited)
    print(f"new-service: generated {name} on port {port}")
    print("  created: " + "\n           ".join(created))
    print("  edited:  " + "\n           ".join(str(path.relative_to(ROOT)) for path in edited))
    print(f"Next: swift build --product {name} && swift test --filter {values['__MODULE__']}Tests; "
          f"`make up` runs it in the stack at http://127.0.0.1:{port}. See docs/new-service.md.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
