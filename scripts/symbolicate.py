#!/usr/bin/env python3
"""Names the frames of a crash backtrace printed by a CODE service image, offline.

The images ship /app/service stripped; its DWARF and symbol table are in code-services.debug (the
`symbols` target of docker/Dockerfile; the release workflow uploads it as symbols-<service>-<version>,
one per architecture). The backtracer (swift-backtrace-static) prints each frame's address and, under
"Images:", where each binary was loaded and its build id. This reads such a backtrace (a file or
stdin), takes the frames in `service`, subtracts the load address of /app/service and asks addr2line
for the function (inlined frames too), file and line; `swift demangle` turns Swift names into
readable ones when it is on PATH.

    scripts/symbolicate.py code-services.debug crash.txt
    docker logs CONTAINER 2>&1 | scripts/symbolicate.py code-services.debug

Exits 1 when the debug file's build id is not the crashed binary's (symbols of another build would
name the wrong functions), or when no frame of the binary is found. Needs binutils (addr2line, readelf).
"""
from __future__ import annotations

import re
import shutil
import subprocess
import sys

FRAME = re.compile(r"^\s*(\d+)\s+(?:\[\w+\]\s+)?0x([0-9a-f]+)\s+(.*?)\s+in\s+service\b(.*)$")
IMAGE = re.compile(r"^0x([0-9a-f]+)[\u2013-]0x[0-9a-f]+\s+([0-9a-f]+|<no build ID>)\s+\S+\s+/app/service\s*$")


def build_id(path: str) -> str | None:
    notes = subprocess.run(["readelf", "-n", path], capture_output=True, text=True, check=True).stdout
    match = re.search(r"Build ID:\s*([0-9a-f]+)", notes)
    return match[1] if match else None


def demangle(names: list[str]) -> list[str]:
    swift = shutil.which("swift-demangle") or shutil.which("swift")
    if not swift:
        return names
    command = [swift, "--simplified"] if swift.endswith("demangle") else [swift, "demangle", "--simplified"]
    result = subprocess.run(command, input="\n".join(names) + "\n", capture_output=True, text=True)
    out = result.stdout.splitlines()
    return out if result.returncode == 0 and len(out) == len(names) else names


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 64
    debug = argv[0]
    text = open(argv[1], errors="replace").read() if len(argv) == 2 else sys.stdin.read()
    lines = text.splitlines()
    images = [IMAGE.match(line.strip()) for line in lines]
    image = next((match for match in images if match), None)
    if image is None:
        print("symbolicate: no line for /app/service under 'Images:' (SWIFT_BACKTRACE needs images=all)", file=sys.stderr)
        return 1
    base, crashed_id = int(image[1], 16), image[2]
    debug_id = build_id(debug)
    if debug_id and crashed_id != debug_id:
        print(f"symbolicate: {debug} has build id {debug_id}, the crashed binary {crashed_id}: not its symbols", file=sys.stderr)
        return 1
    frames = [(index, FRAME.match(line)) for index, line in enumerate(lines)]
    frames = [(index, match) for index, match in frames if match]
    if not frames:
        print("symbolicate: no frame in service", file=sys.stderr)
        return 1
    # A return address points after the call: look up the byte before it (as the backtracer does).
    offsets = [int(match[2], 16) - base - (1 if "[ra]" in lines[index] else 0) for index, match in frames]
    result = subprocess.run(["addr2line", "-f", "-i", "-a", "-e", debug, *[hex(offset) for offset in offsets]],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    # addr2line -a -i: per address, the address line, then (function, file:line) pairs, innermost first.
    resolved: list[list[tuple[str, str]]] = []
    for line in result:
        if line.startswith("0x"):
            resolved.append([])
        else:
            if resolved and (not resolved[-1] or len(resolved[-1][-1]) == 2):
                resolved[-1].append((line,))  # type: ignore[arg-type]
            elif resolved:
                resolved[-1][-1] = (resolved[-1][-1][0], line)
    names = demangle([pair[0] for entry in resolved for pair in entry])
    position = 0
    for (index, match), entry in zip(frames, resolved):
        described = []
        for pair in entry:
            name, where = names[position], pair[1] if len(pair) > 1 else "??:0"
            position += 1
            described.append(f"{name} at {where}")
        lines[index] = f"{lines[index]}\n      = " + "\n        inlined into ".join(described)
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
