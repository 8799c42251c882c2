"""A whole lab on one remote build host, reached from the controller namespace over SSH.

The build host ``bh1`` has no pyroute2: apply brings it. Then: the checks pass (pings inside
the nodes on bh1), a re-apply changes nothing, ``topo exec`` and ``ansible NODE`` reach a node
there, destroy leaves no namespace on bh1, and this machine's root namespace is unchanged.
"""

import importlib.util
import json
import os
import time

import pytest

from tests.conftest import root_state

pytestmark = pytest.mark.root

LAB = os.path.join("examples", "routed.yml")


@pytest.fixture(scope="module")
def applied(sim):
    """routed.yml applied on bh1 (inventory ``one``); destroyed at the end whatever happened."""
    before = root_state()
    assert sim.netns_on("bh1") == []
    with pytest.raises(AssertionError):  # the host really lacks pyroute2
        sim.on_host("bh1", "python3", "-c", "import pyroute2")
    start = time.monotonic()
    first = sim.topo_json("apply", LAB, "--hosts", sim.inventory["one"])
    print(f"\nTIMING first apply + verify on bh1: {time.monotonic() - start:.1f} s (playbook {first['seconds']} s); "
          f"topo-host image built in {sim.image_seconds or 0:.0f} s (0: cached)")
    yield {"first": first, "before": before}
    sim.topo("destroy", LAB, "--hosts", sim.inventory["one"], check=False)


def test_apply_builds_on_the_remote_host_and_verifies(sim, applied):
    first = applied["first"]
    assert first["changes"], first
    assert {c["host"] for c in first["changes"]} == {"bh1"}
    checks = first["checks"]
    assert checks["failed"] == 0 and checks["passed"] >= 12, checks  # 6 nodes ping each other's addresses
    # the lab's namespaces live on bh1, not on this machine
    assert sim.netns_on("bh1") == sorted(f"topo-routed-{n}" for n in
                                        ("h1", "h2", "h3", "h4", "r1", "r2", "lan1", "lan2"))
    assert not [n for n in os.listdir("/run/netns") if n.startswith("topo-routed-")]
    # pyroute2 came from the controller, as a zip, and works there
    out = sim.on_host("bh1", "env", "PYTHONPATH=/var/lib/topo/pyroute2.zip", "python3", "-c",
                      "import pyroute2; print(pyroute2.__file__)")
    # ... with its bytecode, which a host whose Python has the controller's bytecode version
    # imports instead of compiling the source (any other one imports the source)
    magic = sim.on_host("bh1", "python3", "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())")
    same = magic.strip() == importlib.util.MAGIC_NUMBER.hex()
    assert out.strip() == "/var/lib/topo/pyroute2.zip/pyroute2/__init__.py" + ("c" if same else "")
    # the kernel on bh1 agrees: h3 (behind r1, r2) answers a ping from h1, read independently
    addrs = json.loads(sim.on_host("bh1", "ip", "-n", "topo-routed-h3", "-j", "addr", "show", "dev", "eth0"))
    h3 = addrs[0]["addr_info"][0]["local"]
    sim.on_host("bh1", "ip", "netns", "exec", "topo-routed-h1", "ping", "-c1", "-W2", h3)


def test_reapply_changes_nothing(sim, applied):
    start = time.monotonic()
    again = sim.topo_json("apply", LAB, "--hosts", sim.inventory["one"])
    print(f"\nTIMING re-apply + verify on bh1: {time.monotonic() - start:.1f} s (playbook {again['seconds']} s)")
    assert again["changes"] == [], again["changes"]
    assert again["checks"]["failed"] == 0


def test_verify_and_plan_use_the_recorded_hosts(sim, applied):
    ver = sim.topo_json("verify", LAB)  # no --hosts: the inventory of the last apply
    assert ver["checks"]["failed"] == 0 and ver["checks"]["passed"] >= 12, ver["checks"]
    plan = sim.topo_json("plan", LAB)
    assert plan["changes"] == [], plan


def test_exec_and_ansible_reach_a_node_on_the_remote_host(sim, applied):
    r = sim.topo_json("exec", "--hosts", sim.inventory["one"], LAB, "r1", "--", "ip", "-br", "addr")
    assert r["rc"] == 0 and "eth0" in r["stdout"] and "eth1" in r["stdout"], r
    hostname = sim.topo("exec", LAB, "h2", "--", "cat", "/etc/hostname").stdout.strip()
    assert hostname == "bh1"  # the build host's filesystem: the command ran there
    inv = os.path.join(sim.home, "labs", "routed", "inventory")
    proc = sim.controller("ansible", "-i", inv, "r2", "-m", "command", "-a", "ip -br addr")
    assert "eth0" in proc.stdout and "CHANGED" in proc.stdout, proc.stdout
    own = json.loads(sim.on_host("bh1", "ip", "-n", "topo-routed-r2", "-j", "-br", "addr"))
    for link in own:
        assert link["ifname"] in proc.stdout


def test_show_and_list_read_the_remote_host(sim, applied):
    show = sim.topo_json("show", LAB)
    assert {n["node"]: n["state"] for n in show["nodes"]} == {n: "up" for n in ("h1", "h2", "h3", "h4", "r1", "r2")}
    assert all(i["state"] == "up" for n in show["nodes"] for i in n["interfaces"]), show
    labs = sim.topo_json("list", "--hosts", sim.inventory["one"])["labs"]
    routed = [e for e in labs if e["lab"] == "routed"]
    assert routed and routed[0]["state"] == "up" and routed[0]["namespaces"] == 8, labs


def test_destroy_leaves_nothing(sim, applied):
    r = sim.topo_json("destroy", LAB, "--hosts", sim.inventory["one"])
    assert r, r
    assert sim.netns_on("bh1") == []
    links = json.loads(sim.on_host("bh1", "ip", "-j", "link"))
    assert sorted(link["ifname"] for link in links) == ["eth0", "lo"]
    assert root_state() == applied["before"]
    assert not os.path.isdir(os.path.join(sim.home, "labs", "routed"))
