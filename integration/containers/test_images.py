"""The runtime images: no shell, no package manager, no executable but the service and the
backtracer; user 1001, healthcheck, exec-form entry point, OCI labels, dpkg metadata for scanners;
and their sizes (each, and the three together with shared layers counted once)."""
import json
import re
import struct
import subprocess
import tarfile

import pytest

from . import checks
from .stacks import SERVICES, docker, image_tag

# Every service image has the same files (one runtime, one multi-call binary): the tests that read them
# read this one's.
FIRST_SERVICE = next(iter(SERVICES.values()))


@pytest.mark.parametrize("service", SERVICES.values())
def test_runtime_image_has_no_shell_no_package_manager_and_one_program(docker_engine, service, request):
    # The first service's image is exported once, for this test and the ones that read its files.
    members = request.getfixturevalue("first_image")[0] if service == FIRST_SERVICE else None
    checks.runtime_image_contents(f"{service}:{image_tag()}", members)


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
    # Issue 13: at most 90 MB per image and 160 MB for the set, with one multi-call binary in one
    # shared layer. Each image is under 90 MB since ICU's data was cut and libcurl and OpenSSL
    # were linked in (docs/containers.md, "Image sizes since issue 13").
    assert all(size <= 90e6 for size in sizes.values()), sizes
    assert unique <= 160e6, f"the images together take {unique / 1e6:.1f} MB, more than 160 MB"


DPKG_STANZAS = {package: f"var/lib/dpkg/status.d/{package}" for package in ("libcurl4", "libssl3")}


@pytest.fixture(scope="module")
def first_image(docker_engine):
    """The first service's image (every image has the same files), exported once for the tests that
    read it: its members, and the contents of /app/service and of libcurl4's and libssl3's dpkg
    metadata."""
    return checks.export_image(f"{FIRST_SERVICE}:{image_tag()}",
                               read=frozenset({"app/service", *DPKG_STANZAS.values()}))


@pytest.fixture(scope="module")
def shipped_binary(first_image):
    assert "app/service" in first_image[1], "the image has no /app/service"
    return first_image[1]["app/service"]


def icu_package_items(binary: bytes) -> dict[str, bytes]:
    """The items of the ICU common-data package in the binary, read as ICU's udata.cpp reads it:
    a header (its length in two bytes, the magic 0xda 0x27, `CmnD` at offset 12), then a uint32
    count and per item the offsets of its name and its data from the end of the header."""
    packages = [match.start() - 12 for match in re.finditer(rb"CmnD", binary)
                if binary[match.start() - 10:match.start() - 8] == b"\xda\x27"]
    assert len(packages) == 1, f"{len(packages)} ICU data packages in the binary"
    start = packages[0]
    base = start + struct.unpack_from("<H", binary, start)[0]
    count = struct.unpack_from("<I", binary, base)[0]
    table = [struct.unpack_from("<II", binary, base + 4 + 8 * index) for index in range(count)]
    names = [binary[base + name:binary.index(b"\0", base + name)].decode() for name, _ in table]
    assert names == sorted(names), "ICU looks items up by binary search: the names must be sorted"
    items = {}
    for index, (name, (_, data)) in enumerate(zip(names, table)):
        end = table[index + 1][1] if index + 1 < count else data + 16
        assert data % 16 == 0 and data < end, f"{name}: data at {data}"
        item = binary[base + data:base + end]
        assert item[2:4] == b"\xda\x27", f"{name} does not start with an ICU data header"
        items[name.split("/", 1)[1]] = item
    return items


def test_binary_carries_icu_data_of_root_and_english_only(shipped_binary):
    """docker/Dockerfile's icu-data stage cuts ICU's data to root, English and the items not tied to
    a locale (docker/icu-data-subset.swift): the shipped binary holds one well-formed package, walked
    here independently of the tool, with those items and none of the others."""
    binary = shipped_binary
    items = icu_package_items(binary)
    for kept in ("root.res", "en.res", "en_US_POSIX.res", "zoneinfo64.res", "timezoneTypes.res", "metaZones.res",
                 "likelySubtags.res", "uts46.nrm", "coll/ucadata.icu", "coll/root.res", "brkitr/word.brk"):
        assert kept in items, f"{kept} missing from the binary's ICU data ({len(items)} items)"
    for dropped in ("de.res", "zh_Hant_TW.res", "coll/zh.res", "brkitr/cjdict.dict", "translit/root.res"):
        assert dropped not in items, f"{dropped} is in the binary's ICU data: the full package was linked"
    assert not [item for item in items if item.endswith(".cnv")], "character-set converters in the binary"
    assert len(binary) < 80e6, f"the binary is {len(binary) / 1e6:.1f} MB"


