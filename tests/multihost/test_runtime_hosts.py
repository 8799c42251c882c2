"""Runtime changes and checks with links down on a lab over three build hosts (issue 12):
``topo link`` and ``topo impair`` act on the build host that holds the node, also on one end
of a cross-host link (a point-to-point VXLAN); ``topo show``, ``topo plan`` and ``topo
apply`` see and restore them there; a check's ``during:`` takes links down on the host that
holds them while the check runs from another, and sets them up again afterwards.

One check starts more programs on one build host than sshd lets one SSH connection carry
(MaxSessions, default 10): a broadcast from s (bh1) to :data:`RECEIVERS` nodes on bh3.

The lab, placed by hand: a (bh1) - r (bh2) - b (bh3), and r - c (bh3); every link crosses
hosts. r's eth0 faces a, eth1 b, eth2 c. Beside them the LAN of the broadcast. Applied once,
with its checks (one apply and verify: about 40 s), for every test of the module.
"""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.root

HOSTS = ("bh1", "bh2", "bh3")
LAB = "mhrt"
#: Receivers of the broadcast on bh3: more than two master connections carry
#: (_process.SESSIONS_PER_MASTER, 8) and, with one master of sshd's 10 sessions, more than
#: sshd's MaxStartups (10) lets in at once on connections of their own (the check failed so).
RECEIVERS = 24
PLACED = {"a": "bh1", "r": "bh2", "b": "bh3", "c": "bh3", "s": "bh1", **{f"m{i}": "bh3" for i in range(1, RECEIVERS + 1)}}
TEXT = """name: mhrt
routing: auto
nodes:
  a: {host: bh1}
  r: {host: bh2, forwarding: true}
  b: {host: bh3}
  c: {host: bh3}
  s: {host: bh1}
""" + "".join(f"  m{i}: {{host: bh3}}\n" for i in range(1, RECEIVERS + 1)) + """bridges:
  lan: {}
links:
  - [a, r]
  - [r, b]
  - [r, c]
  - [s, lan]
""" + "".join(f"  - [m{i}, lan]\n" for i in range(1, RECEIVERS + 1)) + """verify:
  - ping: {from: a, to: b}
  # the link taken down (r:eth1, on bh2) is on another host than the check's source (a, bh1)
  - ping: {from: a, to: b, expect: fail, during: {down: [r:eth1]}}
  - ping: {from: a, to: b, during: {down: [r:eth2]}}
  # a cast check (run by the controller) with links down on bh2 and bh3
  - unicast: {name: cut-off, from: a, to: b, expect: fail, during: {down: [r:eth1, c:eth0]}}
  - unicast: {name: other-way, from: a, to: c, during: {down: [r:eth1]}}
  # fails: c's only link is down; up again afterwards all the same
  - ping: {from: a, to: c, during: {down: [c:eth0]}}
  - broadcast: {name: wide, from: s, to: [""" + ", ".join(f"m{i}" for i in range(1, RECEIVERS + 1)) + """], port: 5000}
"""


def netns(node: str) -> str:
    return f"topo-{LAB}-{node}"


@pytest.fixture(scope="module")
def lab(sim, tmp_path_factory):
    """The lab file, applied and verified once (the apply's JSON result); destroyed at the
    end whatever happened."""
    sim.give_tools()
    path = tmp_path_factory.mktemp("runtime-hosts") / f"{LAB}.yml"
    path.write_text(TEXT)
    try:
        first = sim.topo_json("apply", str(path), "--hosts", sim.inventory["three"], check=False)
        yield {"path": str(path), "first": first}
    finally:
        sim.topo("destroy", "--lab", LAB, "--hosts", sim.inventory["three"], check=False)


def topo(sim, *args, **kw):
    """``topo --json`` on the lab over the three hosts."""
    return sim.topo_json(args[0], *args[1:], "--hosts", sim.inventory["three"], **kw)


def link(sim, node: str, ifname: str) -> dict:
    """The interface as ``ip -j link`` reads it on the node's build host."""
    (got,) = json.loads(sim.on_host(PLACED[node], "ip", "-n", netns(node), "-j", "link", "show", "dev", ifname))
    return got


