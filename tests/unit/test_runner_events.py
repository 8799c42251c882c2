"""topo.runner's event decoding and topo.results' check rows, from ansible-runner events: no
playbook runs, no root.

``events/verify-localhost.json`` was recorded from a real run of ``events/verify-localhost.yml``
(topo.lab.ping, topo.lab.iperf and topo.lab.capture as the verify roles call them); the other
events are written in the same shape.
"""

import json
import os

from topo.results import ModuleResult, check_rows, summary
from topo.runner import EventDecoder, Progress, RunResult

HERE = os.path.dirname(os.path.abspath(__file__))


def recorded():
    with open(os.path.join(HERE, "events", "verify-localhost.json")) as f:
        return json.load(f)


class Recorder(Progress):
    def __init__(self):
        self.calls = []

    def task_started(self, name):
        self.calls.append(("task", name))

    def host_done(self, failed=False):
        self.calls.append(("host", failed))


def decode(events, playbook="verify", rc=0, progress=None):
    decoder = EventDecoder(RunResult(playbook=playbook, rc=-1, seconds=0.0, log=""), progress)
    for event in events:
        assert decoder.feed(event) is True
    decoder.result.rc, decoder.result.log = rc, "/nonexistent/run.log"
    return decoder.finish()


def host_event(kind, res, host="localhost", task="t", action="topo.lab.netns", **data):
    return {"event": kind, "event_data": dict(host=host, task=task, resolved_action=action, task_action=action,
                                              res=res, **data)}


def test_recorded_verify_run_gives_one_row_per_check_of_each_type():
    result = decode(recorded(), rc=2)
    # failures were ignored (ignore_errors: true), so none is recorded; the run's rc still fails it
    assert [m.module for m in result.check_results] == ["topo.lab.ping", "topo.lab.iperf", "topo.lab.capture"]
    rows = check_rows(result.check_results)
    assert [r["type"] for r in rows] == ["ping", "ping", "iperf3", "capture"]
    self_ping, other_ping, iperf, cap = rows
    assert self_ping == {"type": "ping", "from": "localhost", "address": "127.0.0.1", "node": "self",
                         "expect": "pass", "observed": "pass", "ok": True, "rtt_ms": self_ping["rtt_ms"],
                         "sent": 1, "received": 1}
    assert isinstance(self_ping["rtt_ms"], float)
    assert (other_ping["node"], other_ping["expect"], other_ping["observed"], other_ping["ok"]) == \
        ("other", "fail", "pass", False)
    assert iperf["name"] == "tcp-bad" and iperf["ok"] is False and iperf["from"] == "localhost"
    assert iperf["expected"] == "runs at every length (1000 B)"
    assert iperf["observed"] == "did not run (node h2 (netns nope-h2): the namespace does not exist)"
    assert iperf["msg"].endswith("the namespace does not exist") and iperf["figures"]["runs"] == []
    assert cap == {"type": "capture", "from": "localhost", "on": "r1:eth0", "description": "vxlan",
                   "expect": {"layers": ["Ether", "IP", "UDP", "VXLAN"], "vni": 42}, "ok": False,
                   "matched": 0, "total": 0, "seen": "", "path": None, "rows": [],
                   "msg": "namespace nope-h1, nope-r1 does not exist"}
    assert summary(rows) == {"total": 4, "passed": 1, "failed": 3}
    # rc 2 without a failed task: the run's own failure, with the log's tail
    assert len(result.failures) == 1 and result.failures[0].message.startswith("ansible-playbook exited 2: ")
    assert not result.ok


def test_a_failed_ping_task_that_is_not_ignored_is_a_failure_of_its_host():
    events = recorded()
    for e in events:
        if e["event_data"].get("resolved_action") == "topo.lab.ping" and e["event"] == "runner_on_failed":
            e["event_data"]["ignore_errors"] = None
    result = decode(events, rc=2)
    assert [(f.host, f.task, f.unreachable) for f in result.failures] == [("localhost", "Ping checks", False)]
    assert result.failures[0].message == "1 of 2 ping checks failed: other (127.0.0.2) expected fail, observed pass"
    assert len(check_rows(result.check_results)) == 4


def test_progress_sees_tasks_and_hosts():
    progress = Recorder()
    decode(recorded(), progress=progress)
    assert progress.calls == [("task", "Ping checks"), ("host", False), ("task", "iperf3 checks"), ("host", False),
                              ("task", "Capture checks"), ("host", False)]
    progress = Recorder()
    decode([{"event": "playbook_on_task_start", "event_data": {"task": "Namespaces", "role": "lab"}},
            host_event("runner_on_failed", {"msg": "boom"})], progress=progress, rc=2)
    assert progress.calls == [("task", "lab: Namespaces"), ("host", True)]


