"""topo.lab.ping run inside a lab namespace through the topo.lab.netns connection
(``targets``), and from the controller into many namespaces at once (``sources``, with
target dicts or in columns, what the verify_ping role does), over IPv4 and IPv6.

All traffic stays in the namespaces of the test: the only non-local subnets the senders
have are their veth's; other targets have no route and fail at once.
"""

import subprocess

from tests.modules.conftest import ROOT_ONLY, ok, sh, step
from topo.results import ModuleResult, check_rows

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
    # the first answer ends a target (no more requests), a silent one gets all count of them
    assert res["198.18.3.2"]["observed"] == "pass" and (res["198.18.3.2"]["sent"], res["198.18.3.2"]["received"]) == (1, 1)
    assert res["198.18.3.2"]["rtt_ms"] is not None
    assert res["198.18.3.1"]["observed"] == "pass"
    for addr in ("198.18.3.77", "198.18.4.9"):
        assert res[addr]["observed"] == "fail" and (res[addr]["sent"], res[addr]["received"]) == (2, 0)
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


def as_columns(sources):
    """``sources`` with target dicts as the same sources in columns, each column one
    comma-separated string (as topo's inventory writes them for role verify_ping)."""
    return [{"node": s["node"], "netns": s["netns"], "addresses": ",".join(t["address"] for t in s["targets"]),
             "nodes": ",".join(t["node"] for t in s["targets"]),
             "expect_fail": ",".join(t["address"] for t in s["targets"] if t.get("expect") == "fail")}
            for s in sources]


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
    good, checked, bad, good_cols, bad_cols = ansible.run(
        step("ping", passing), step("ping", passing, check=True), step("ping", mismatch),
        step("ping", dict(opts, sources=as_columns(passing["sources"]))),
        step("ping", dict(opts, sources=as_columns(mismatch["sources"]))))

    for run in (good, checked):   # a check: the same in check mode
        ok(run)
        assert run["changed"] is False and run["failed_targets"] == [] and run["source_results"] == []
        rows = {(r["from"], r["address"]): r for r in run["results"]}
        assert [(r["from"], r["address"]) for r in run["results"]] == \
            [(s["node"], t["address"]) for s in passing["sources"] for t in s["targets"]]
        for key in [("a", "198.18.3.2"), ("a", "2001:db8:3::2"), ("a", "198.18.3.1"),
                    ("b", "198.18.3.1"), ("b", "2001:db8:3::1")]:
            r = rows[key]
            assert (r["observed"], r["ok"], r["sent"], r["received"]) == ("pass", True, 1, 1), r
            assert isinstance(r["rtt_ms"], float) and 0 <= r["rtt_ms"] < 1000, r
        for key in [("a", "198.18.3.77"), ("a", "2001:db8:3::77"), ("a", "198.18.4.9"),
                    ("c", "198.18.3.2"), ("c", "2001:db8:3::2")]:
            r = rows[key]
            assert (r["observed"], r["ok"], r["sent"], r["received"], r["rtt_ms"]) == ("fail", True, 2, 0, None), r
            assert r["expect"] == "fail" and "msg" not in r

    # in columns: nothing in results, one source_results entry per source, and topo's rows of
    # them are those of the run with target dicts (round-trip times aside)
    def rows_of(run):
        return [dict(r, rtt_ms=r["rtt_ms"] is not None)
                for r in check_rows([ModuleResult("localhost", "topo.lab.ping", run)])]

    ok(good_cols)
    assert good_cols["results"] == [] and good_cols["failed_targets"] == []
    assert [s["from"] for s in good_cols["source_results"]] == ["a", "b", "c"]
    assert good_cols["source_results"][0]["nodes"] == "b,b,a,ghost,ghost,far"
    assert good_cols["source_results"][0]["sent"] == "1,1,1,2,2,2"
    assert rows_of(good_cols) == rows_of(good)
    assert bad_cols["failed"] is True and bad_cols["results"] == []
    assert bad_cols["msg"] == bad["msg"] and \
        [dict(t, rtt_ms=None) for t in bad_cols["failed_targets"]] == [dict(t, rtt_ms=None) for t in bad["failed_targets"]]
    assert rows_of(bad_cols) == rows_of(bad)

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


def test_columns_that_do_not_line_up_are_refused_before_any_ping(lab, ansible):
    a = lab.make_ns("a")
    wrong_nodes, unknown_fail, both = ansible.run(
        step("ping", {"sources": [{"node": "a", "netns": a, "addresses": "127.0.0.1,127.0.0.2", "nodes": "x"}]}),
        step("ping", {"sources": [{"node": "a", "netns": a, "addresses": ["127.0.0.1"],
                                   "expect_fail": ["127.0.0.9"]}]}),
        step("ping", {"sources": [{"node": "a", "netns": a, "addresses": ["127.0.0.1"],
                                   "targets": [{"address": "127.0.0.1"}]}]}))
    assert wrong_nodes["failed"] and wrong_nodes["msg"] == \
        "source a: 1 nodes for 2 addresses (give one per address, or none)"
    assert unknown_fail["failed"] and unknown_fail["msg"] == \
        "source a: expect_fail names addresses it does not ping: 127.0.0.9"
    assert both["failed"] and "mutually exclusive" in both["msg"]
    for run in (wrong_nodes, unknown_fail):
        assert run["source_results"] == [] and run["results"] == []
