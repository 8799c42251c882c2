"""topo.lab.ping run inside a lab namespace through the topo.lab.netns connection.

All traffic stays in the two namespaces of the test: the only non-local subnet the
sender has is its veth's; other targets have no route and fail at once.
"""

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
