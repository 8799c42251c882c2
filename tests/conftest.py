"""Shared fixtures: root-only skipping, an isolated TOPO_HOME, and leak detection."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Tests run ansible-playbook, ansible and ansible-inventory by name: use the ones installed
# beside this Python (the /opt/topo virtualenv in CI), not whatever PATH finds first.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])


def pytest_configure(config):
    config.addinivalue_line("markers", "kernel(*features): needs these kernel features (gre, gretap, vxlan, "
                            "vlan, netem, tbf); runs in a UML guest where the host lacks them")


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem):
    """A ``kernel``-marked test whose features this kernel lacks runs in a UML guest instead."""
    marker = pyfuncitem.get_closest_marker("kernel")
    if marker is None or os.geteuid() != 0:
        return None
    from tests.kernel.lane import missing, run_test_in_guest
    lacking = missing(marker.args)
    if not lacking:
        return None
    if os.environ.get("UML_GUEST"):
        pytest.fail(f"the UML guest's kernel lacks {', '.join(lacking)}", pytrace=False)
    workdir = pyfuncitem.funcargs.get("tmp_path") or pyfuncitem.config._tmp_path_factory.mktemp("lane")
    run_test_in_guest(pyfuncitem, list(marker.args), str(workdir))
    return True


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        if not config.option.collectonly:
            # after -k/-m deselection (trylast): the tests the host kernel cannot run go last,
            # and one UML guest starts running them now, beside the host's own tests
            from tests.kernel.lane import start_lane
            items[:] = start_lane(items)
        return
    skip = pytest.mark.skip(reason="needs root: creates network namespaces and interfaces")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


def pytest_sessionfinish(session, exitstatus):
    from tests.kernel.lane import stop_lane
    stop_lane()


def netns_list():
    """Names under /run/netns."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.strip())


def root_state():
    """The root namespace's links, addresses and routes (text), to prove labs leave no trace."""
    return {what: subprocess.run(["ip", "-o", *what.split()], capture_output=True, text=True).stdout
            for what in ("link show", "addr show", "route show table all")}


# --------------------------------------------------------------------------- Docker

#: The node image the Docker tests run (topo image build's default).
NODE_IMAGE = "topo-node:latest"


def docker_or_reason():
    """(Docker SDK client, None) when a dockerd answers and the node image is present - built
    for real with ``topo image build --offline`` when missing - else (None, why not)."""
    try:
        import docker
        client = docker.from_env(timeout=60)
        client.ping()
    except Exception as exc:  # DockerException, requests' and socket errors
        return None, f"no dockerd answers ({str(exc).splitlines()[0][:120] if str(exc) else exc!r}); " \
                     "the Docker tests need one (.ci/run starts it)"
    try:
        client.images.get(NODE_IMAGE)
    except docker.errors.ImageNotFound:
        proc = subprocess.run([sys.executable, "-m", "topo", "image", "build", "--offline"],
                              capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            return None, f"topo image build --offline failed: {proc.stderr[-500:]}"
    return client, None


_DOCKER = []


@pytest.fixture(scope="session")
def docker_client():
    """A Docker SDK client with the node image present; skips (with the reason) only where
    no dockerd can be reached. Tests that use it must remove their containers."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not _DOCKER:
        _DOCKER.append(docker_or_reason())
    client, reason = _DOCKER[0]
    if client is None:
        pytest.skip(reason)
    return client
