"""Shared fixtures: root-only skipping, an isolated TOPO_HOME, and leak detection."""

import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Tests run ansible-playbook, ansible and ansible-inventory by name: use the ones installed
# beside this Python (the /opt/topo virtualenv in CI), not whatever PATH finds first.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])


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