def is_up(sim, node: str, ifname: str) -> bool:
    return "UP" in link(sim, node, ifname)["flags"]


def pings(sim, node: str, address: str) -> bool:
    """Whether ``node`` gets an answer from ``address`` (ping run on the node's build host)."""
    code, _ = sim.containers[PLACED[node]].exec_run(
        ["ip", "netns", "exec", netns(node), "ping", "-c", "2", "-i", "0.2", "-W", "1", address])
    return code == 0


def routes(sim, node: str) -> list:
    return json.loads(sim.on_host(PLACED[node], "ip", "-j", "-n", netns(node), "route", "show", "proto", "116"))


def interface(shown: dict, node: str, ifname: str) -> dict:
    row = next(n for n in shown["nodes"] if n["node"] == node)
    return next(i for i in row["interfaces"] if i["ifname"] == ifname)


def root_qdisc(sim, node: str, ifname: str) -> dict:
    qdiscs = json.loads(sim.on_host(PLACED[node], "tc", "-j", "-n", netns(node), "qdisc", "show", "dev", ifname))
    (root,) = [q for q in qdiscs if q.get("root")]
    return root


def test_the_lab_is_spread_and_every_link_crosses_hosts(sim, lab):
    for node, host in PLACED.items():
        assert netns(node) in sim.netns_on(host), (node, host)
    ifaces = json.loads(sim.on_host("bh2", "ip", "-n", netns("r"), "-j", "-d", "link"))
    assert sorted(i["ifname"] for i in ifaces if i.get("linkinfo", {}).get("info_kind") == "vxlan") == \
        ["eth0", "eth1", "eth2"], ifaces


def test_during_checks_take_links_down_on_other_hosts_and_up_again(sim, lab):
    first = lab["first"]
    assert "check_results" in first, first.get("message")
    rows = first["check_results"]
    failed = [(r["type"], r.get("from"), r.get("node") or r.get("name"), r.get("msg")) for r in rows if not r["ok"]]
    assert [f[:3] for f in failed] == [("ping", "a", "c")], failed  # the ping with c:eth0 down
    pings_from_a = [(r["expect"], r["ok"]) for r in rows if r["type"] == "ping" and r["from"] == "a"]
    # the plain ping; with r:eth1 (bh2) down b (bh3) is unreachable from a (bh1); with
    # r:eth2 (c's link) down it still answers; with c:eth0 (bh3) down c does not
    assert pings_from_a == [("pass", True), ("fail", True), ("pass", True), ("pass", False)], rows
    casts = {r["name"]: r for r in rows if r["type"] == "unicast"}
    assert casts["cut-off"]["ok"] and casts["cut-off"]["description"].endswith("with r:eth1, c:eth0 down"), casts
    assert casts["other-way"]["ok"] and casts["other-way"]["figures"]["intact"] >= 1, casts
    # every link is up again on its own host, with its routes
    for node, ifname in (("r", "eth1"), ("r", "eth2"), ("c", "eth0")):  # c:eth0 also after the failed check
        assert is_up(sim, node, ifname), (node, ifname)
    assert routes(sim, "a") and routes(sim, "b")
    assert topo(sim, "plan", lab["path"])["changes"] == []


