"""The runtime images: no shell, no package manager, no executable but the service and the
backtracer; user 1001, healthcheck, exec-form entry point, OCI labels, dpkg metadata for scanners;
and their sizes (each, and the three together with shared layers counted once)."""
import json
import subprocess
import tarfile

import pytest

from . import checks
from .stacks import SERVICES, docker, image_tag

@pytest.mark.parametrize("service", SERVICES.values())
def test_runtime_image_has_no_shell_no_package_manager_and_one_program(docker_engine, service):
    checks.runtime_image_contents(f"{service}:{image_tag()}")


@pytest.mark.parametrize("service", SERVICES.values())
def test_image_configuration(docker_engine, service):
    config = json.loads(docker("image", "inspect", f"{service}:{image_tag()}").stdout)[0]["Config"]
    assert config["User"] == "1001:1001"
    assert config["WorkingDir"] == "/app"
    assert config["Entrypoint"] == ["/app/service"], "exec form, the binary itself at the fixed path"
    assert config["Healthcheck"]["Test"] == ["CMD", "/app/service", "--health-check"]
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
    # Issue 13: one multi-call binary in one shared layer; the set within 160 MB.
    assert unique <= 160e6, f"the images together take {unique / 1e6:.1f} MB, more than 160 MB"


def test_service_images_share_every_layer(docker_engine):
    """Every service image is the same runtime and the same multi-call binary (docker/Dockerfile's
    `runtime` stage): identical layers, stored and pulled once; only the configuration differs, and
    CODE_SERVICE in it names the service the binary runs."""
    inspected = {service: json.loads(docker("image", "inspect", f"{service}:{image_tag()}").stdout)[0]
                 for service in SERVICES.values()}
    layers = {service: image["RootFS"]["Layers"] for service, image in inspected.items()}
    assert len({tuple(value) for value in layers.values()}) == 1, layers
    for service, image in inspected.items():
        assert f"CODE_SERVICE={service}" in image["Config"]["Env"], image["Config"]["Env"]
