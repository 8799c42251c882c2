"""Links down, up and impaired at runtime (``topo link``, ``topo impair``) and checks run with
links down (``during:``): each command's effect read back from the kernel with ``ip -j`` /
``tc -j``, ``topo plan`` and ``topo show`` report it, ``topo apply`` restores the file's state
(plan empty again), and a ``during:`` check passes and fails for the right reasons."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT, netns_list

pytestmark = [pytest.mark.root]

#: A routed triangle: a-b (a:eth0, b:eth0), a-c (a:eth1, c:eth0), b-c (b:eth1, c:eth1).
TRIANGLE = """name: {name}
routing: auto
nodes: {{a: {{forwarding: true}}, b: {{forwarding: true}}, c: {{forwarding: true}}}}
links:
  - [a, b]
  - [a, c]
  - [b, c]
{verify}"""


def lab_file(tmp_path, name, verify=""):
    path = tmp_path / f"{name}.yml"
    path.write_text(TRIANGLE.format(name=name, verify=verify))
    return str(path)


@pytest.fixture
def cleanup(topo_cli):
    """Destroys the labs a test names, whatever it did."""
    labs = []
    yield labs
    for lab in labs:
        subprocess.run([sys.executable, "-m", "topo", "destroy", "--lab", lab], capture_output=True, cwd=ROOT,
                       env=dict(os.environ, TOPO_HOME=topo_cli.home))


def link(ns, ifname):
    (got,) = json.loads(subprocess.run(["ip", "-j", "-n", ns, "link", "show", "dev", ifname], capture_output=True,
                                       text=True, check=True).stdout)
    return got


def is_up(ns, ifname):
    return "UP" in link(ns, ifname)["flags"]


def root_qdisc(ns, ifname):
    qdiscs = json.loads(subprocess.run(["tc", "-j", "-n", ns, "qdisc", "show", "dev", ifname], capture_output=True,
                                       text=True, check=True).stdout)
    (root,) = [q for q in qdiscs if q.get("root")]
    return root


def pings(ns, address):
    return subprocess.run(["ip", "netns", "exec", ns, "ping", "-c", "2", "-i", "0.2", "-W", "1", address],
                          capture_output=True).returncode == 0


def routes(ns):
    return json.loads(subprocess.run(["ip", "-j", "-n", ns, "route", "show", "proto", "116"], capture_output=True,
                                     text=True, check=True).stdout)


def address_of(shown, node, ifname):
    row = next(n for n in shown["nodes"] if n["node"] == node)
    return next(i for i in row["interfaces"] if i["ifname"] == ifname)["address"].split("/")[0]


def state_of(shown, node, ifname):
    row = next(n for n in shown["nodes"] if n["node"] == node)
    return next(i for i in row["interfaces"] if i["ifname"] == ifname)["state"]


def test_link_down_up_plan_show_and_apply_restores(topo_cli, tmp_path, cleanup):
    cleanup.append("rtlink")
    lab = lab_file(tmp_path, "rtlink")
    a, b = "topo-rtlink-a", "topo-rtlink-b"
    # errors first: nothing is applied yet
    r = topo_cli("link", lab, "a:eth0", "down", check=False)
    assert r.returncode == 3 and "lab rtlink is not applied" in r.stderr and "topo apply" in r.stderr
    topo_cli("apply", lab, "--no-verify")
    r = topo_cli("link", lab, "x:eth0", "down", check=False)
    assert r.returncode == 2 and "no node 'x'" in r.stderr and "nodes: a, b, c" in r.stderr
    r = topo_cli("link", lab, "a:eth9", "down", check=False)
    assert r.returncode == 2 and "node a has no interface 'eth9'" in r.stderr and "eth0, eth1" in r.stderr
    shown = topo_cli.json("show", lab)
    b_eth0, c_eth0 = address_of(shown, "b", "eth0"), address_of(shown, "c", "eth0")
    assert pings(a, b_eth0) and pings(a, c_eth0)
    before = routes(a)
    assert before

    down = topo_cli.json("link", lab, "a:eth0", "down")
    assert [(c["action"], c["resource"], c["name"], c["detail"]) for c in down["changes"]] == [
        ("fix", "link", f"{a}/eth0", "up -> down")]
    assert not is_up(a, "eth0") and "NO-CARRIER" in link(b, "eth0")["flags"]
    assert not pings(a, b_eth0)
    assert topo_cli.json("link", lab, "a:eth0", "down")["changed"] == 0
    plan = topo_cli.json("plan", lab)["changes"]
    assert ("fix", "veth", f"{a}/eth0") in {(c["action"], c["resource"], c["name"]) for c in plan}
    assert "up False -> True" in next(c["detail"] for c in plan if c["name"] == f"{a}/eth0")
    assert state_of(topo_cli.json("show", lab), "a", "eth0") == "down"
    assert pings(a, c_eth0)  # the link a-c is untouched

    up = topo_cli.json("link", lab, "a:eth0", "up")
    assert ("fix", "link", f"{a}/eth0") in {(c["action"], c["resource"], c["name"]) for c in up["changes"]}
    assert is_up(a, "eth0") and routes(a) == before  # the routes the kernel dropped are back
    assert pings(a, b_eth0)
    assert topo_cli.json("plan", lab)["changes"] == []

    # down again; this time apply restores it
    topo_cli.json("link", lab, "b:eth1", "down")
    assert not is_up(b, "eth1")
    applied = topo_cli.json("apply", lab, "--no-verify")
    assert ("fix", "veth", f"{b}/eth1") in {(c["action"], c["resource"], c["name"]) for c in applied["changes"]}
    assert is_up(b, "eth1")
    assert topo_cli.json("plan", lab)["changes"] == []
    assert state_of(topo_cli.json("show", lab), "b", "eth1") == "up"
    topo_cli("destroy", lab)
    assert not [n for n in netns_list() if n.startswith("topo-rtlink-")]


def test_impair_rate_clear_plan_and_apply_restores(topo_cli, tmp_path, cleanup):
    cleanup.append("rtimp")
    lab = lab_file(tmp_path, "rtimp")
    a = "topo-rtimp-a"
    topo_cli("apply", lab, "--no-verify")
    assert root_qdisc(a, "eth1")["handle"] == "0:"

    r = topo_cli.json("impair", lab, "a:eth1", "--rate", "1mbit")
    assert [(c["action"], c["resource"], c["name"]) for c in r["changes"]] == [("create", "impair", f"{a}/eth1")]
    assert r["what"] == "rate 1 Mbit/s"
    q = root_qdisc(a, "eth1")
    assert (q["kind"], q["handle"], q["options"]["rate"]) == ("tbf", "7470:", 125000)  # bytes/s
    assert root_qdisc(a, "eth0")["handle"] == "0:"  # only the named interface
    assert topo_cli.json("impair", lab, "a:eth1", "--rate", "1000kbit")["changed"] == 0
    plan = topo_cli.json("plan", lab)["changes"]
    assert [(c["action"], c["resource"], c["name"]) for c in plan] == [("remove", "impair", f"{a}/eth1")]
    assert state_of(topo_cli.json("show", lab), "a", "eth1") == "drift: impair rate 1000000 bit/s"

    cleared = topo_cli.json("impair", lab, "a:eth1", "--clear")
    assert [(c["action"], c["name"]) for c in cleared["changes"]] == [("remove", f"{a}/eth1")]
    assert root_qdisc(a, "eth1")["handle"] == "0:"
    assert topo_cli.json("plan", lab)["changes"] == []

    topo_cli.json("impair", lab, "a:eth1", "--rate", "2mbit")
    assert root_qdisc(a, "eth1")["options"]["rate"] == 250000
    applied = topo_cli.json("apply", lab, "--no-verify")
    assert [(c["action"], c["resource"]) for c in applied["changes"]] == [("remove", "impair")]
    assert root_qdisc(a, "eth1")["handle"] == "0:"
    assert topo_cli.json("plan", lab)["changes"] == []
    assert state_of(topo_cli.json("show", lab), "a", "eth1") == "up"
    r = topo_cli("impair", lab, "a:eth1", "--jitter", "5", check=False)
    assert r.returncode == 2 and "jitter needs a delay" in r.stderr
    topo_cli("destroy", lab)


#: a - r - b, and r - c: r's eth0 faces a, eth1 b, eth2 c.
STAR = """name: rtdur
routing: auto
nodes: {a: {}, r: {forwarding: true}, b: {}, c: {}}
links:
  - [a, r]
  - [r, b]
  - [r, c]