def elf_sections(binary: bytes) -> dict[str, tuple[int, int]]:
    """The sections of a 64-bit little-endian ELF file, by name: (file offset, size).
    `--strip-all` keeps the section header table and its names."""
    assert binary[:4] == b"\x7fELF" and binary[4] == 2 and binary[5] == 1, "a 64-bit little-endian ELF file"
    section_headers, = struct.unpack_from("<Q", binary, 0x28)
    entry_size, count, names_index = struct.unpack_from("<HHH", binary, 0x3A)
    sections = [struct.unpack_from("<IIQQQQ", binary, section_headers + index * entry_size) for index in range(count)]
    names_offset = sections[names_index][4]
    return {binary[names_offset + name:binary.index(b"\0", names_offset + name)].decode(): (offset, size)
            for name, _, _, _, offset, size in sections}


def test_binary_has_packed_relative_relocations(shipped_binary):
    """Package.swift links code-services with lld and `-z pack-relative-relocs`: its relative
    relocations are a bitmap in `.relr.dyn` (DT_RELR) rather than 4.4 MB of `.rela.dyn` entries."""
    sizes = {name: size for name, (_, size) in elf_sections(shipped_binary).items()}
    assert sizes.get(".relr.dyn", 0) > 0, sorted(sizes)
    assert sizes.get(".rela.dyn", 0) < 1e6, f".rela.dyn is {sizes['.rela.dyn'] / 1e6:.1f} MB: linked without RELR"


def test_binary_holds_libcurl_and_openssl_and_the_image_says_which(first_image, shipped_binary):
    """docker/Dockerfile's libcurl-static stage builds Debian's curl (HTTP and HTTPS on OpenSSL) as
    a static library, and the build stage links it and OpenSSL into code-services, so the image
    carries no libcurl and none of the 27 libraries Debian's libcurl4 loads. The binary needs none of
    them shared; the image's dpkg metadata names libcurl4 and libssl3, so that scanners still see
    them, and the binary holds the curl and OpenSSL versions those stanzas name (the upstream part:
    the Debian revision is not in the binary)."""
    members, contents = first_image
    files = {member.name for member in members}
    binary = shipped_binary
    sections = elf_sections(binary)
    dynamic_offset, dynamic_size = sections[".dynamic"]
    strings_offset, _ = sections[".dynstr"]
    needed = []
    for offset in range(dynamic_offset, dynamic_offset + dynamic_size, 16):
        tag, value = struct.unpack_from("<qQ", binary, offset)
        if tag == 1:  # DT_NEEDED
            needed.append(binary[strings_offset + value:binary.index(b"\0", strings_offset + value)].decode())
    assert "libc.so.6" in needed and "libsqlite3.so.0" in needed, needed
    assert not [name for name in needed if name.startswith(("libcurl", "libssl", "libcrypto"))], needed

    assert not [name for name in files if re.search(r"/lib(curl|ssl|crypto|gnutls|nghttp2|ldap)[^/]*\.so", name)], \
        "a shared libcurl, TLS, HTTP/2 or LDAP library in the image"
    versions = {}
    for package, path in DPKG_STANZAS.items():
        assert path in contents, f"{package} has no dpkg metadata in the image"
        stanza = contents[path].decode()
        assert "Status: install ok installed" in stanza, stanza
        version = re.search(r"^Version: (?:\d+:)?([0-9.]+)-", stanza, re.MULTILINE)
        assert version, f"{package}'s dpkg metadata names no version:\n{stanza}"
        versions[package] = version[1].encode()
    # curl_version_info()'s version string, which FoundationNetworking reads, and OpenSSL's
    # version text, which curl reads.
    assert b"\0" + versions["libcurl4"] + b"\0" in binary, f"curl {versions['libcurl4'].decode()} is not in the binary"
    assert b"OpenSSL " + versions["libssl3"] + b" " in binary, f"OpenSSL {versions['libssl3'].decode()} is not in the binary"


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
