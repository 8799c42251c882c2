"""The kernel-feature lane (DESIGN.md 7): run a test where the kernel has what it needs.

A test marked ``@pytest.mark.kernel("gre", "netem")`` runs on the host when the host's
kernel has every listed feature; otherwise the whole test (fixtures included) runs again
inside a User-Mode Linux guest (uml.py: Debian's ``linux.uml``, kernel 6.1 with gre,
gretap, vxlan, 8021q, netem as modules, the host's ``/`` as a read-only root under a tmpfs
overlay, no network card); it is skipped with the reason only when neither is possible.
Inside the guest ``UML_GUEST=1`` is set, so the same test then runs for real.

Features are probed by making a throw-away object in a scratch namespace: a link of
that kind, or a qdisc (``netem``, ``tbf``) on its lo.
"""

from __future__ import annotations

import functools
import os
import secrets
import subprocess
import sys

import pytest

from tests.kernel.uml import run_in_uml, uml_available

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: how to make a throw-away object of each feature in a scratch namespace (ip/tc argv tails)
PROBES = {
    "gre": ["link", "add", "probe0", "type", "gre", "local", "198.18.0.1", "remote", "198.18.0.2"],
    "gretap": ["link", "add", "probe0", "type", "gretap", "local", "198.18.0.1", "remote", "198.18.0.2"],
    "vxlan": ["link", "add", "probe0", "type", "vxlan", "id", "42", "dstport", "4789",
              "local", "198.18.0.1", "remote", "198.18.0.2"],
    "ip6gre": ["link", "add", "probe0", "type", "ip6gre", "local", "2001:db8::1", "remote", "2001:db8::2"],
    "ip6gretap": ["link", "add", "probe0", "type", "ip6gretap", "local", "2001:db8::1", "remote", "2001:db8::2"],
    "vlan": ["link", "add", "link", "lo", "name", "probe0", "type", "vlan", "id", "42"],
    "netem": ["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
    "tbf": ["qdisc", "add", "dev", "lo", "root", "tbf", "rate", "1mbit", "burst", "32kbit", "latency", "50ms"],
}
#: modules the guest loads before the test (the rest auto-load on demand)
GUEST_MODULES = ["ipv6", "ip_gre", "ip6_gre", "vxlan", "sch_netem", "sch_tbf", "bridge", "veth"]


@functools.lru_cache(maxsize=None)
def host_has(feature: str) -> bool:
    """True when this kernel can make ``feature`` (a key of PROBES)."""
    ns = "topo-probe-" + secrets.token_hex(3)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        tool = "tc" if PROBES[feature][0] == "qdisc" else "ip"
        argv = [tool, "-n", ns, *PROBES[feature]]
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        return subprocess.run(argv, capture_output=True).returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def missing(features) -> list[str]:
    return [f for f in features if not host_has(f)]


@functools.lru_cache(maxsize=None)
def lane_unavailable() -> str | None:
    """None when a UML guest boots here (tried once per session), else the reason."""
    return uml_available(boot_test=True)


def run_with_features(features: list[str], script: str, tmp_path) -> tuple[str, str]:
    """Run bash ``script`` where ``features`` exist: ("host"|"uml", output). Skips when neither."""
    if not missing(features):
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return "host", proc.stdout
    why = lane_unavailable()
    if why is not None:
        pytest.skip(f"this kernel lacks {', '.join(features)} and the UML lane is unavailable: {why}")
    rc, out = run_in_uml(["bash", "-c", script], workdir=str(tmp_path), timeout=240, modules=GUEST_MODULES)
    assert rc == 0, out
    return "uml", out


def run_test_in_guest(item, features: list[str], workdir: str, timeout: float = 600) -> None:
    """Run pytest node ``item`` inside a UML guest; fail with its output unless it passed."""
    why = lane_unavailable()
    if why is not None:
        pytest.skip(f"this kernel lacks {', '.join(features)} and the UML lane is unavailable: {why}")
    nodeid = item.nodeid
    argv = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
            "--rootdir", ROOT, "-o", "addopts=-ra", nodeid]
    rc, out = run_in_uml(argv, workdir=workdir, cwd=ROOT, timeout=timeout, mem="2G",
                         modules=GUEST_MODULES, share=[ROOT], env={"TOPO_LANE": "uml"})
    item.user_properties.append(("lane", "uml"))
    if rc != 0 or " passed" not in out:
        pytest.fail(f"in the UML guest (this kernel lacks {', '.join(features)}), "
                    f"{nodeid} exited {rc}:\n{out[-6000:]}", pytrace=False)
