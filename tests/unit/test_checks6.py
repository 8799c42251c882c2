"""IPv6 cast and iperf3 checks in the front end (topo.model check classes,
topo.expand.casts), expanded against nodes shaped as the IPv6 contract says (interfaces
with ``address6``, nodes with ``loopback6``), and the expanded checks accepted by the
modules' own argument specs (plugins/module_utils/_checks/specs.py)."""

import os
from types import SimpleNamespace

import pytest
import yaml
from pydantic import ValidationError

from ansible_collections.topo.lab.plugins.module_utils._checks import specs
from topo.expand.casts import check_family, expand_check
from topo.model import NO_BROADCAST6, Check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MCAST6 = os.path.join(ROOT, "examples", "mcast6.yml")


class Stub:
    """What expand_check reads of an expansion: ``lab.nodes`` (groups, anycast),
    ``out_nodes`` (the expanded nodes) and ``add`` (problems, kept as (field, message))."""

    def __init__(self, nodes):
        self.lab = SimpleNamespace(nodes={n: SimpleNamespace(groups=v.pop("groups", []),
                                                             anycast=v.pop("anycast", []))
                                          for n, v in nodes.items()})
        self.out_nodes = {n: dict(v, netns="t-" + n, kind=v.get("kind", "netns"))
                          for n, v in nodes.items()}
        self.problems = []

    def add(self, path, message, field=None):
        self.problems.append((".".join(map(str, field or path)), message))


def host(i, v6=True, v4=True, **extra):
    return dict({"interfaces": [{"ifname": "eth0",
                                 "address": "172.16.0.%d/24" % i if v4 else None,
                                 "address6": "2001:db8:1::%d/64" % i if v6 else None}],
                 "loopback": None, "loopback6": None}, **extra)


def lab(**extra):
    nodes = {"h%d" % i: host(i) for i in range(1, 5)}
    nodes.update(extra)
    return Stub(nodes)


def expand(x, entry, k=0):
    return expand_check(x, k, Check.model_validate(entry))


def module_ok(check):
    params, problems = specs.validate(check, types=("unicast", "broadcast", "multicast", "anycast",
                                                    "relay", "iperf3"))
    assert problems == [], problems
    return params


def test_mcast6_example_checks():
    """The verify: entries of examples/mcast6.yml expand to IPv6 multicast checks."""
    with open(MCAST6) as f:
        doc = yaml.safe_load(f)
    x = lab()
    hello, other, leave = [expand(x, e, k) for k, e in enumerate(doc["verify"]) if "multicast" in e]
    assert x.problems == []
    assert hello["family"] == 6 and hello["group"] == "ff0e::5" and hello["ttl"] == 1
    assert hello["senders"] == [{"node": "h1", "netns": "t-h1", "container": None,
                                 "address": "2001:db8:1::1", "interface": "2001:db8:1::1"}]
    assert [(m["node"], m["address"], m["interface"]) for m in hello["members"]] == [
        ("h2", "2001:db8:1::2", "2001:db8:1::2"), ("h3", "2001:db8:1::3", "2001:db8:1::3")]
    assert hello["silent"] == [{"node": "h4", "netns": "t-h4", "container": None,
                                "address": "2001:db8:1::4", "join": ["ff0e::6"]}]
    assert hello["description"] == ("UDP h1 -> group [ff0e::5]:50001 hop limit 1, members h2, h3, not h4")
    assert hello["capture"]["interface"] == "eth0" and hello["payloads"] == [{"text": "Hello, World!"}]
    assert other["family"] == 6 and [m["node"] for m in other["members"]] == ["h4"]
    assert leave["family"] == 6 and leave["leave"] == ["h3"] and leave["ack"] is True
    for c in (hello, other, leave):
        assert module_ok(c)["family"] == 6


def test_ipv4_checks_have_no_family_key():
    x = lab()
    c = expand(x, {"multicast": {"from": "h1", "group": "239.1.1.1", "members": ["h2"]}})
    assert "family" not in c and c["senders"][0]["address"] == "172.16.0.1"
    assert c["description"].startswith("UDP h1 -> group 239.1.1.1:5007 TTL 1")
    u = expand(x, {"unicast": {"from": "h1", "to": "h2"}})
    assert "family" not in u and u["address"] == "172.16.0.2"
    assert module_ok(c)["family"] is None


def test_family_is_said_or_implied():
    x = lab()
    said = expand(x, {"unicast": {"from": "h1", "to": "h2", "family": "ipv6", "proto": "tcp"}})
    assert said["family"] == 6 and said["address"] == "2001:db8:1::2"
    assert said["sender"]["address"] == "2001:db8:1::1"
    assert said["description"] == "TCP h1 -> h2 [2001:db8:1::2]:5000"
    implied = expand(x, {"unicast": {"from": "h1", "to": "h2", "address": "2001:db8:1::2"}})
    assert implied["family"] == 6
    # a silent node's join of an IPv6 group makes it IPv6 too
    spec = Check.model_validate({"multicast": {"from": "h1", "group": "ff0e::1", "members": ["h2"]}}).multicast
    assert check_family(spec) == 6
    for c in (said, implied):
        module_ok(c)


