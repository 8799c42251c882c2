"""A tunnel whose other end is outside the lab (issue 14): examples/outside-peer.yml builds
vtep1's VXLAN end (VNI 77, remote 192.0.2.100); the test builds the outside VTEP by hand, a
plain namespace with its own VXLAN device that topo knows nothing of, plugged into the lab's
wan bridge. Pings cross; re-apply changes nothing; destroy removes the lab and leaves the
outside namespace as it was (apart from the test's own plug, a veth the kernel removes with
its other end in the lab's bridge namespace)."""

import json
import subprocess
import time

import pytest

from tests.conftest import netns_list, root_state

pytestmark = [pytest.mark.root, pytest.mark.slow]

EXAMPLE = "examples/outside-peer.yml"
OUTSIDE = "e2e-outside-vtep"  # not a topo-* name: nothing of the lab's
WAN_NS = "topo-outside-wan"  # the lab's wan bridge lives there


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def links(netns):
    """``{ifname: (ifindex, kind, vni, local, remote, mtu, operstate, [addresses])}`` read with ``ip -j``."""
    out = {}
    addrs = {a["ifname"]: sorted(f"{i['local']}/{i['prefixlen']}" for i in a.get("addr_info", []))
             for a in json.loads(ip("-n", netns, "-j", "addr", "show").stdout)}
    for link in json.loads(ip("-n", netns, "-j", "-d", "link", "show").stdout):
        info = (link.get("linkinfo") or {}).get("info_data") or {}
        out[link["ifname"]] = (link["ifindex"], (link.get("linkinfo") or {}).get("info_kind"), info.get("id"),
                               info.get("local"), info.get("remote"), link["mtu"], link["operstate"],
                               addrs.get(link["ifname"], []))
    return out


def build_outside():
    """The outside VTEP as a user would make it (the commands in the example's header)."""
    ip("netns", "add", OUTSIDE)
    ip("link", "add", "out0", "netns", OUTSIDE, "type", "veth", "peer", "name", "outside-p0", "netns", WAN_NS)
    ip("-n", WAN_NS, "link", "set", "outside-p0", "master", "wan", "up")
    ip("-n", OUTSIDE, "addr", "add", "192.0.2.100/24", "dev", "out0")
    ip("-n", OUTSIDE, "link", "set", "out0", "up")
    ip("-n", OUTSIDE, "link", "set", "lo", "up")
    ip("-n", OUTSIDE, "link", "add", "vxlan77", "type", "vxlan", "id", "77", "local", "192.0.2.100",
       "remote", "192.0.2.1", "dstport", "4789")
    ip("-n", OUTSIDE, "addr", "add", "10.77.0.100/24", "dev", "vxlan77")
    ip("-n", OUTSIDE, "link", "set", "vxlan77", "mtu", "1450", "up")


def ping(netns, address):
    return subprocess.run(["ip", "netns", "exec", netns, "ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", address],
                          capture_output=True, text=True)


def test_one_ended_vxlan_reaches_a_vtep_outside_the_lab(topo_cli):
    before = root_state()
    try:
        first = topo_cli.json("apply", EXAMPLE)
        assert first["changed"] > 0
        # h1 <-> h2 only: nothing in the lab answers for the outside peer, so no default ping goes there
        assert first["checks"] == {"total": 2, "passed": 2, "failed": 0}
        vtep1 = links("topo-outside-vtep1")["vxlan77"]
        assert vtep1[1:6] == ("vxlan", 77, "192.0.2.1", "192.0.2.100", 1450), vtep1

        build_outside()
        # across VNI 77 both ways, from two lab hosts on the stretched LAN and from the outside VTEP
        for netns, dst in (("topo-outside-h1", "10.77.0.100"), ("topo-outside-h2", "10.77.0.100"),
                           (OUTSIDE, "10.77.0.1"), (OUTSIDE, "10.77.0.2")):
            r = ping(netns, dst)
            assert r.returncode == 0 and " 0% packet loss" in r.stdout, (netns, dst, r.stdout, r.stderr)
        r = ping(OUTSIDE, "10.77.0.3")  # nobody has it: the ping above is not answered by anything else
        assert r.returncode != 0

        outside = links(OUTSIDE)
        again = topo_cli.json("apply", EXAMPLE)
        assert again["changed"] == 0, again["changes"]
        assert again["checks"]["failed"] == 0
        assert topo_cli.json("plan", EXAMPLE)["changes"] == []
        assert links(OUTSIDE) == outside, "apply never touches the outside namespace"
        assert "outside-p0" in links(WAN_NS), "the test's own port on the lab's bridge is left alone"
        assert ping("topo-outside-h1", "10.77.0.100").returncode == 0

        shown = topo_cli.json("show", EXAMPLE)
        assert all(i["state"] == "up" for n in shown["nodes"] for i in n["interfaces"])
        vxlan = [i for n in shown["nodes"] if n["node"] == "vtep1" for i in n["interfaces"] if i["ifname"] == "vxlan77"]
        assert vxlan and vxlan[0]["peer"] == "outside 192.0.2.100"

        gone = topo_cli.json("destroy", EXAMPLE)
        assert len(gone["labs"][0]["removed"]) >= 3
        assert not [n for n in netns_list() if n.startswith("topo-outside-")]
        assert OUTSIDE in netns_list()
        # the kernel removes a veth pair with either end: the plug goes with the lab's wan
        # namespace, which the kernel tears down asynchronously once its last user is gone
        # (cleanup_net: gone within 0.5 s of destroy's exit here), so wait for it, boundedly
        deadline = time.monotonic() + 5
        while "out0" in (left := links(OUTSIDE)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert left == {k: v for k, v in outside.items() if k != "out0"}, (left, outside)
        assert left["vxlan77"] == outside["vxlan77"], "the outside VXLAN device is the same, unchanged"
    finally:
        ip("netns", "del", OUTSIDE, check=False)
        topo_cli("destroy", "--lab", "outside", check=False)
    assert root_state() == before, "the root namespace must be exactly as before"
