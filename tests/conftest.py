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


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root: creates network namespaces and interfaces")
    for item in items:
        if "root" in item.keywords:
            item.add_marker(skip)


def netns_list():
    """Names under /run/netns."""
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return sorted(line.split()[0] for line in out.splitlines() if line.strip())


def root_state():
    """The root namespace's links, addresses and routes (text), to prove labs leave no trace."""
    return {what: subprocess.run(["ip", "-o", *what.split()], capture_output=True, text=True).stdout
            for what in ("link show", "addr show", "route show table all")}