def test_changes_warnings_and_the_recap():
    events = [
        host_event("runner_on_ok", {"changed": True, "changes": [
            {"resource": "netns", "action": "create", "name": "lab-h1"},
            {"resource": "netns", "action": "fix", "name": "lab-h2", "detail": "marker"}],
            "warnings": ["no dockerd answers", "no dockerd answers"]}),
        host_event("runner_on_ok", {"changed": False, "changes": [], "warnings": ["no dockerd answers", 7]},
                   action="topo.lab.veth"),
        host_event("runner_on_skipped", {"skipped": True}),
        {"event": "playbook_on_stats", "event_data": {"changed": {"localhost": 1}}},
    ]
    result = decode(events, playbook="apply")
    assert result.changes == [{"resource": "netns", "action": "create", "name": "lab-h1", "host": "localhost"},
                              {"resource": "netns", "action": "fix", "name": "lab-h2", "detail": "marker",
                               "host": "localhost"}]
    assert result.warnings == ["no dockerd answers"]
    assert result.changed_tasks == {"localhost": 1}
    assert result.check_results == [] and result.ok


def test_changed_tasks_without_a_change_list_fail_the_run():
    result = decode([host_event("runner_on_ok", {"changed": True}, host="h1"),
                     {"event": "playbook_on_stats", "event_data": {"changed": {"h1": 2, "h2": 0}}}], playbook="apply")
    assert [(f.host, f.task) for f in result.failures] == [("h1", "apply")]
    assert "carried no change list; see /nonexistent/run.log" in result.failures[0].message


def test_unreachable_and_failed_hosts():
    result = decode([
        host_event("runner_on_unreachable", {"unreachable": True, "msg": "Failed to connect to the host via ssh"},
                   host="far", task="Namespaces"),
        host_event("runner_on_failed", {"failed": True, "msg": "RTNETLINK answers: File exists"}, task="Links"),
        host_event("runner_on_failed", {"failed": True, "msg": "ignored"}, task="Optional", ignore_errors=True),
    ], rc=4)
    assert [(f.host, f.task, f.message, f.unreachable) for f in result.failures] == [
        ("far", "Namespaces", "Failed to connect to the host via ssh", True),
        ("localhost", "Links", "RTNETLINK answers: File exists", False)]


CAST_ITEM = {"type": "multicast", "name": "mc-1", "description": "h1 -> group 239.1.1.1",
             "capture": {"node": "r1", "interface": "eth0"}}


def test_cast_and_iperf_items_become_step_rows_by_their_type():
    cast_ok = {"item": CAST_ITEM, "ok": True, "expected": "h2, h3 receive", "observed": "h2, h3 received",
               "figures": {"sent": 3}, "details": {"h2": {"received": 3}},
               "capture": {"path": "/x/mc-1.pcap", "total": 6, "rows": [{"src": "10.0.0.1"}]}}
    cast_bad = {"item": dict(CAST_ITEM, name="mc-2", capture=None), "ok": False, "failed": True,
                "expected": "h2 receives", "observed": "", "msg": "h2 received nothing"}
    crashed = {"item": {"type": "anycast", "name": "any-1"}, "failed": True, "msg": "MODULE FAILURE"}
    iperf = {"item": {"type": "iperf3", "name": "tcp", "description": "h1 -> h2"}, "ok": True,
             "expected": "runs", "observed": "9.4 Gbit/s", "figures": {"runs": [{"length": 1000,
                                                                             "bits_per_second": 9.4e9}]}}
    result = decode([
        host_event("runner_on_failed", {"results": [cast_ok, cast_bad, crashed]}, action="topo.lab.cast",
                   ignore_errors=True),
        host_event("runner_on_ok", {"results": [iperf]}, action="topo.lab.iperf"),
    ])
    rows = check_rows(result.check_results)
    assert [(r["type"], r["name"], r["ok"]) for r in rows] == [
        ("multicast", "mc-1", True), ("multicast", "mc-2", False), ("anycast", "any-1", False), ("iperf3", "tcp", True)]
    assert rows[0] == {"type": "multicast", "name": "mc-1", "from": "localhost",
                       "description": "h1 -> group 239.1.1.1", "expected": "h2, h3 receive",
                       "observed": "h2, h3 received", "ok": True, "figures": {"sent": 3},
                       "details": {"h2": {"received": 3}},
                       "capture": {"path": "/x/mc-1.pcap", "total": 6, "rows": [{"src": "10.0.0.1"}],
                                   "on": "r1:eth0"}}
    assert rows[1]["msg"] == rows[1]["observed"] == "h2 received nothing"
    assert rows[2]["observed"] == "MODULE FAILURE" and rows[2]["description"] == ""
    assert rows[3]["figures"]["runs"][0]["bits_per_second"] == 9.4e9


