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

from tests.kernel.lane import lane_unavailable, run_with_features
from tests.kernel.uml import run_in_uml, session_members

pytestmark = pytest.mark.root

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
    # the minimum: a busy host (the shared lane guest runs beside) delays some replies more
    low = float(re.search(r"= ([\d.]+)/", out).group(1))
    assert 50.0 <= low < 80.0, (where, low, out)


def test_the_lane_leaves_no_process_behind(tmp_path):
    if lane_unavailable() is not None:
        pytest.skip(f"UML lane unavailable: {lane_unavailable()}")
    guest = []
    rc, out = run_in_uml(["sh", "-c", "echo inside; uname -r"], workdir=str(tmp_path), timeout=60,
                         on_start=guest.append)
    assert rc == 0 and "inside" in out
    assert guest and session_members(guest[0]) == []
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".uml-job-")]


@pytest.mark.kernel("gre")
def test_a_marked_test_runs_where_its_feature_is():
    """The ``kernel`` marker: on a host without gre this very test runs in the UML guest."""
    from tests.kernel.lane import missing
    assert missing(["gre"]) == []
    ns = "tl" + secrets.token_hex(3)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        subprocess.run(["ip", "-n", ns, "link", "add", "g1", "type", "gre", "local", "198.18.0.1",
                        "remote", "198.18.0.2"], check=True)
        out = subprocess.run(["ip", "-n", ns, "-d", "link", "show", "g1"], capture_output=True, text=True).stdout
        assert "gre remote 198.18.0.2 local 198.18.0.1" in out, out
    finally:
        subprocess.run(["ip", "netns", "del", ns])
