"""topo.lab.ping run inside a lab namespace through the topo.lab.netns connection
(``targets``), and from the controller into many namespaces at once (``sources``, what the
verify_ping role does), over IPv4 and IPv6.

All traffic stays in the namespaces of the test: the only non-local subnets the senders
have are their veth's; other targets have no route and fail at once.
"""

import subprocess

from tests.modules.conftest import ROOT_ONLY, ok, sh, step

pytestmark = ROOT_ONLY


def by_address(result):
    return {r["address"]: r for r in result["results"]}


def test_ping_inside_namespace(lab, ansible):
    a, b = lab.make_ns("a"), lab.make_ns("b")
    lab.make_veth(a, "eth0", b, "eth0")
    sh("ip", "-n", a, "addr", "add", "198.18.3.1/24", "dev", "eth0")
    sh("ip", "-n", b, "addr", "add", "198.18.3.2/24", "dev", "eth0")
    opts = {"count": 2, "interval": 0.2, "timeout": 1}

    passing = dict(opts, targets=[
        {"address": "198.18.3.2", "node": "b"},                     # over the veth
        {"address": "198.18.3.1", "node": "a"},                     # own address
        {"address": "198.18.3.77", "node": "ghost", "expect": "fail"},  # same LAN, nobody
        {"address": "198.18.4.9", "node": "far", "expect": "fail"},     # no route at all
    ])
    mismatch = dict(opts, targets=[
        {"address": "198.18.3.2", "node": "b", "expect": "fail"},
        {"address": "198.18.3.77", "node": "ghost"},
        {"address": "198.18.3.1", "node": "a"},
    ])
    good, checked, bad = ansible.run(
        step("ping", passing, netns=a),
        step("ping", {"count": 1, "timeout": 1, "targets": [{"address": "198.18.3.2"}]},
             check=True, netns=a),
        step("ping", mismatch, netns=a),
    )

    ok(good)
    assert good["changed"] is False and good["failed_targets"] == []
    res = by_address(good)
    assert res["198.18.3.2"]["observed"] == "pass" and res["198.18.3.2"]["received"] == 2
    assert res["198.18.3.2"]["rtt_ms"] is not None
    assert res["198.18.3.1"]["observed"] == "pass"
    for addr in ("198.18.3.77", "198.18.4.9"):
        assert res[addr]["observed"] == "fail" and res[addr]["received"] == 0
        assert res[addr]["ok"] is True
    assert all(r["ok"] for r in good["results"])

    # ping is a check: it runs in check mode too
    ok(checked)
    assert checked["results"][0]["observed"] == "pass"

    assert bad["failed"] is True
    assert bad["msg"].startswith("2 of 3 ping checks failed")
    assert sorted(t["address"] for t in bad["failed_targets"]) == ["198.18.3.2", "198.18.3.77"]
    res = by_address(bad)
    assert res["198.18.3.2"]["observed"] == "pass" and res["198.18.3.2"]["ok"] is False
    assert res["198.18.3.77"]["observed"] == "fail" and res["198.18.3.77"]["ok"] is False
    assert res["198.18.3.1"]["ok"] is True


def iputils_answers(ns, address):
    """Ground truth from iputils ping, independent of the module: does ``address`` answer
    from namespace ``ns``?"""
    return subprocess.run(["ip", "netns", "exec", ns, "ping", "-n", "-q", "-c", "1", "-W", "1", address],
                          capture_output=True, timeout=30, check=False).returncode == 0