def test_capture_rows_summarise_the_layer_stacks_seen():
    packets = [{"layers": ["Ether", "IP", "UDP", "VXLAN"], "vni": 42}] * 3 + [{"layers": ["Ether", "ARP"]}]
    item = {"type": "capture", "node": "r1", "interface": "eth0", "description": "vxlan",
            "expect": {"layers": ["Ether", "IP", "UDP", "VXLAN"], "vni": 42}}
    rows = check_rows([ModuleResult("localhost", "topo.lab.capture", {"results": [
        {"item": item, "matched": 3, "total": 4, "rows": packets * 10, "path": "/c/r1.pcap"}]})])
    assert rows == [{"type": "capture", "from": "localhost", "on": "r1:eth0", "description": "vxlan",
                     "expect": item["expect"], "ok": True, "matched": 3, "total": 4,
                     "seen": "30 x Ether/IP/UDP/VXLAN (vni 42), 10 x Ether/ARP", "path": "/c/r1.pcap",
                     "rows": (packets * 10)[:20]}]


def test_the_type_decides_not_the_keys():
    """A result of another module that happens to carry ``results`` with ``expect`` is no
    check; a loop item of an unknown type is skipped; a ping entry is a ping row by its module."""
    other = ModuleResult("localhost", "ansible.builtin.command", {"results": [{"expect": "pass", "item": {}}]})
    unknown = ModuleResult("localhost", "topo.lab.cast", {"results": [{"item": {"type": "telepathy", "name": "x"}},
                                                                     {"item": "not a dict"}, "junk"]})
    ping = ModuleResult("n1", "topo.lab.ping", {"results": [{"address": "10.0.0.2", "node": "n2", "ok": True}]})
    assert check_rows([other, unknown, ping]) == [
        {"address": "10.0.0.2", "node": "n2", "ok": True, "type": "ping", "from": "n1"}]


def test_events_are_written_as_ansible_runner_writes_them(tmp_path):
    """With events_dir, the decoder writes each event (counter-uuid.json, mode 0600, the JSON
    ansible-runner's own writer produces) and tells ansible-runner not to write it; an event
    without a uuid is left to ansible-runner."""
    import codecs
    import stat

    decoder = EventDecoder(RunResult(playbook="verify", rc=-1, seconds=0.0, log=""), None, str(tmp_path))
    events = [dict(e, uuid=f"u{i}", counter=i + 1) for i, e in enumerate(recorded())]
    for event in events:
        assert decoder.feed(event) is False
    assert decoder.feed({"event": "verbose", "event_data": {}}) is True
    assert sorted(os.listdir(tmp_path)) == sorted(f"{e['counter']}-{e['uuid']}.json" for e in events)
    for event in events:
        path = tmp_path / f"{event['counter']}-{event['uuid']}.json"
        with codecs.open(str(tmp_path / "runner.json"), "w", encoding="utf-8") as f:
            json.dump(event, f)  # what ansible_runner.runner.Runner.event_callback writes
        assert path.read_bytes() == (tmp_path / "runner.json").read_bytes()
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # the decoding is the same as without events_dir
    assert [m.module for m in decoder.result.check_results] == ["topo.lab.ping", "topo.lab.iperf", "topo.lab.capture"]


def _site(apply_events, check_events, rc):
    """One run of site.yml decoded with the checks' play apart, as topo apply runs it."""
    parts = {"Checks": RunResult(playbook="verify", rc=-1, seconds=0.0, log="")}
    decoder = EventDecoder(RunResult(playbook="site", rc=-1, seconds=0.0, log=""), None, None, parts)
    events = [{"event": "playbook_on_play_start", "event_data": {"name": "Build the lab"}}, *apply_events]
    if check_events is not None:
        events += [{"event": "playbook_on_play_start", "event_data": {"name": "Checks"}}, *check_events]
    for event in events:
        decoder.feed(event)
    decoder.result.rc, decoder.result.log = rc, "/nonexistent/run.log"
    return decoder.finish(), parts["Checks"], decoder


