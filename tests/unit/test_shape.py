"""The documented shape (topo.expand.shape) lists every key the expanded lab has: the
expansion of each unit input and each example has exactly the keys its TypedDicts declare
(every required one, no undeclared one)."""

import os

import pytest

from tests.unit.snapshot import HERE, _here, _rel
from topo.expand import shape
from topo.pipeline import compile_file

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples")
INPUTS = ([os.path.join(HERE, "input", n) for n in sorted(os.listdir(os.path.join(HERE, "input")))]
          + [os.path.join(EXAMPLES, n) for n in sorted(os.listdir(EXAMPLES))
             if not n.endswith("-checks.yml") and os.path.isfile(os.path.join(EXAMPLES, n))])  # a CSV lab's verify: list, not a lab
CHECKS = {"ping": shape.PingCheck, "capture": shape.CaptureCheck, "iperf3": shape.IperfCheck}


def _keys(where: str, data: dict, typed) -> None:
    declared = typed.__required_keys__ | typed.__optional_keys__
    assert not set(data) - declared, f"{where}: keys {sorted(set(data) - declared)} missing from {typed.__name__}"
    if typed.__total__:
        assert typed.__required_keys__ <= set(data), f"{where}: lacks {sorted(typed.__required_keys__ - set(data))}"


@pytest.mark.parametrize("path", INPUTS, ids=[os.path.relpath(p, os.path.dirname(HERE)) for p in INPUTS])
def test_expansion_has_the_documented_keys(path):
    with _here():
        e = compile_file(_rel(path)).expanded
    _keys("lab", e, shape.Expanded)
    for n, node in e["nodes"].items():
        _keys(f"nodes.{n}", node, shape.Node)
        for i in node["interfaces"]:
            _keys(f"nodes.{n}.interfaces", i, shape.Interface)
        for r in node["routes"]:
            _keys(f"nodes.{n}.routes", r, shape.Route)
        if "container" in node:
            _keys(f"nodes.{n}.container", node["container"], shape.Container)
    for b, bridge in e["bridges"].items():
        _keys(f"bridges.{b}", bridge, shape.Bridge)
    for s, seg in e["segments"].items():
        _keys(f"segments.{s}", seg, shape.Segment)
    for v in e["veths"]:
        _keys("veths", v, shape.Veth)
        _keys("veths.a", v["a"], shape.VethEnd)
        _keys("veths.b", v["b"], shape.VethEnd)
    for t in e["tunnels"]:
        _keys("tunnels", t, shape.Tunnel)
    for i in e["impairments"]:
        _keys("impairments", i, shape.Impairment)
    for c in e["checks"]:
        _keys(f"checks ({c['type']})", c, CHECKS.get(c["type"], shape.CastCheck))
        for t in c.get("targets", []):
            _keys("checks.targets", t, shape.PingTarget)
        for t in c.get("traffic", []):
            _keys("checks.traffic", t, shape.Traffic)
        if c["type"] not in ("ping", "capture"):
            if "capture" in c:
                _keys(f"checks ({c['type']}).capture", c["capture"], shape.CastCapture)
            for role in ("sender", "receiver", "relay", "client", "server"):
                if role in c:
                    _keys(f"checks ({c['type']}).{role}", c[role], shape.Participant)
            for role in ("senders", "receivers", "members", "silent", "servers", "clients"):
                for p in c.get(role, []):
                    _keys(f"checks ({c['type']}).{role}", p, shape.Participant)
