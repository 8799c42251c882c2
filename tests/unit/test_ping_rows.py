"""Ping rows from one batched topo.lab.ping result (role verify_ping on the build host): each
entry's own ``from``, the row shape of a per-node call kept, and a call that failed without
results still giving a failed row. No root, no playbook."""

from topo.results import ModuleResult, check_rows, summary


def test_a_batched_result_gives_one_row_per_source_and_target_from_its_own_source():
    res = {"failed": True, "msg": "1 of 3 ping checks failed: ...", "results": [
        {"from": "h1", "address": "10.0.0.2", "node": "h2", "expect": "pass", "observed": "pass", "ok": True,
         "rtt_ms": 0.05, "sent": 3, "received": 3},
        {"from": "h1", "address": "2001:db8:1::2", "node": "h2", "expect": "pass", "observed": "pass",
         "ok": True, "rtt_ms": 0.04, "sent": 3, "received": 3},
        {"from": "h2", "address": "10.9.0.1", "node": "x", "expect": "fail", "observed": "fail", "ok": False,
         "rtt_ms": None, "sent": 0, "received": 0, "msg": "cannot ping from topo-l-h2: namespace does not exist"},
    ]}
    rows = check_rows([ModuleResult("localhost", "topo.lab.ping", res)])
    assert [(r["type"], r["from"], r["address"]) for r in rows] == \
        [("ping", "h1", "10.0.0.2"), ("ping", "h1", "2001:db8:1::2"), ("ping", "h2", "10.9.0.1")]
    assert list(rows[0]) == ["address", "node", "expect", "observed", "ok", "rtt_ms", "sent", "received",
                             "type", "from"]   # the keys and their order of a per-node row
    assert rows[2]["msg"].startswith("cannot ping") and summary(rows) == {"total": 3, "passed": 2, "failed": 1}


def test_a_per_node_result_takes_its_host_as_source():
    rows = check_rows([ModuleResult("n1", "topo.lab.ping", {"results": [{"address": "10.0.0.2", "node": "n2",
                                                                          "ok": True}]})])
    assert rows == [{"address": "10.0.0.2", "node": "n2", "ok": True, "type": "ping", "from": "n1"}]


def test_a_ping_call_that_could_not_run_is_one_failed_row_not_silence():
    failed = ModuleResult("localhost", "topo.lab.ping", {"failed": True, "msg": "cannot ping: not root"})
    skipped = ModuleResult("localhost", "topo.lab.ping", {"skipped": True})
    rows = check_rows([failed, skipped])
    assert len(rows) == 1 and rows[0]["ok"] is False and rows[0]["from"] == "localhost"
    assert rows[0]["msg"] == rows[0]["observed"] == "cannot ping: not root"
    assert summary(rows) == {"total": 1, "passed": 0, "failed": 1}
