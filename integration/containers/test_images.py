"""The runtime images: no shell, no package manager, no executable but the service and the
backtracer; user 1001, healthcheck, exec-form entry point, OCI labels, dpkg metadata for scanners;
and their sizes (each, and the three together with shared layers counted once)."""
import json
import subprocess
import tarfile

import pytest

from .stacks import SERVICES, docker, image_tag

FORBIDDEN = {"sh", "bash", "dash", "ash", "busybox", "apt", "apt-get", "dpkg", "dpkg-deb", "rpm", "yum", "microdnf", "apk",
             "su", "sudo", "login", "mount", "curl", "wget", "python3", "perl"}
# Files Docker itself creates in every container (empty mount points with mode 0755).
DOCKER_CREATED = {".dockerenv", "dev/console", "etc/hostname", "etc/hosts", "etc/resolv.conf"}


def exported_files(image: str) -> list[tarfile.TarInfo]:
    container = docker("create", image).stdout.strip()
    try:
        export = subprocess.Popen(["docker", "export", container], stdout=subprocess.PIPE)
        with tarfile.open(fileobj=export.stdout, mode="r|") as archive:
            members = [member for member in archive]
        assert export.wait(timeout=120) == 0
        return members
    finally:
        docker("rm", "-f", container, check=False)


@pytest.mark.parametrize("service", SERVICES.values())
def test_runtime_image_has_no_shell_no_package_manager_and_one_program(docker_engine, service):
    members = exported_files(f"{service}:{image_tag()}")
    names = {member.name.rstrip("/") for member in members}
    forbidden = sorted(name for name in names if name.rsplit("/", 1)[-1] in FORBIDDEN and ("bin/" in name or name.startswith("bin")))
    assert not forbidden, forbidden
    assert not [n for n in names if n.startswith(("var/lib/apt", "etc/apt", "var/cache/apt"))], "apt state in the image"
    assert "var/lib/dpkg/status" not in names, "a dpkg database: dpkg would work"
    metadata = sorted(n for n in names if n.startswith("var/lib/dpkg/status.d/") and not n.endswith(".md5sums"))
    assert "var/lib/dpkg/status.d/libc6" in metadata, metadata
    executables = sorted(
        member.name for member in members
        if member.isfile() and member.mode & 0o111 and member.name not in DOCKER_CREATED and ".so" not in member.name
    )
    assert executables == sorted([f"app/{service}", "app/swift-backtrace-static"]), executables


@pytest.mark.parametrize("service", SERVICES.values())
def test_image_configuration(docker_engine, service):
    config = json.loads(docker("image", "inspect", f"{service}:{image_tag()}").stdout)[0]["Config"]
    assert config["User"] == "1001:1001"
    assert config["WorkingDir"] == "/app"
    assert config["Entrypoint"] == [f"/app/{service}"], "exec form, the binary itself"
    assert config["Healthcheck"]["Test"] == ["CMD", f"/app/{service}", "--health-check"]
    assert config["StopSignal"] == "SIGTERM"
    labels = config["Labels"]
    for key in ("title", "description", "version", "revision", "created", "source", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert labels["org.opencontainers.image.title"] == service


def test_image_sizes_and_unique_bytes(docker_engine, measurements):
    images = [f"{service}:{image_tag()}" for service in SERVICES.values()]
    sizes = {image: json.loads(docker("image", "inspect", image).stdout)[0]["Size"] for image in images}
    # `docker save` of the three writes each layer once: the sum of its layer tars is what the
    # three images take together (uncompressed), shared layers counted once.
    save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
    layers = {}
    with tarfile.open(fileobj=save.stdout, mode="r|") as archive:
        for member in archive:
            if member.isfile() and (member.name.endswith("/layer.tar") or member.name.startswith("blobs/")):
                layers[member.name] = member.size
    assert save.wait(timeout=300) == 0
    unique = sum(layers.values())
    total = sum(sizes.values())
    for image, size in sizes.items():
        measurements.append(f"image {image}: {size / 1e6:.1f} MB")
    measurements.append(f"the three images together: {unique / 1e6:.1f} MB unique ({len(layers)} layers, shared ones once); "
                        f"sum of the three sizes {total / 1e6:.1f} MB")
    assert unique < total, "the three images share their lower layers"
    assert all(size < 200e6 for size in sizes.values()), sizes
