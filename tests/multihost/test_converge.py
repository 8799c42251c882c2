"""A lab over three build hosts converges like one on a single machine (issue 12): drift on
one host is repaired there and nowhere else; a node moved to another host is gone from the
old one and made on the new one, its stitches re-made, nothing left behind; a host lost
during an apply is named, the others finish, and the next apply converges.

The lab: a chain a - b - c - d placed by hand (a, b on bh1; c on bh2; d on bh3), so b-c and
c-d are cross-host links (point-to-point VXLANs over the underlay) and `routing: auto` routes
across all three hosts.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from tests.multihost.conftest import CONTROLLER_NS, ROOT, UNDERLAY_NS, sh

pytestmark = pytest.mark.root

HOSTS = ("bh1", "bh2", "bh3")


def chain(placement: dict) -> str:
    nodes = "\n".join(f"  {n}: {{host: {h}, forwarding: true}}" for n, h in placement.items())
    return f"name: mhconv\nrouting: auto\nnodes:\n{nodes}\nlinks:\n  - [a, b]\n  - [b, c]\n  - [c, d]\n"


PLACED = {"a": "bh1", "b": "bh1", "c": "bh2", "d": "bh3"}


def lab_objects(sim) -> dict:
    """``{host: (namespaces of the lab, links of the host's own namespace)}`` read on each host."""
    got = {}
    for h in HOSTS:
        links = sorted(link["ifname"] for link in json.loads(sim.on_host(h, "ip", "-j", "link")))
        got[h] = ([n for n in sim.netns_on(h) if n.startswith("topo-mhconv-")], links)
    return got


@pytest.fixture
def lab(sim, tmp_path):
    path = tmp_path / "mhconv.yml"
    path.write_text(chain(PLACED))
    yield path
    sim.topo("destroy", "--lab", "mhconv", "--hosts", sim.inventory["three"], check=False)
    for h in HOSTS:
        assert [n for n in sim.netns_on(h) if n.startswith("topo-mhconv-")] == [], h


def apply(sim, path, *more, check=True):
    return sim.topo_json("apply", str(path), "--hosts", sim.inventory["three"], *more, check=check)


def test_drift_on_one_host_is_repaired_there(sim, lab):
    first = apply(sim, lab)
    assert first["checks"]["failed"] == 0 and first["checks"]["passed"] >= 12, first["checks"]
    # by hand on bh2: c's end of the cross-host link to b (a VXLAN) deleted, its address to d flushed
    c = "topo-mhconv-c"
    ifaces = json.loads(sim.on_host("bh2", "ip", "-n", c, "-j", "-d", "link"))
    stitched = [i["ifname"] for i in ifaces if i.get("linkinfo", {}).get("info_kind") == "vxlan"]
    assert len(stitched) == 2, ifaces           # both of c's links cross hosts
    sim.on_host("bh2", "ip", "-n", c, "link", "del", stitched[0])
    sim.on_host("bh2", "ip", "-n", c, "addr", "flush", "dev", stitched[1], "scope", "global")
    plan = sim.topo_json("plan", str(lab), "--hosts", sim.inventory["three"])
    assert plan["changes"] and {ch["host"] for ch in plan["changes"]} == {"bh2"}, plan["changes"]
    fixed = apply(sim, lab)
    assert {ch["host"] for ch in fixed["changes"]} == {"bh2"}, fixed["changes"]
    assert sorted((ch["action"], ch["resource"], ch["name"]) for ch in fixed["changes"]) == \
        sorted((ch["action"], ch["resource"], ch["name"]) for ch in plan["changes"])
    assert fixed["checks"]["failed"] == 0, fixed["checks"]
    assert apply(sim, lab, "--no-verify")["changes"] == []


def test_a_node_moved_to_another_host_converges(sim, lab):
    apply(sim, lab, "--no-verify")
    before = lab_objects(sim)
    assert "topo-mhconv-c" in before["bh2"][0]
    lab.write_text(chain(dict(PLACED, c="bh3")))
    moved = apply(sim, lab)
    assert moved["checks"]["failed"] == 0 and moved["checks"]["passed"] >= 12, moved["checks"]
    after = lab_objects(sim)
    assert after["bh2"][0] == [] and sorted(after["bh3"][0]) == ["topo-mhconv-c", "topo-mhconv-d"], after
    # nothing of the lab is left on bh2: its own namespace holds only what the host had
    assert after["bh2"][1] == ["eth0", "lo"], after["bh2"]
    assert {ch["host"] for ch in moved["changes"]} >= {"bh2", "bh3"}
    assert apply(sim, lab, "--no-verify")["changes"] == []


#: nodes per host of the lab lost mid-apply: enough that the apply is still building when
#: the first namespaces appear on bh1
PER_HOST = 50


def test_a_host_lost_during_apply_is_named_and_the_next_apply_converges(sim, tmp_path):
    """bh3's underlay port goes down while the apply runs (its SSH sessions go silent, as
    when a machine dies): the apply ends non-zero naming bh3 within the SSH keep-alive
    bound, bh1 and bh2 are built; with bh3 back, the next apply converges."""
    nodes = {f"n{i}": HOSTS[i % 3] for i in range(PER_HOST * 3)}
    text = "name: mhlost\nnodes:\n" + "".join(f"  {n}: {{host: {h}}}\n" for n, h in nodes.items())
    text += "links:\n" + "".join(f"  - [n{i}, n{i + 1}]\n" for i in range(PER_HOST * 3 - 1))
    path = tmp_path / "mhlost.yml"
    path.write_text(text)
    argv = ["ip", "netns", "exec", CONTROLLER_NS, sys.executable, "-m", "topo", "apply", "--json", "--no-verify",
            str(path), "--hosts", sim.inventory["three"]]
    try:
        proc = subprocess.Popen(argv, cwd=ROOT, env=sim.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        deadline = time.monotonic() + 300
        while not [n for n in sim.netns_on("bh1") if n.startswith("topo-mhlost-")]:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.2)
        sh("ip", "-n", UNDERLAY_NS, "link", "set", "ul-bh3", "down")
        lost_at = time.monotonic()
        built = len([n for n in sim.netns_on("bh3") if n.startswith("topo-mhlost-")])
        out, err = proc.communicate(timeout=300)
        waited = time.monotonic() - lost_at
        print(f"\nTIMING the apply ended {waited:.1f} s after bh3 was lost (exit {proc.returncode}; "
              f"bh3 had {built} of its {PER_HOST} namespaces then)")
        assert proc.returncode != 0, out + err
        assert "bh3" in out + err and waited < 120, (waited, out + err)
        for h in ("bh1", "bh2"):
            assert len([n for n in sim.netns_on(h) if n.startswith("topo-mhlost-")]) == PER_HOST, h
        sh("ip", "-n", UNDERLAY_NS, "link", "set", "ul-bh3", "up")
        sim.close_masters()
        sim.wait_for_ssh(["bh3"])
        sim.topo_json("apply", "--no-verify", str(path), "--hosts", sim.inventory["three"])
        assert sim.topo_json("plan", str(path), "--hosts", sim.inventory["three"])["changes"] == []
        assert len([n for n in sim.netns_on("bh3") if n.startswith("topo-mhlost-")]) == PER_HOST
    finally:
        sh("ip", "-n", UNDERLAY_NS, "link", "set", "ul-bh3", "up", check=False)
        sim.topo("destroy", "--lab", "mhlost", "--hosts", sim.inventory["three"], check=False)
    for h in HOSTS:
        assert [n for n in sim.netns_on(h) if n.startswith("topo-mhlost-")] == [], h


def test_the_underlay_mtu_is_read_from_the_hosts(sim, tmp_path):
    """bh2's underlay interface at MTU 1400 (the inventory names no topo_underlay_mtu): the
    link from bh1 to bh2 gets 1400 - 50 = 1350 bytes, the one from bh1 to bh3 1500 - 50."""
    path = tmp_path / "mhmtu.yml"
    path.write_text("name: mhmtu\nnodes:\n  a: {host: bh1}\n  b: {host: bh2}\n  c: {host: bh3}\n"
                    "links:\n  - [a, b]\n  - [a, c]\n")
    sim.on_host("bh2", "ip", "link", "set", "eth0", "mtu", "1400")
    try:
        first = sim.topo_json("apply", str(path), "--hosts", sim.inventory["three"])
        assert first["checks"]["failed"] == 0, first["checks"]
        mtus = {i["ifname"]: i["mtu"] for i in json.loads(sim.on_host("bh1", "ip", "-n", "topo-mhmtu-a", "-j", "link"))}
        assert mtus["eth0"] == 1350 and mtus["eth1"] == 1450, mtus
        b = {i["ifname"]: i["mtu"] for i in json.loads(sim.on_host("bh2", "ip", "-n", "topo-mhmtu-b", "-j", "link"))}
        assert b["eth0"] == 1350, b
    finally:
        sim.on_host("bh2", "ip", "link", "set", "eth0", "mtu", "1500")
        sim.topo("destroy", "--lab", "mhmtu", "--hosts", sim.inventory["three"], check=False)