def test_ping_from_many_namespaces_at_once_over_ipv4_and_ipv6(lab, ansible):
    a, b, c = lab.make_ns("a"), lab.make_ns("b"), lab.make_ns("c")
    lab.make_veth(a, "eth0", b, "eth0")
    sh("ip", "-n", a, "addr", "add", "198.18.3.1/24", "dev", "eth0")
    sh("ip", "-n", b, "addr", "add", "198.18.3.2/24", "dev", "eth0")
    sh("ip", "-n", a, "addr", "add", "2001:db8:3::1/64", "dev", "eth0", "nodad")
    sh("ip", "-n", b, "addr", "add", "2001:db8:3::2/64", "dev", "eth0", "nodad")
    opts = {"count": 2, "interval": 0.1, "timeout": 1}
    missing = lab.ns("nowhere")   # never made

    passing = dict(opts, sources=[
        {"node": "a", "netns": a, "targets": [
            {"address": "198.18.3.2", "node": "b"},
            {"address": "2001:db8:3::2", "node": "b"},
            {"address": "198.18.3.1", "node": "a"},
            {"address": "198.18.3.77", "node": "ghost", "expect": "fail"},      # same LAN, nobody
            {"address": "2001:db8:3::77", "node": "ghost", "expect": "fail"},
            {"address": "198.18.4.9", "node": "far", "expect": "fail"},          # no route at all
        ]},
        {"node": "b", "netns": b, "targets": [
            {"address": "198.18.3.1", "node": "a"},
            {"address": "2001:db8:3::1", "node": "a"},
        ]},
        {"node": "c", "netns": c, "targets": [                                   # lo only
            {"address": "198.18.3.2", "node": "b", "expect": "fail"},
            {"address": "2001:db8:3::2", "node": "b", "expect": "fail"},
        ]},
    ])
    mismatch = dict(opts, sources=[
        {"node": "a", "netns": a, "targets": [
            {"address": "2001:db8:3::2", "node": "b", "expect": "fail"},          # answers: failure
            {"address": "198.18.3.77", "node": "ghost"},                          # silent: failure
            {"address": "198.18.3.2", "node": "b"},
        ]},
        {"node": "x", "netns": missing, "targets": [                              # nothing checked
            {"address": "198.18.3.2", "node": "b", "expect": "fail"},
        ]},
    ])
    good, checked, bad = ansible.run(step("ping", passing), step("ping", passing, check=True),
                                     step("ping", mismatch))

    for run in (good, checked):   # a check: the same in check mode
        ok(run)
        assert run["changed"] is False and run["failed_targets"] == []
        rows = {(r["from"], r["address"]): r for r in run["results"]}
        assert [(r["from"], r["address"]) for r in run["results"]] == \
            [(s["node"], t["address"]) for s in passing["sources"] for t in s["targets"]]
        for key in [("a", "198.18.3.2"), ("a", "2001:db8:3::2"), ("a", "198.18.3.1"),
                    ("b", "198.18.3.1"), ("b", "2001:db8:3::1")]:
            r = rows[key]
            assert (r["observed"], r["ok"], r["sent"], r["received"]) == ("pass", True, 2, 2), r
            assert isinstance(r["rtt_ms"], float) and 0 <= r["rtt_ms"] < 1000, r
        for key in [("a", "198.18.3.77"), ("a", "2001:db8:3::77"), ("a", "198.18.4.9"),
                    ("c", "198.18.3.2"), ("c", "2001:db8:3::2")]:
            r = rows[key]
            assert (r["observed"], r["ok"], r["received"], r["rtt_ms"]) == ("fail", True, 0, None), r
            assert r["expect"] == "fail" and "msg" not in r

    assert bad["failed"] is True
    assert bad["msg"].startswith("3 of 4 ping checks failed: a -> b (2001:db8:3::2) expected fail, observed pass")
    assert [(t["from"], t["address"]) for t in bad["failed_targets"]] == \
        [("a", "2001:db8:3::2"), ("a", "198.18.3.77"), ("x", "198.18.3.2")]
    nowhere = bad["failed_targets"][2]
    assert nowhere["sent"] == 0 and nowhere["ok"] is False and "does not exist" in nowhere["msg"]
    assert [r["ok"] for r in bad["results"]] == [False, False, True, False]

    # the kernel agrees, asked with iputils ping instead of the module
    assert iputils_answers(a, "2001:db8:3::2") and iputils_answers(b, "198.18.3.1")
    assert not iputils_answers(a, "198.18.3.77") and not iputils_answers(c, "198.18.3.2")
