"""The kernel-feature lane (DESIGN.md 7): a test that needs a kernel feature runs on the host
when the host's kernel has it, inside a User-Mode Linux guest when it does not, and is
skipped with the reason only when neither can.

The guest is Debian's ``user-mode-linux`` (kernel 6.1; gre, gretap, 8021q, netem, vxlan,
veth, bridge as modules), booted with the host's ``/`` as a read-only root under a tmpfs
overlay (see uml.py); it has no network card, so its traffic cannot leave it. These tests
prove the lane itself with real encapsulated traffic; topo's own tunnel tests will use
:func:`run_with_features`.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess

import pytest

from tests.kernel.uml import run_in_uml, uml_available

pytestmark = pytest.mark.root

#: how to make a throw-away link of each kind, to probe the running kernel
PROBES = {
    "gre": ["type", "gre", "local", "198.18.0.1", "remote", "198.18.0.2"],
    "gretap": ["type", "gretap", "local", "198.18.0.1", "remote", "198.18.0.2"],
    "vxlan": ["type", "vxlan", "id", "42", "dstport", "4789", "local", "198.18.0.1", "remote", "198.18.0.2"],
}


def host_has(feature: str) -> bool:
    """True when this host's kernel can create ``feature`` (a link kind, or netem)."""
    ns = "topo-probe-" + secrets.token_hex(3)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        if feature == "netem":
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
            argv = ["tc", "-n", ns, "qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"]
        else:
            argv = ["ip", "-n", ns, "link", "add", "probe0", *PROBES[feature]]
        return subprocess.run(argv, capture_output=True).returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def run_with_features(features: list[str], script: str, tmp_path) -> tuple[str, str]:
    """Run bash ``script`` where ``features`` exist: ("host"|"uml", output). Skips when neither."""
    if all(host_has(f) for f in features):
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return "host", proc.stdout
    why = uml_available()
    if why is not None:
        pytest.skip(f"this kernel lacks {', '.join(features)} and the UML lane is unavailable: {why}")
    rc, out = run_in_uml(["bash", "-c", script], workdir=str(tmp_path), timeout=240,
                         modules=["ipv6", "ip_gre", "sch_netem", "bridge", "veth"])
    assert rc == 0, out
    return "uml", out


# Two namespaces joined by a veth underlay (198.18.0.0/30); everything stays inside them.
UNDERLAY = r"""
set -eu
A=la$SUFFIX; B=lb$SUFFIX
trap 'ip netns del $A 2>/dev/null; ip netns del $B 2>/dev/null' EXIT
ip netns add $A; ip netns add $B
ip link add u0 netns $A type veth peer name u0 netns $B
ip -n $A addr add 198.18.0.1/30 dev u0; ip -n $A link set u0 up; ip -n $A link set lo up
ip -n $B addr add 198.18.0.2/30 dev u0; ip -n $B link set u0 up; ip -n $B link set lo up
"""


def _script(body: str) -> str:
    return f"SUFFIX={secrets.token_hex(2)}\n" + UNDERLAY + body


def test_gre_tunnel_carries_traffic(tmp_path):
    where, out = run_with_features(["gre"], _script(r"""
for ns in $A $B; do
  if [ $ns = $A ]; then L=198.18.0.1 R=198.18.0.2 O=198.18.1.1; else L=198.18.0.2 R=198.18.0.1 O=198.18.1.2; fi
  ip -n $ns link add gre1 type gre local $L remote $R ttl 64 key 7
  ip -n $ns addr add $O/30 dev gre1; ip -n $ns link set gre1 up
done
ip netns exec $A ping -c 3 -i 0.2 -W 2 198.18.1.2
ip -n $A -s link show gre1
"""), tmp_path)
    assert "3 received" in out, (where, out)
    assert re.search(r"gre1@NONE", out), out


def test_gretap_on_a_bridge_carries_frames(tmp_path):
    where, out = run_with_features(["gretap"], _script(r"""
for ns in $A $B; do
  if [ $ns = $A ]; then L=198.18.0.1 R=198.18.0.2 O=198.18.2.1; else L=198.18.0.2 R=198.18.0.1 O=198.18.2.2; fi
  ip -n $ns link add gtap1 type gretap local $L remote $R ttl 64
  ip -n $ns link add br0 type bridge
  ip -n $ns link set gtap1 master br0; ip -n $ns link set gtap1 up
  ip -n $ns addr add $O/24 dev br0; ip -n $ns link set br0 up
done
ip netns exec $A ping -c 3 -i 0.2 -W 2 198.18.2.2
"""), tmp_path)
    assert "3 received" in out, (where, out)


def test_netem_delay_shows_in_rtt(tmp_path):
    where, out = run_with_features(["netem"], _script(r"""
ip netns exec $A tc qdisc add dev u0 root netem delay 50ms
ip netns exec $A ping -c 3 -i 0.2 -W 2 198.18.0.2
"""), tmp_path)
    avg = float(re.search(r"= [\d.]+/([\d.]+)/", out).group(1))
    assert 50.0 <= avg < 80.0, (where, avg, out)


def test_the_lane_leaves_no_process_behind(tmp_path):
    if uml_available() is not None:
        pytest.skip(f"UML lane unavailable: {uml_available()}")
    rc, out = run_in_uml(["sh", "-c", "echo inside; uname -r"], workdir=str(tmp_path), timeout=60)
    assert rc == 0 and "inside" in out
    left = subprocess.run(["ps", "-eo", "comm"], capture_output=True, text=True).stdout.split()
    assert "linux.uml" not in left
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".uml-job-")]
