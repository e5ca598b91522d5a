"""Inside each running container of the hardened stack (every service of services.json): uid and gid 1001, no capability,
no_new_privs, seccomp filter mode with our profile, a read-only root file system (writes fail with
EROFS), /tmp writable but noexec. Read from the host (/proc/<pid>/..., docker inspect, the OCI
bundle), since the images have no shell to look from inside."""
import os

import pytest

from . import checks
from .stacks import SERVICE_LIST, SERVICES, writable_paths

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="reads /proc/<pid> of container processes and the OCI bundles: needs root")

WRITABLE = {service["compose"]: writable_paths(service) for service in SERVICE_LIST}


@pytest.mark.parametrize("service", SERVICES)
def test_process_runs_as_1001_without_capabilities_with_no_new_privs_and_seccomp(stack, service):
    identity = checks.process_identity(stack.container(service))
    assert identity["seccomp_filters"] == "1", identity


@pytest.mark.parametrize("service", SERVICES)
def test_docker_applied_the_security_options_and_our_profile(stack, service):
    checks.security_options(stack.container(service))


@pytest.mark.parametrize("service", SERVICES)
def test_runc_received_our_allowlist(stack, service):
    checks.runtime_filter(stack.container(service))


@pytest.mark.parametrize("service", SERVICES)
def test_root_file_system_is_read_only_and_tmp_writable(stack, service):
    checks.read_only_root(stack.container(service), WRITABLE[service])


@pytest.mark.parametrize("service", SERVICES)
def test_tmp_is_noexec(stack, service):
    checks.tmp_is_noexec(stack.container(service))


def test_every_running_container_has_memory_cpu_and_pids_limits(stack):
    running = stack.containers()
    assert len(running) >= len(SERVICES), running
    for container in running:
        checks.resource_limits(container)
