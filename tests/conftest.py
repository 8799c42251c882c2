"""Shared fixtures: root-only skipping, an isolated TOPO_HOME, and leak detection."""

import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
