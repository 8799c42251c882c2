"""A build host reached as an ordinary user with ``ansible_become`` (issue 12: "root (or
become)"), and ``topo capture`` on a node of a remote build host.

bh2 is reached as :data:`~tests.multihost.conftest.BECOME_USER` (passwordless sudo) with
``ansible_become: true``, bh1 as root. A LAN stretched over both (nodes a1, a2 on bh1; b1,
b2 on bh2) is applied: Ansible's plays become root on bh2 with sudo; the checks the
controller runs start their programs on bh2 over SSH behind ``sudo -n`` (a unicast each way
over UDP and TCP, a capture check on bh2). Then ``topo capture`` on a node of bh2 (its pcap
back in the controller's lab directory), ``topo exec``, ``ansible NODE``, ``topo show`` and
``topo list``, a re-apply with nothing changed, and destroy leaving nothing on either host.
``topo doctor`` names a host that logs in as an ordinary user without become, and one whose
sudo asks for a password, each with the fix; apply refuses both before building anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT, root_state
from tests.multihost.conftest import BECOME_USER, CONTROLLER_NS, PLAIN_USER

pytestmark = pytest.mark.root

LAB = """
name: become
nodes:
  a1: {host: bh1}
  a2: {host: bh1}
  b1: {host: bh2}
  b2: {host: bh2}
bridges:
  lan: {}
links:
  - [a1, lan]
  - [a2, lan]
  - [b1, lan]
  - [b2, lan]
verify:
  - unicast: {name: udp-to-bh2, from: a1, to: b1, port: 7000, message: "to a node behind sudo"}
  - unicast: {name: tcp-from-bh2, from: b2, to: a2, port: 7001, proto: tcp, message: "from a node behind sudo"}
  - capture:
      on: b2:eth0
      ping: {from: a1, to: b2}
      expect: {layers: [IP, ICMP], min_packets: 3}
"""
NAMESPACES = {"bh1": ["topo-become-a1", "topo-become-a2", "topo-become-lan"],
              "bh2": ["topo-become-b1", "topo-become-b2", "topo-become-lan"]}


@pytest.fixture(scope="module")
def lab(sim, tmp_path_factory):
    """The LAB file, the inventory (bh1 as root, bh2 as BECOME_USER with become), applied
    and verified once; destroyed at the end whatever happened."""
    sim.give_tools()
    d = tmp_path_factory.mktemp("become")
    path = os.path.join(d, "become.yml")
    with open(path, "w") as f:
        f.write(LAB)
    inv = sim.write_inventory("become", ["bh1", "bh2"], users={"bh2": (BECOME_USER, True)})
    before = root_state()
    start = time.monotonic()
    result = sim.topo_json("apply", path, "--hosts", inv, check=False)
    print(f"\nTIMING apply + verify, bh2 through sudo: {time.monotonic() - start:.1f} s")
    yield {"path": path, "inventory": inv, "result": result, "before": before}
    sim.topo("destroy", "--lab", "become", "--hosts", inv, check=False)


def test_apply_and_checks_through_sudo(sim, lab):
    result = lab["result"]
    assert {c["host"] for c in result["changes"]} == {"bh1", "bh2"}, result["changes"]
    failed = [(c.get("name") or c["type"], c.get("msg")) for c in result["check_results"] if not c["ok"]]
    assert not failed and result["checks"]["failed"] == 0, failed
    names = {c.get("name") for c in result["check_results"]}
    assert {"udp-to-bh2", "tcp-from-bh2"} <= names, names
    capture = [c for c in result["check_results"] if c["type"] == "capture"]
    assert capture and capture[0]["ok"], capture
    for host, want in NAMESPACES.items():
        assert sim.netns_on(host) == want
    # built as root by sudo: the namespaces and pyroute2's zip belong to root, not to the login user
    assert sim.on_host("bh2", "stat", "-c", "%U", "/var/lib/topo/pyroute2.zip").strip() == "root"
    # the kernel on bh2 agrees, read independently: b1 answers a ping from b2 across the bridge
    addrs = json.loads(sim.on_host("bh2", "ip", "-n", "topo-become-b1", "-j", "addr", "show", "dev", "eth0"))
    b1 = next(a["local"] for a in addrs[0]["addr_info"] if a["family"] == "inet")
    sim.on_host("bh2", "ip", "netns", "exec", "topo-become-b2", "ping", "-c1", "-W2", b1)
    # nothing the checks started is left running on bh2 (sudo ended with its programs)
    left = sim.on_host("bh2", "sh", "-c", "cat /proc/[0-9]*/comm 2>/dev/null | grep -E '^(tcpdump|python3|sudo)$' "
                       "|| true").split()
    assert left == [], left


def test_reapply_changes_nothing(sim, lab):
    again = sim.topo_json("apply", lab["path"], "--hosts", lab["inventory"])
    assert again["changes"] == [], again["changes"]
    assert again["checks"]["failed"] == 0


def test_capture_on_a_node_of_a_remote_host(sim, lab):
    """topo capture b1:eth0 on bh2 (behind sudo) while a1 pings b1: the pcap is in the
    controller's lab directory and summarised like a local capture."""
    addrs = json.loads(sim.on_host("bh2", "ip", "-n", "topo-become-b1", "-j", "addr", "show", "dev", "eth0"))
    b1 = next(a["local"] for a in addrs[0]["addr_info"] if a["family"] == "inet")
    cmd = ["ip", "netns", "exec", CONTROLLER_NS, sys.executable, "-m", "topo", "capture", "--json", lab["path"],
           "b1:eth0", "--count", "4", "--duration", "20", "--filter", "icmp"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=sim.env(),
                            cwd=ROOT)
    try:
        time.sleep(3)  # tcpdump listening on bh2
        sim.on_host("bh1", "ip", "netns", "exec", "topo-become-a1", "ping", "-c3", "-i0.3", b1)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    r = json.loads(out)
    assert r["path"].startswith(os.path.join(sim.home, "labs", "become", "captures")), r["path"]
    assert os.path.getsize(r["path"]) > 24  # a pcap with packets, here on the controller
    rows = r["rows"]
    assert len(rows) == 4, rows
    assert {row["src"] for row in rows} >= {b1}, rows
    assert all(row["protocol"] == "ICMP" for row in rows), rows
    # a node the host lacks: a clear error, no pcap
    sim.on_host("bh2", "ip", "netns", "del", "topo-become-b2")
    try:
        bad = sim.topo("capture", lab["path"], "b2:eth0", "--count", "1", "--duration", "3", check=False)
    finally:
        sim.topo("apply", lab["path"], "--no-verify")  # b2 back, for the next tests
    assert bad.returncode == 2, bad
    assert "on build host bh2" in bad.stderr and "topo-become-b2" in bad.stderr, bad.stderr