def test_one_site_run_is_split_into_the_apply_and_the_checks():
    """A failed check ends the run with rc 2; the apply part is still a success, its changes
    and the checks' results each in their own part (a during: check's link changes too, which
    are no change of the apply), and the recap's changed counts are matched against both."""
    change = {"resource": "netns", "action": "create", "name": "topo-l-h1"}
    link = {"resource": "veth", "action": "fix", "name": "topo-l-h1/eth0", "detail": "up True -> False"}
    apply_part, checks, decoder = _site(
        [host_event("runner_on_ok", {"changed": True, "changes": [change]}, action="topo.lab.lab")],
        [host_event("runner_on_ok", {"changed": True, "changes": [link]}, host="n1", action="topo.lab.link"),
         host_event("runner_on_failed", {"results": [{"address": "10.0.0.2", "node": "n2", "ok": False}]},
                    host="n1", action="topo.lab.ping", ignore_errors=True),
         {"event": "playbook_on_stats", "event_data": {"changed": {"localhost": 1, "n1": 1}}}], rc=2)
    assert apply_part.ok and apply_part.rc == 0 and apply_part.changes == [dict(change, host="localhost")]
    assert apply_part.check_results == [] and apply_part.changed_tasks == {"localhost": 1, "n1": 1}
    assert checks.rc == 0 and not checks.failures and checks.log == "/nonexistent/run.log"
    assert [m.module for m in checks.check_results] == ["topo.lab.ping"]
    assert checks.changes == [dict(link, host="n1")]
    assert set(decoder.started) == {"Checks"}


def test_a_failed_apply_part_fails_the_site_run():
    apply_part, checks, _ = _site([host_event("runner_on_failed", {"failed": True, "msg": "RTNETLINK answers"},
                                              task="Links")], None, rc=2)
    assert not apply_part.ok and apply_part.rc == 2
    assert [(f.task, f.message) for f in apply_part.failures] == [("Links", "RTNETLINK answers")]
    assert checks.check_results == [] and checks.rc == 0


def test_a_site_run_that_stopped_before_the_checks_without_a_failed_task_fails():
    apply_part, _, _ = _site([], None, rc=4)
    assert not apply_part.ok and "ansible-playbook exited 4" in apply_part.failures[0].message


def test_a_host_whose_checks_could_not_run_is_a_failure_of_the_checks_part():
    apply_part, checks, _ = _site([], [host_event("runner_on_unreachable", {"msg": "gone"}, host="far")], rc=4)
    assert apply_part.ok
    assert [(f.host, f.unreachable) for f in checks.failures] == [("far", True)] and checks.rc == 4


def test_a_finished_child_s_terminal_is_closed_without_ptyprocess_pause():
    """runner._no_close_delay: ptyprocess's 0.1 s pause after closing a pty is gone; a child
    that still runs is still killed by close()."""
    import time

    import ptyprocess

    from topo import runner

    runner._no_close_delay()
    runner._no_close_delay()  # twice: patched once
    done = ptyprocess.PtyProcess.spawn(["true"])
    while done.isalive():
        time.sleep(0.01)
    started = time.monotonic()
    done.close()
    assert done.delayafterclose == 0 and time.monotonic() - started < 0.05
    alive = ptyprocess.PtyProcess.spawn(["sleep", "30"])
    alive.close(force=True)
    assert not alive.isalive()


def test_started_is_called_once_before_ansible_playbook_runs(tmp_path, monkeypatch):
    """run_playbook's ``started`` is called once, before the playbook's first event (a real
    run_playbook of a play with one debug task on the one host of a yaml inventory, no
    root)."""
    from topo import labdir, runner

    monkeypatch.setenv("TOPO_HOME", str(tmp_path / "home"))
    (tmp_path / "noop.yml").write_text("- hosts: all\n  gather_facts: false\n  tasks:\n"
                                       "    - ansible.builtin.debug: {msg: hi}\n")
    monkeypatch.setattr(labdir, "playbook", lambda name: str(tmp_path / f"{name}.yml"))
    order = []

    class Seen(Progress):
        def task_started(self, name):
            order.append(name)

    inventory = tmp_path / "inventory"
    inventory.mkdir()
    # the run reads it with the yaml plugin alone (ANSIBLE_INVENTORY_ENABLED): its one host
    # runs the task, which an unparsed inventory (no host) would not
    (inventory / "hosts.yml").write_text("all:\n  hosts:\n    fe-node: {ansible_connection: local}\n")
    result = runner.run_playbook("fe-noop", "noop", inventory=str(inventory), progress=Seen(),
                                 started=lambda: order.append("started"))
    assert result.ok, result.log
    assert order == ["started", "ansible.builtin.debug"], order
