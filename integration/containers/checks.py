"""Checks of one running service container's hardening, from the host: the process's credentials in
/proc/<pid>/status, its mounts in /proc/<pid>/mountinfo, writes through /proc/<pid>/root (which go
through the container's own mounts), `docker exec` of a copied binary in /tmp, and what Docker and
runc were told (docker inspect, the OCI bundle's config.json). Used by test_hardening.py for the
base stack and by test_prod.py for the prod overlay."""
from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

from .stacks import docker, inspect, proc_status, seccomp_profile

OCI_BUNDLES = Path("/run/docker/containerd/daemon/io.containerd.runtime.v2.task/moby")


def allowed_names(profile: dict) -> set[str]:
    return {name for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" for name in rule["names"]}


def pid_of(container: str) -> int:
    pid = inspect(container)["State"]["Pid"]
    assert pid > 0, f"{container} is not running"
    return pid


def resource_limits(container: str) -> dict:
    """Memory, CPU and process-count limits, as Docker was told and as the kernel enforces them: the
    container's cgroup (v2 or v1) read from the host."""
    info = inspect(container)
    host = info["HostConfig"]
    name = info["Name"].lstrip("/")
    assert host["Memory"] > 0, f"{name}: no memory limit"
    assert host["NanoCpus"] > 0 or host["CpuQuota"] > 0, f"{name}: no CPU limit"
    assert (host["PidsLimit"] or 0) > 0, f"{name}: no pids limit"
    pid = pid_of(container)
    cgroup = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    unified = [line.split(":", 2)[2] for line in cgroup if line.startswith("0::")]
    if unified and Path("/sys/fs/cgroup/cgroup.controllers").exists():
        base = Path("/sys/fs/cgroup") / unified[0].lstrip("/")
        enforced = {"memory": (base / "memory.max").read_text().strip(), "pids": (base / "pids.max").read_text().strip()}
    else:
        paths = {line.split(":", 2)[1]: line.split(":", 2)[2] for line in cgroup}
        memory = next(path for controllers, path in paths.items() if "memory" in controllers.split(","))
        pids = next(path for controllers, path in paths.items() if "pids" in controllers.split(","))
        enforced = {
            "memory": Path(f"/sys/fs/cgroup/memory{memory}/memory.limit_in_bytes").read_text().strip(),
            "pids": Path(f"/sys/fs/cgroup/pids{pids}/pids.max").read_text().strip(),
        }
    assert enforced["memory"] == str(host["Memory"]), f"{name}: cgroup memory limit {enforced['memory']}, Docker says {host['Memory']}"
    assert enforced["pids"] == str(host["PidsLimit"]), f"{name}: cgroup pids limit {enforced['pids']}, Docker says {host['PidsLimit']}"
    return {"memory": host["Memory"], "cpus": (host["NanoCpus"] or 0) / 1e9, "pids": host["PidsLimit"]}


def process_identity(container: str) -> dict:
    """uid/gid 1001, no capability in any set, no_new_privs, seccomp filter mode; every thread."""
    pid = pid_of(container)
    problems = []
    tasks = sorted(Path(f"/proc/{pid}/task").iterdir())
    for task in tasks:
        status = proc_status(int(task.name)) if task.name == str(pid) else dict(
            line.split(":", 1) for line in (task / "status").read_text().splitlines() if ":" in line)
        status = {k: v.strip() for k, v in status.items()}
        expected = {
            "Uid": "1001\t1001\t1001\t1001", "Gid": "1001\t1001\t1001\t1001",
            "CapInh": "0" * 16, "CapPrm": "0" * 16, "CapEff": "0" * 16, "CapBnd": "0" * 16, "CapAmb": "0" * 16,
            "NoNewPrivs": "1", "Seccomp": "2",
        }
        # Supplementary groups: at most the user's own group (runc adds those of /etc/group).
        if not set(status.get("Groups", "").split()) <= {"1001"}:
            problems.append(f"task {task.name}: supplementary groups {status.get('Groups')!r}")
        for key, value in expected.items():
            if status.get(key) != value:
                problems.append(f"task {task.name}: {key} is {status.get(key)!r}, expected {value!r}")
    assert not problems, problems
    return {"pid": pid, "threads": len(tasks), "seccomp_filters": proc_status(pid).get("Seccomp_filters")}


def security_options(container: str, writable: tuple[str, ...] = ("/tmp",)) -> None:
    """What Docker was told: read-only root, no capability, no-new-privileges, our seccomp profile."""
    info = inspect(container)
    host = info["HostConfig"]
    assert host["ReadonlyRootfs"] is True, host["ReadonlyRootfs"]
    assert host["CapDrop"] == ["ALL"] and not host["CapAdd"], (host["CapDrop"], host["CapAdd"])
    assert host["Privileged"] is False
    assert info["Config"]["User"] == "1001:1001", info["Config"]["User"]
    options = host["SecurityOpt"] or []
    assert "no-new-privileges:true" in options, options
    seccomp = [option.split("=", 1)[1] for option in options if option.startswith("seccomp=")]
    assert len(seccomp) == 1, f"expected one seccomp option, got {[o[:40] for o in options]}"
    assert json.loads(seccomp[0]) == json.loads(seccomp_profile().read_text()), "the seccomp profile is not compose/seccomp/code-services.json"
    assert host["Tmpfs"] == {"/tmp": "noexec,nosuid,size=100m"}, host["Tmpfs"]


def runtime_filter(container: str) -> dict:
    """What runc was told: the OCI config.json that dockerd handed to containerd holds our allowlist."""
    bundle = OCI_BUNDLES / inspect(container)["Id"] / "config.json"
    assert bundle.exists(), f"no OCI bundle at {bundle}"
    seccomp = json.loads(bundle.read_text())["linux"]["seccomp"]
    profile = json.loads(seccomp_profile().read_text())
    assert seccomp["defaultAction"] == profile["defaultAction"], seccomp["defaultAction"]
    assert allowed_names(seccomp) == allowed_names(profile), allowed_names(seccomp) ^ allowed_names(profile)
    assert "SCMP_ARCH_X86_64" in seccomp["architectures"] or "SCMP_ARCH_AARCH64" in seccomp["architectures"], seccomp["architectures"]
    return {"allowed": len(allowed_names(seccomp)), "architectures": seccomp["architectures"]}


def mounts(container: str) -> dict[str, dict]:
    """mountinfo of the container's process: mount point -> options and file system type."""
    found = {}
    for line in Path(f"/proc/{pid_of(container)}/mountinfo").read_text().splitlines():
        fields = line.split()
        separator = fields.index("-")
        found[fields[4]] = {"options": set(fields[5].split(",")), "fstype": fields[separator + 1],
                            "super": set(fields[separator + 3].split(","))}
    return found


def read_only_root(container: str, writable: tuple[str, ...]) -> dict:
    """/ is mounted ro; a write anywhere on it fails with EROFS; /tmp (and `writable`) accept one."""
    table = mounts(container)
    assert "ro" in table["/"]["options"], table["/"]
    tmp = table["/tmp"]
    assert tmp["fstype"] == "tmpfs" and {"noexec", "nosuid", "rw"} <= tmp["options"], tmp
    root = Path(f"/proc/{pid_of(container)}/root")
    refused = {}
    for directory in ("/", "/app", "/etc", "/usr/lib", "/var", "/home"):
        target = root / directory.lstrip("/") / ".e2e-write-test"
        try:
            target.write_text("x")
            target.unlink()
            refused[directory] = "written"
        except OSError as error:
            refused[directory] = errno.errorcode.get(error.errno, str(error.errno))
    assert all(result == "EROFS" for result in refused.values()), refused
    for directory in writable:
        target = root / directory.lstrip("/") / ".e2e-write-test"
        target.write_text("x")
        target.unlink()
    return refused


def tmp_is_noexec(container: str) -> str:
    """A binary copied into /tmp does not run (`docker exec` under the container's own options),
    while `docker exec` of the service binary in /app does: the refusal is the noexec mount."""
    root = Path(f"/proc/{pid_of(container)}/root")
    copy = root / "tmp" / "e2e-exec-test"
    # The static backtracer (10 MB) fits the 100 MB tmpfs; the service binaries do not.
    shutil.copyfile(root / "app" / "swift-backtrace-static", copy)
    os.chmod(copy, 0o755)
    try:
        refused = docker("exec", container, "/tmp/e2e-exec-test", "--version", check=False, timeout=60)
        allowed = docker("exec", container, "/app/service", "--version", check=False, timeout=60)
    finally:
        copy.unlink()
    assert allowed.returncode == 0, (allowed.stdout, allowed.stderr)
    assert refused.returncode != 0 and "permission denied" in (refused.stdout + refused.stderr).lower(), (refused.returncode, refused.stdout, refused.stderr)
    return refused.stderr.strip().splitlines()[-1] if refused.stderr.strip() else refused.stdout.strip()


# Programs a runtime image must not carry, by file name, anywhere under a bin folder.
FORBIDDEN_PROGRAMS = {"sh", "bash", "dash", "ash", "busybox", "apt", "apt-get", "dpkg", "dpkg-deb", "rpm", "yum", "microdnf", "apk",
                      "su", "sudo", "login", "mount", "curl", "wget", "python3", "perl"}
# Files Docker itself creates in every container (empty mount points with mode 0755).
DOCKER_CREATED = {".dockerenv", "dev/console", "etc/hostname", "etc/hosts", "etc/resolv.conf"}


def export_image(image: str, read: frozenset[str] = frozenset()) -> tuple[list[tarfile.TarInfo], dict[str, bytes]]:
    """The files of a container of `image` (`docker export`, read as a stream), and the contents of the
    regular files named in `read` (paths without a leading slash)."""
    container = docker("create", image).stdout.strip()
    try:
        export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
        members, contents = [], {}
        with tarfile.open(fileobj=export.stdout, mode="r|") as archive:
            for member in archive:
                members.append(member)
                if member.name in read and member.isfile():
                    contents[member.name] = archive.extractfile(member).read()
        assert export.wait(timeout=120) == 0
        return members, contents
    finally:
        docker("rm", "-f", container, check=False)


def exported_files(image: str) -> list[tarfile.TarInfo]:
    return export_image(image)[0]


def runtime_image_contents(image: str, members: list[tarfile.TarInfo] | None = None) -> None:
    """No shell, no package manager, no apt or dpkg state, dpkg metadata for scanners, and no
    executable but the service at /app/service and the crash backtracer. `members`: the image's
    files when the caller has exported it already."""
    members = members if members is not None else exported_files(image)
    names = {member.name.rstrip("/") for member in members}
    forbidden = sorted(name for name in names if name.rsplit("/", 1)[-1] in FORBIDDEN_PROGRAMS and ("bin/" in name or name.startswith("bin")))
    assert not forbidden, forbidden
    assert not [n for n in names if n.startswith(("var/lib/apt", "etc/apt", "var/cache/apt"))], "apt state in the image"
    assert "var/lib/dpkg/status" not in names, "a dpkg database: dpkg would work"
    metadata = sorted(n for n in names if n.startswith("var/lib/dpkg/status.d/") and not n.endswith(".md5sums"))
    assert "var/lib/dpkg/status.d/libc6" in metadata, metadata
    executables = sorted(
        member.name for member in members
        if member.isfile() and member.mode & 0o111 and member.name not in DOCKER_CREATED and ".so" not in member.name
    )
    assert executables == ["app/service", "app/swift-backtrace-static"], executables