def test_anycast_relay_and_iperf3_over_ipv6():
    x = lab(s1=host(9, anycast=["2001:db8:ff::1/128", "10.255.0.1"]),
            s2=host(10, v4=False, anycast=["2001:db8:ff::1"]))
    a = expand(x, {"anycast": {"address": "2001:db8:ff::1", "servers": ["s1", "s2"],
                               "clients": {"h1": "s1", "h2": "s2"}, "proto": ["tcp", "udp"]}})
    assert x.problems == [] and a["family"] == 6
    assert [c["address"] for c in a["clients"]] == ["2001:db8:1::1", "2001:db8:1::2"]
    assert a["description"].startswith("TCP/UDP anycast [2001:db8:ff::1]:8080 on s1, s2")
    r = expand(x, {"relay": {"from": "h1", "via": "h2", "to": ["h3"], "silent": ["h4"], "family": "ipv6"}})
    assert (r["address"], r["out_address"], r["family"]) == ("2001:db8:1::2", "ff02::1", 6)
    i = expand(x, {"iperf3": {"client": "h1", "server": "s2", "family": "ipv6"}})
    assert (i["family"], i["address"], i["client"]["address"]) == (6, "2001:db8:1::10", "2001:db8:1::1")
    i4 = expand(x, {"iperf3": {"client": "h1", "server": "s1"}})
    assert "family" not in i4 and i4["address"] == "172.16.0.9"
    for c in (a, r, i, i4):
        module_ok(c)


def test_ipv6_problems_name_the_field():
    x = lab(v4only=host(20, v6=False))
    assert expand(x, {"unicast": {"from": "v4only", "to": "h2", "family": "ipv6"}}) is None
    assert expand(x, {"unicast": {"from": "h1", "to": "h2", "family": "ipv6", "address": "172.16.0.2"}}) is None
    assert expand(x, {"multicast": {"from": "h1", "group": "ff0e::5", "members": ["h2"],
                                    "silent": [{"node": "h3", "join": ["239.1.1.1"]}]}}) is None
    assert expand(x, {"multicast": {"from": "h1", "group": "239.1.1.1", "family": "ipv6",
                                    "members": ["h2"]}}) is None
    assert expand(x, {"anycast": {"address": "2001:db8:ff::9", "servers": ["h3"],
                                  "clients": {"h1": "h3"}}}) is None
    assert x.problems == [
        ("verify.0.unicast.from", "node v4only has no IPv6 address to send from or be reached at"),
        ("verify.0.unicast.address", "172.16.0.2 is not an IPv6 address (family: ipv6)"),
        ("verify.0.multicast.silent", "h3 joins 239.1.1.1, not IPv6 like ff0e::5"),
        ("verify.0.multicast.group", "239.1.1.1 is not an IPv6 group (family: ipv6)"),
        ("verify.0.anycast.servers",
         "server h3 does not hold 2001:db8:ff::9; add it to the node's anycast: list"),
    ]


def test_broadcast_is_ipv4_only():
    with pytest.raises(ValidationError, match="broadcast is IPv4-only; use multicast to ff02::1"):
        Check.model_validate({"broadcast": {"from": "h1", "to": ["h2"], "family": "ipv6"}})
    assert NO_BROADCAST6 == specs.NO_BROADCAST6
    _, problems = specs.validate({"type": "broadcast", "name": "b", "family": 6, "port": 5000,
                                  "address": "ff02::1", "payloads": [{"text": "x"}],
                                  "sender": {"node": "h1", "netns": "n1"}})
    assert problems == ["broadcast check b: broadcast is IPv4-only; use multicast to ff02::1"]


@pytest.mark.parametrize("group, message", [
    ("ff0e::5", None), ("ff02::1:5", None), ("224.1.1.1", None),
    ("2001:db8::5", "2001:db8::5 is not a multicast group address (ff00::/8)"),
    ("10.0.0.1", "10.0.0.1 is not a multicast group address (224.0.0.0/4)"),
    ("ff0e::zz", "'ff0e::zz' is not an IPv6 address"),
])
def test_groups_of_both_families(group, message):
    entry = {"multicast": {"from": "h1", "group": group, "members": ["h2"]}}
    if message is None:
        assert Check.model_validate(entry).multicast.group == group
    else:
        with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")
                           .replace(".", r"\.")):
            Check.model_validate(entry)
