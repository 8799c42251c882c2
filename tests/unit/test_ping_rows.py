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


def test_a_result_in_columns_gives_the_rows_of_the_same_result_in_dicts():
    """role verify_ping's call gets each source's outcome in columns (``source_results``):
    its rows are exactly those of the per-target entries the module returns otherwise, with
    expect from ``expect_fail``, observed from ``received``, ok and msg from ``errors``."""
    dicts = [
        {"from": "h1", "address": "10.0.0.2", "node": "h2", "expect": "pass", "observed": "pass", "ok": True,
         "rtt_ms": 0.05, "sent": 1, "received": 1},
        {"from": "h1", "address": "2001:db8:1::2", "node": "h2", "expect": "fail", "observed": "pass",
         "ok": False, "rtt_ms": 0.04, "sent": 1, "received": 1},
        {"from": "h1", "address": "10.0.0.9", "node": "x", "expect": "fail", "observed": "fail", "ok": True,
         "rtt_ms": None, "sent": 3, "received": 0},
        {"from": "h2", "address": "10.9.0.1", "node": "x", "expect": "fail", "observed": "fail", "ok": False,
         "rtt_ms": None, "sent": 0, "received": 0, "msg": "cannot ping from topo-l-h2: namespace does not exist"},
        {"from": "h2", "address": "10.0.0.1", "node": "h1", "expect": "pass", "observed": "fail", "ok": False,
         "rtt_ms": None, "sent": 0, "received": 0, "msg": "cannot ping from topo-l-h2: namespace does not exist"},
    ]
    columns = [
        {"from": "h1", "addresses": "10.0.0.2,2001:db8:1::2,10.0.0.9", "nodes": "h2,h2,x",
         "expect_fail": "10.0.0.9,2001:db8:1::2", "sent": "1,1,3", "received": "1,1,0",
         "rtt_ms": "0.05,0.04,", "errors": []},
        {"from": "h2", "addresses": "10.9.0.1,10.0.0.1", "nodes": "x,h1", "expect_fail": "10.9.0.1",
         "sent": "0,0", "received": "0,0", "rtt_ms": ",",
         "errors": [[0, "cannot ping from topo-l-h2: namespace does not exist"],
                    [1, "cannot ping from topo-l-h2: namespace does not exist"]]},
    ]
    want = check_rows([ModuleResult("localhost", "topo.lab.ping", {"failed": True, "results": dicts})])
    got = check_rows([ModuleResult("localhost", "topo.lab.ping", {"failed": True, "results": [],
                                                                   "source_results": columns})])
    assert got == want and [list(r) for r in got] == [list(r) for r in want]   # the keys in the same order
    assert summary(got) == {"total": 5, "passed": 2, "failed": 3}


def test_rows_of_dicts_come_before_those_in_columns_and_a_lone_target_keeps_its_empty_values():
    res = {"results": [{"from": "a", "address": "10.0.0.2", "node": "b", "ok": True, "rtt_ms": None}],
           "source_results": [{"from": "c", "addresses": "10.0.0.1", "nodes": "a", "expect_fail": "",
                               "sent": "1", "received": "1", "rtt_ms": "0.1", "errors": []},
                              {"from": "d", "addresses": "10.0.0.3", "nodes": "", "expect_fail": "10.0.0.3",
                               "sent": "3", "received": "0", "rtt_ms": "", "errors": []}]}
    rows = check_rows([ModuleResult("localhost", "topo.lab.ping", res)])
    assert [(r["from"], r["address"], r["node"], r["ok"], r["rtt_ms"]) for r in rows] == \
        [("a", "10.0.0.2", "b", True, None), ("c", "10.0.0.1", "a", True, 0.1), ("d", "10.0.0.3", "", True, None)]