def test_link_down_on_a_remote_host_breaks_the_link_and_up_restores_it(sim, lab):
    path = lab["path"]
    shown = topo(sim, "show", path)
    b_eth0 = interface(shown, "b", "eth0")["address"].split("/")[0]
    c_eth0 = interface(shown, "c", "eth0")["address"].split("/")[0]
    assert pings(sim, "a", b_eth0) and pings(sim, "a", c_eth0)
    before = routes(sim, "b")
    assert before

    # b's end of the VXLAN r-b, on bh3: the other end (r, bh2) keeps its state
    down = topo(sim, "link", path, "b:eth0", "down")
    assert [(c["action"], c["resource"], c["name"], c["detail"], c["host"]) for c in down["changes"]] == [
        ("fix", "link", f"{netns('b')}/eth0", "up -> down", "bh3")]
    assert not is_up(sim, "b", "eth0") and is_up(sim, "r", "eth1")
    assert not pings(sim, "a", b_eth0)
    assert pings(sim, "a", c_eth0)  # r - c is untouched
    # the plan, all on bh3: the interface up again and the route the kernel dropped with it
    plan = topo(sim, "plan", path)["changes"]
    assert {(c["action"], c["resource"], c["name"], c["host"]) for c in plan} == {
        ("fix", "tunnel", f"{netns('b')}/eth0", "bh3"), ("create", "route", f"{netns('b')} 0.0.0.0/0", "bh3")}, plan
    assert "up False -> True" in next(c["detail"] for c in plan if c["resource"] == "tunnel"), plan
    assert interface(topo(sim, "show", path), "b", "eth0")["state"] == "down"

    up = topo(sim, "link", path, "b:eth0", "up")
    assert ("fix", "link", f"{netns('b')}/eth0", "bh3") in {
        (c["action"], c["resource"], c["name"], c["host"]) for c in up["changes"]}
    assert is_up(sim, "b", "eth0") and routes(sim, "b") == before  # the routes the kernel dropped are back
    assert pings(sim, "a", b_eth0)
    assert topo(sim, "plan", path)["changes"] == []

    # r's end towards c (bh2) down; this time apply restores it
    topo(sim, "link", path, "r:eth2", "down")
    assert not is_up(sim, "r", "eth2") and not pings(sim, "a", c_eth0)
    applied = topo(sim, "apply", path, "--no-verify")
    assert ("fix", "tunnel", f"{netns('r')}/eth2", "bh2") in {
        (c["action"], c["resource"], c["name"], c["host"]) for c in applied["changes"]}, applied["changes"]
    assert {c["host"] for c in applied["changes"]} == {"bh2"}, applied["changes"]
    assert is_up(sim, "r", "eth2") and pings(sim, "a", c_eth0)


def test_impair_on_a_remote_host_then_clear(sim, lab):
    path = lab["path"]
    assert root_qdisc(sim, "r", "eth1")["handle"] == "0:"
    r = topo(sim, "impair", path, "r:eth1", "--rate", "1mbit")
    assert [(c["action"], c["resource"], c["name"], c["host"]) for c in r["changes"]] == [
        ("create", "impair", f"{netns('r')}/eth1", "bh2")]
    q = root_qdisc(sim, "r", "eth1")
    assert (q["kind"], q["options"]["rate"]) == ("tbf", 125000), q  # bytes/s
    assert root_qdisc(sim, "r", "eth0")["handle"] == "0:"  # only the named interface
    plan = topo(sim, "plan", path)["changes"]
    assert [(c["action"], c["resource"], c["name"], c["host"]) for c in plan] == [
        ("remove", "impair", f"{netns('r')}/eth1", "bh2")], plan
    cleared = topo(sim, "impair", path, "r:eth1", "--clear")
    assert [(c["action"], c["name"], c["host"]) for c in cleared["changes"]] == [
        ("remove", f"{netns('r')}/eth1", "bh2")]
    assert root_qdisc(sim, "r", "eth1")["handle"] == "0:"
    assert topo(sim, "plan", path)["changes"] == []


def test_a_check_with_more_programs_on_one_host_than_one_ssh_connection_carries(sim, lab):
    """The broadcast's receivers on bh3 each run an agent over SSH: more sessions than sshd's
    MaxSessions on one connection; they go over further master connections, and every
    receiver gets the datagram."""
    (wide,) = [r for r in lab["first"]["check_results"] if r.get("name") == "wide"]
    assert wide["ok"], wide.get("msg")
    assert sorted(n for n, got in wide["figures"]["received"].items() if got) == \
        sorted(f"m{i}" for i in range(1, RECEIVERS + 1)), wide["figures"]
    assert "maxsessions 10" in sim.on_host("bh3", "/usr/sbin/sshd", "-T").splitlines()