verify:
  - ping: {from: a, to: b}
  - ping: {from: a, to: b, expect: fail, during: {down: [r:eth1]}}
  - ping: {from: a, to: b, during: {down: [b:eth0]}}
  - ping: {from: a, to: b, during: {down: [r:eth2]}}
  - unicast: {from: a, to: b, expect: fail, during: {down: [r:eth1, r:eth2]}}
"""


def test_during_takes_links_down_for_one_check(topo_cli, tmp_path, cleanup):
    cleanup.append("rtdur")
    lab = tmp_path / "rtdur.yml"
    lab.write_text(STAR)
    lab = str(lab)
    topo_cli("apply", lab, "--no-verify")
    b_routes = routes("topo-rtdur-b")
    assert b_routes
    r = topo_cli("verify", "--json", lab, check=False)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr  # the third check must fail: b:eth0 is b's only way out
    rows = json.loads(r.stdout)["check_results"]
    pings_from_a = [(row["expect"], row["ok"]) for row in rows if row["type"] == "ping" and row["from"] == "a"]
    # in verify order: the plain ping; with r:eth1 down, b is unreachable (expect: fail holds);
    # with b:eth0 down the ping fails; with r:eth2 (c's link) down it still passes
    assert pings_from_a == [("pass", True), ("fail", True), ("pass", False), ("pass", True)], rows
    (cast,) = [row for row in rows if row["type"] == "unicast"]
    assert cast["ok"] and cast["description"].endswith("with r:eth1, r:eth2 down"), cast
    # every link is up again, with the routes the kernel dropped, also after the failed check
    for ns, ifname in (("topo-rtdur-r", "eth1"), ("topo-rtdur-r", "eth2"), ("topo-rtdur-b", "eth0")):
        assert is_up(ns, ifname), (ns, ifname)
    assert routes("topo-rtdur-b") == b_routes
    assert topo_cli.json("plan", lab)["changes"] == []
    topo_cli("destroy", lab)
