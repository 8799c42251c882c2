"""Multicast wires (issue 14 item 4): what reached a silent node's wire against what reached
its sockets (multicast.judge_wire, cast._wire_seen), ``wire: clean`` judged and validated
(specs), and report.md explaining a flooded datagram that was not delivered."""

import copy

from ansible_collections.topo.lab.plugins.module_utils._checks import cast, multicast, specs
from topo import report

GROUP = "224.1.1.1"
CHECK = {"type": "multicast", "name": "hello-group-b", "group": GROUP, "port": 5007, "ttl": 1,
         "timeout": 2, "payloads": [{"text": "hi"}],
         "senders": [{"node": "b-master", "netns": "topo-c-b-master", "address": "192.18.0.10"}],
         "members": [{"node": "b-m1", "netns": "topo-c-b-m1", "address": "192.18.0.11"}],
         "silent": [{"node": "b-m4", "netns": "topo-c-b-m4", "address": "192.18.0.14"},
                    {"node": "b-m5", "netns": "topo-c-b-m5", "address": "192.18.0.15"}]}


def _result(received):
    return {"observed": "round 1: 1 of 1 members got every payload; no silent node got anything",
            "figures": {"received": received},
            "details": {n: {"silent": {"expect": "nothing", "ok": True, "problems": []}} for n in received}}


def _row(dst, layers=("Ether", "IP", "UDP")):
    return {"dst": dst, "layers": list(layers), "protocol": layers[-1]}


class _Cap:
    def __init__(self, rows):
        self.rows = rows


def test_wire_seen_counts_the_group_on_silent_wires_only():
    rows = [_row(GROUP), _row(GROUP), _row("224.0.0.22", ("Ether", "IP", "IGMP")), _row("192.18.0.14")]
    seen = cast._wire_seen(CHECK, [
        (_Cap(rows), {"node": "b-m4", "interface": "eth0"}),
        (_Cap(rows), {"node": "b-m1", "interface": "eth0"}),  # a member: not a silent wire
        (_Cap([]), {"node": "b-m5", "interface": "eth0", "error": "empty"})])
    assert seen == {"b-m4": {"interfaces": ["eth0"], "datagrams": 2},
                    "b-m5": {"interfaces": [], "datagrams": 0, "errors": ["eth0: empty"]}}


def test_flooded_but_not_delivered_is_explained_not_failed():
    res = _result({"b-m1": 1, "b-m4": 0, "b-m5": 0})
    probs = multicast.judge_wire(CHECK, res, {"b-m4": {"interfaces": ["eth0"], "datagrams": 1}})
    assert probs == []
    assert res["figures"]["wire"] == {"b-m4": 1} and res["figures"]["group"] == GROUP
    assert "wire_attempts" not in res["figures"]
    assert res["observed"].endswith("on the silent nodes' wires: b-m4 1 datagram of the group "
                                    "(a non-member's kernel drops what it did not join)")
    wire = res["details"]["b-m4"]["silent"]["wire"]
    assert wire["datagrams"] == 1 and wire["delivered"] == 0
    assert wire["why"].startswith("not delivered: b-m4 did not join 224.1.1.1, so its kernel dropped it")


def test_wire_clean_fails_naming_the_node():
    check = dict(CHECK, wire="clean", settle=12.0)
    res = _result({"b-m1": 1, "b-m4": 0, "b-m5": 0})
    probs = multicast.judge_wire(check, res, {"b-m4": {"interfaces": ["eth0"], "datagrams": 3},
                                              "b-m5": {"interfaces": ["eth0"], "datagrams": 0}},
                                 attempts=13, waited=12.4)
    assert probs == ["b-m4 (silent) 3 datagrams to 224.1.1.1:5007 reached its wire (eth0) after 13 attempts "
                     "over 12 s: the bridge flooded them"]
    assert res["figures"]["wire"] == {"b-m4": 3, "b-m5": 0}
    assert res["figures"]["wire_attempts"] == 13 and res["figures"]["wire_settle"] == 12.0