def test_exec_ansible_show_list_through_sudo(sim, lab):
    r = sim.topo_json("exec", lab["path"], "b1", "--", "id", "-u")
    assert r["rc"] == 0 and r["stdout"].strip() == "0", r  # root in the node, through sudo
    r = sim.topo_json("exec", lab["path"], "b1", "--", "ip", "-br", "addr")
    assert r["rc"] == 0 and "eth0" in r["stdout"], r
    inv = os.path.join(sim.home, "labs", "become", "inventory")
    proc = sim.controller("ansible", "-i", inv, "b2", "-m", "command", "-a", "ip -br addr")
    assert "eth0" in proc.stdout and "CHANGED" in proc.stdout, proc.stdout
    show = sim.topo_json("show", lab["path"])
    assert {n["node"]: n["state"] for n in show["nodes"]} == {n: "up" for n in ("a1", "a2", "b1", "b2")}, show
    assert all(i["state"] == "up" for n in show["nodes"] for i in n["interfaces"]), show
    labs = sim.topo_json("list", "--hosts", lab["inventory"])["labs"]
    mine = [e for e in labs if e["lab"] == "become"]
    assert mine and mine[0]["state"] == "up" and mine[0]["namespaces"] == 6, labs


def test_doctor_names_what_is_missing_for_root(sim, lab):
    ok = json.loads(sim.topo("doctor", "--json", "--hosts", lab["inventory"], check=False).stdout)
    rows = {f["check"]: f for f in ok["findings"]}
    assert rows["host bh2: root"]["status"] == "ok" and "sudo" in rows["host bh2: root"]["detail"], rows
    assert rows["host bh2: kernel links"]["status"] == "ok", rows  # tried for real, through sudo
    no_become = sim.write_inventory("plain", ["bh2"], users={"bh2": (PLAIN_USER, None)})
    no_sudo = sim.write_inventory("nosudo", ["bh2"], users={"bh2": (PLAIN_USER, True)})
    for inv, detail, fix, refused in ((no_become, "not root and no become", "ansible_become: true",
                                       "not root and no become"),
                                      (no_sudo, "sudo -n failed", "NOPASSWD", "a password is required")):
        proc = sim.topo("doctor", "--json", "--hosts", inv, check=False)
        assert proc.returncode == 3, proc
        rows = {f["check"]: f for f in json.loads(proc.stdout)["findings"]}
        root = rows["host bh2: root"]
        assert root["status"] == "fail" and detail in root["detail"] and fix in root["fix"], root
        assert PLAIN_USER in root["detail"], root
        # apply refuses before anything is built (routed.yml: placed on bh2 alone)
        applied = sim.topo("apply", os.path.join("examples", "routed.yml"), "--hosts", inv, check=False)
        assert applied.returncode == 3, applied
        assert "nothing was built" in applied.stderr and "bh2" in applied.stderr, applied.stderr
        assert refused in applied.stderr, applied.stderr


def test_destroy_leaves_nothing(sim, lab):
    sim.topo_json("destroy", lab["path"], "--hosts", lab["inventory"])
    for host in NAMESPACES:
        assert sim.netns_on(host) == []
        links = json.loads(sim.on_host(host, "ip", "-j", "link"))
        assert sorted(link["ifname"] for link in links) == ["eth0", "lo"]
    assert root_state() == lab["before"]