def test_wire_clean_passes_when_clean():
    check = dict(CHECK, wire="clean", settle=12.0)
    res = _result({"b-m1": 1, "b-m4": 0, "b-m5": 0})
    seen = {n: {"interfaces": ["eth0"], "datagrams": 0} for n in ("b-m4", "b-m5")}
    assert multicast.judge_wire(check, res, seen) == []
    assert res["observed"].endswith("the silent nodes' wires stayed clean (b-m4, b-m5)")


def test_wire_clean_unreadable_wire_fails():
    check = dict(CHECK, wire="clean")
    res = _result({"b-m4": 0})
    probs = multicast.judge_wire(check, res, {"b-m4": {"interfaces": [], "datagrams": 0, "errors": ["eth0: x"]}})
    assert probs == ["b-m4 (silent) its wire could not be read: eth0: x"]


def test_wire_places_and_filter():
    check = copy.deepcopy(CHECK)
    assert multicast.wire_places(check) == []
    check["wire"] = "clean"
    check["silent"][0]["wire"] = ["eth0", "eth1"]
    assert [(p["node"], i) for p, i in multicast.wire_places(check)] == [("b-m4", "eth0"), ("b-m4", "eth1")]
    assert multicast.wire_filter(dict(check, group="ff0e::5")) == "udp and dst host ff0e::5 and dst port 5007"


def test_spec_wire_clean_needs_silent_wires():
    check = dict(copy.deepcopy(CHECK), wire="clean")
    _, probs = specs.validate(check)
    assert probs == ["multicast check hello-group-b: wire: clean needs silent nodes with the interfaces "
                     "to capture (silent[].wire)"]
    check["silent"][0]["wire"] = ["eth0"]
    params, probs = specs.validate(check)
    assert probs == [] and params["settle"] == multicast.WIRE_SETTLE
    _, probs = specs.validate(dict(check, wire="spotless"))
    assert probs and "wire" in probs[0]


EXPANDED = {"nodes": {"b-m4": {"interfaces": [{"ifname": "eth0", "segment": "lan"}]}},
            "bridges": {"lan": {"segment": "lan", "mcast_snooping": True, "mcast_querier": False}}}


def _row_of(res):
    return {"type": "multicast", "name": "hello-group-b", "ok": True, "figures": res["figures"],
            "details": res["details"], "expected": "", "observed": res["observed"]}


def test_report_explains_the_flooded_datagram():
    res = _result({"b-m1": 1, "b-m4": 0})
    multicast.judge_wire(CHECK, res, {"b-m4": {"interfaces": ["eth0"], "datagrams": 1}})
    text = "\n".join(report.silent_section(_row_of(res), EXPANDED))
    assert "## Multicast `hello-group-b`: the silent nodes" in text
    assert ("| b-m4 | 0 | 1 (eth0) | not delivered: b-m4 did not join 224.1.1.1, so its kernel dropped it; "
            "on the wire because bridge lan snoops IGMP but has no querier (`querier: true` is not set), "
            "so it floods multicast to every port |") in text
    assert "IP_MULTICAST_ALL=0" in text
    flat = {"nodes": EXPANDED["nodes"], "bridges": {"lan": dict(EXPANDED["bridges"]["lan"], mcast_snooping=False)}}
    assert "does no IGMP snooping (`igmp_snooping: false`)" in "\n".join(report.silent_section(_row_of(res), flat))
    md = report.markdown("c", "f.yml", "now", [_row_of(res)], {"passed": 1, "total": 1, "failed": 0}, {}, "/x")
    assert "the silent nodes" in md


def test_report_clean_wires_say_so():
    check = dict(CHECK, group="ff0e::5", wire="clean", settle=12.0)
    res = _result({"b-m4": 0})
    multicast.judge_wire(check, res, {"b-m4": {"interfaces": ["eth0"], "datagrams": 0}}, attempts=1, waited=3.2)
    text = "\n".join(report.silent_section(_row_of(res), EXPANDED))
    assert "| b-m4 | 0 | 0 (eth0) | nothing on its wire: the bridge forwarded the group to its members only |" in text
    assert "`wire: clean`: 1 attempt(s) over 3.2 s" in text and "up to 12.0 s" in text
    assert "not delivered" not in text
