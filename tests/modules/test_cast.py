"""topo.lab.cast: unicast, broadcast, multicast, anycast and relay checks between real
namespaces, run through ansible-playbook (so the agent's source is read from the AnsiballZ
payload, as in a lab run).

The network (built once for the file, every name ``tc<hex>-*``, deleted in a finally)::

    segment 1: 198.18.1.0/24, bridge br0 in tc..-sw1         segment 2: 198.18.2.0/24 (tc..-sw2)
      h1 .1  h2 .2  h3 .3  h4 .4  h5 .5 (no default route)     f1 .1  f2 .2
      r .254 (eth1) ------------ router, ip_forward=1 ---------- r .254 (eth2)

The bridges snoop IGMP (the kernel's default) but have no querier, so they flood multicast
to every port: a non-member's socket is what must keep a group's datagrams out.

Anycast 198.19.255.1/32 sits on the lo of h3, h4 and f2. Host routes pick the nearest:
h1 -> h4 (198.18.1.4), h5 -> h3, f1 -> f2; h2 goes through the router, which routes it to f2.
No multicast routing anywhere (mc_forwarding is off): the router forwards no multicast, and
no directed broadcast (bc_forwarding is off). All traffic stays inside these namespaces.
"""

import hashlib
import json
import os
import secrets
import subprocess
import sys
import time

import pytest

from tests.modules.conftest import ROOT_ONLY, ok, sh, step

pytestmark = ROOT_ONLY

ANYCAST = "198.19.255.1"
GROUP = "239.7.7.7"
TEXT = {"text": "Hello, Cluster A!"}
JSON = {"json": {"value": 22.29, "sensor": "temp"}}
RANDOM = {"bytes": 16}
PAYLOADS = [TEXT, JSON, RANDOM]
TEXT_SHA = hashlib.sha256(b"Hello, Cluster A!").hexdigest()
JSON_SHA = hashlib.sha256(b'{"sensor":"temp","value":22.29}').hexdigest()
TIMEOUT = 1.0
AGENT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "plugins", "module_utils", "_castagent.py")


class Net:
    """The test network: namespace names and addresses by node name."""

    def __init__(self):
        self.prefix = "tc%s-" % secrets.token_hex(3)
        self.made = []
        self.addr = {}

    def ns(self, node):
        return self.prefix + node

    def add_ns(self, node):
        name = self.ns(node)
        sh("ip", "netns", "add", name)
        self.made.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def port(self, switch, node, ifname, address):
        """A veth from ``node`` (``ifname``, ``address``/24, an IPv6 one /64 with nodad)
        to the bridge of ``switch``."""
        sh("ip", "-n", self.ns(switch), "link", "add", node, "type", "veth", "peer", "name", ifname,
           "netns", self.ns(node))
        sh("ip", "-n", self.ns(switch), "link", "set", node, "master", "br0", "up")
        if ":" in address:
            sh("ip", "-n", self.ns(node), "addr", "add", address + "/64", "dev", ifname, "nodad")
        else:
            sh("ip", "-n", self.ns(node), "addr", "add", address + "/24", "dev", ifname)
        sh("ip", "-n", self.ns(node), "link", "set", ifname, "up")
        self.addr.setdefault(node, address)

    def p(self, node, **extra):
        """The participant dict of ``node`` (the contract's P)."""
        return dict({"node": node, "netns": self.ns(node), "container": None,
                     "address": self.addr[node]}, **extra)

    def cleanup(self):
        for name in reversed(self.made):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, check=False)


@pytest.fixture(scope="module")
def net():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    n = Net()
    try:
        for switch in ("sw1", "sw2"):
            n.add_ns(switch)
            sh("ip", "-n", n.ns(switch), "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", n.ns(switch), "link", "set", "br0", "up")
        for node in ("h1", "h2", "h3", "h4", "h5", "f1", "f2", "r"):
            n.add_ns(node)
        for i in range(1, 6):
            n.port("sw1", "h%d" % i, "eth0", "198.18.1.%d" % i)
        for i in range(1, 3):
            n.port("sw2", "f%d" % i, "eth0", "198.18.2.%d" % i)
        n.port("sw1", "r", "eth1", "198.18.1.254")
        sh("ip", "-n", n.ns("sw2"), "link", "add", "r", "type", "veth", "peer", "name", "eth2",
           "netns", n.ns("r"))
        sh("ip", "-n", n.ns("sw2"), "link", "set", "r", "master", "br0", "up")
        sh("ip", "-n", n.ns("r"), "addr", "add", "198.18.2.254/24", "dev", "eth2")
        sh("ip", "-n", n.ns("r"), "link", "set", "eth2", "up")
        sh("ip", "netns", "exec", n.ns("r"), "sysctl", "-qw", "net.ipv4.ip_forward=1")
        for node in ("h1", "h2", "h3", "h4"):
            sh("ip", "-n", n.ns(node), "route", "add", "default", "via", "198.18.1.254")
        for node in ("f1", "f2"):
            sh("ip", "-n", n.ns(node), "route", "add", "default", "via", "198.18.2.254")
        # anycast: the service address on three servers, host routes to the nearest
        for node in ("h3", "h4", "f2"):
            sh("ip", "-n", n.ns(node), "addr", "add", ANYCAST + "/32", "dev", "lo")
        for node, via in (("h1", "198.18.1.4"), ("h5", "198.18.1.3"), ("f1", "198.18.2.2"),
                          ("h2", "198.18.1.254"), ("r", "198.18.2.2")):
            sh("ip", "-n", n.ns(node), "route", "add", ANYCAST + "/32", "via", via)
        yield n
    finally:
        n.cleanup()
        left = [name for name in n.made if os.path.exists("/run/netns/" + name)]
        assert not left, "namespaces left behind: %s" % left


def cast(check, **params):
    return step("cast", dict({"check": check}, **params))


def check(kind, name, **fields):
    return dict({"type": kind, "name": name, "description": "test " + name,
                 "timeout": TIMEOUT}, **fields)


def failed(result, *words):
    """Assert the check failed, with every result key, and its msg has every word."""
    assert result["failed"] is True and result["ok"] is False, result
    for key in ("type", "name", "description", "expected", "observed", "figures", "details",
                "msg"):
        assert key in result, key
    for w in words:
        assert w in result["msg"], (w, result["msg"])
    return result


def passed(result):
    ok(result)
    assert result["ok"] is True and result["changed"] is False and "msg" not in result
    assert result["expected"] and result["observed"]
    return result


def shas(records):
    return sorted(r["sha256"] for r in records)


def agent_ok(result, node, label="receiver"):
    return result["details"][node][label]["ok"]


# --------------------------------------------------------------------------- unicast

def test_unicast(net, ansible):
    p = net.p
    udp, tcp, udp_wrong, tcp_wrong, no_route, no_route_must_pass, big = ansible.run(
        cast(check("unicast", "u-udp", proto="udp", sender=p("h1"), receiver=p("h2"),
                   address="198.18.1.2", port=41001, payloads=PAYLOADS, expect="pass")),
        cast(check("unicast", "u-tcp", proto="tcp", sender=p("h1"), receiver=p("f1"),
                   address="198.18.2.1", port=41002, payloads=PAYLOADS, expect="pass")),
        # the datagrams go to h3's address: the listed receiver h2 gets nothing
        cast(check("unicast", "u-udp-wrong", proto="udp", sender=p("h1"), receiver=p("h2"),
                   address="198.18.1.3", port=41003, payloads=[TEXT], expect="pass")),
        cast(check("unicast", "u-tcp-wrong", proto="tcp", sender=p("h1"), receiver=p("h2"),
                   address="198.18.1.3", port=41004, payloads=[TEXT], expect="pass")),
        # h5 has no route off its segment
        cast(check("unicast", "u-noroute", proto="udp", sender=p("h5"), receiver=p("f1"),
                   address="198.18.2.1", port=41005, payloads=[TEXT], expect="fail")),
        cast(check("unicast", "u-noroute-pass", proto="udp", sender=p("h5"), receiver=p("f1"),
                   address="198.18.2.1", port=41006, payloads=[TEXT], expect="pass")),
        # datagrams of 60000 bytes (fragmented): the sender's arguments go on its stdin
        cast(check("unicast", "u-big", proto="udp", sender=p("h1"), receiver=p("f2"),
                   address="198.18.2.2", port=41007, payloads=[{"bytes": 60000}] * 2,
                   expect="pass")),
    )

    passed(udp)
    assert udp["type"] == "unicast" and udp["name"] == "u-udp"
    assert udp["figures"]["sent"] == 3 and udp["figures"]["intact"] == 3
    sent = udp["figures"]["payloads"]
    assert [x["kind"] for x in sent] == ["text", "json", "bytes"]
    assert sent[0]["sha256"] == TEXT_SHA and sent[1]["sha256"] == JSON_SHA
    assert sent[2]["length"] == 16
    got = udp["details"]["h2"]["receiver"]["received"]
    assert shas(got) == sorted(x["sha256"] for x in sent)  # byte-identical, random bytes too
    assert {r["src"] for r in got} == {"198.18.1.1"} and {r["dst"] for r in got} == {"198.18.1.2"}
    assert [r["preview"] for r in got[:2]] == ["Hello, Cluster A!", '{"sensor":"temp","value":22.29}']

    passed(tcp)  # through the router
    conn, = tcp["details"]["f1"]["receiver"]["received"]
    assert conn["proto"] == "tcp" and conn["src"] == "198.18.1.1"
    assert [s["sha256"] for s in conn["segments"]] == [x["sha256"] for x in tcp["figures"]["payloads"]]
    assert tcp["figures"]["payloads"][2]["sha256"] != sent[2]["sha256"]  # new bytes each run

    failed(udp_wrong, "h2 (receiver) got 0 of 1 payloads intact")
    assert udp_wrong["figures"]["received"] == 0 and udp_wrong["observed"] == "h2 got nothing"
    failed(tcp_wrong, "h2 (receiver) got 0 of 1 payloads intact")
    assert "Connection refused" in tcp_wrong["observed"]

    passed(no_route)
    assert "unreachable" in " ".join(no_route["details"]["h5"]["sender"]["errors"])
    assert no_route["figures"]["received"] == 0
    failed(no_route_must_pass, "f1 (receiver) got 0 of 1")
    assert "unreachable" in no_route_must_pass["observed"]

    passed(big)
    assert [x["length"] for x in big["figures"]["payloads"]] == [60000, 60000]
    assert big["figures"]["bytes"] == 120000
    assert shas(big["details"]["f2"]["receiver"]["received"]) == \
        sorted(x["sha256"] for x in big["figures"]["payloads"])


# --------------------------------------------------------------------------- broadcast

def test_broadcast(net, ansible, tmp_path):
    p = net.p
    limited, far_receiver, directed, other_subnet = ansible.run(
        cast(check("broadcast", "b-limited", sender=p("h1"), address="255.255.255.255",
                   port=42001, payloads=PAYLOADS, receivers=[p("h2"), p("h3"), p("r")],
                   silent=[p("f1"), p("f2")],
                   capture={"node": "h4", "interface": "eth0", "netns": net.ns("h4"),
                            "container": None, "filter": "udp port 42001"}),
             capture_dir=str(tmp_path / "captures")),
        cast(check("broadcast", "b-far", sender=p("h1"), address="255.255.255.255",
                   port=42002, payloads=[TEXT], receivers=[p("h2"), p("f1")], silent=[])),
        cast(check("broadcast", "b-directed", sender=p("h1"), address="198.18.1.255",
                   port=42003, payloads=[TEXT, RANDOM], receivers=[p("h4"), p("h5")],
                   silent=[p("f1")])),
        # a directed broadcast into the other subnet: the router does not forward it
        cast(check("broadcast", "b-other-subnet", sender=p("h1"), address="198.18.2.255",
                   port=42004, payloads=[TEXT], receivers=[p("f1"), p("f2")], silent=[])),
    )

    passed(limited)
    assert limited["figures"]["received"] == {"h2": 3, "h3": 3, "r": 3, "f1": 0, "f2": 0}
    for node in ("h2", "h3", "r"):
        recs = limited["details"][node]["receiver"]["received"]
        assert {r["dst"] for r in recs} == {"255.255.255.255"}
        assert shas(recs) == sorted(x["sha256"] for x in limited["figures"]["payloads"])
    cap = limited["capture"]
    assert cap["path"] == str(tmp_path / "captures" / "b-limited.pcap") and os.path.getsize(cap["path"]) > 24
    assert cap["total"] == 3 and len(cap["rows"]) == 3
    assert {(r["kind"], r["src"], r["dst"], r["protocol"]) for r in cap["rows"]} == \
        {("broadcast", "198.18.1.1", "255.255.255.255", "UDP")}

    failed(far_receiver, "f1 (receiver) got 0 of 1 payloads")
    assert agent_ok(far_receiver, "h2") and not agent_ok(far_receiver, "f1")
    assert "h2 (receiver)" not in far_receiver["msg"]

    passed(directed)
    assert {r["dst"] for r in directed["details"]["h5"]["receiver"]["received"]} == {"198.18.1.255"}
    failed(other_subnet, "f1 (receiver) got 0 of 1", "f2 (receiver) got 0 of 1")


# --------------------------------------------------------------------------- multicast

def member(net, node, interface=None):
    return net.p(node, interface=interface)


def test_multicast(net, ansible):
    p = net.p
    m = lambda node, iface=None: member(net, node, iface)  # noqa: E731
    (two_senders, wrong_iface, wrong_iface_silent, no_join, no_join_silent, ttl_far, ttl_far_silent,
     leave, via_eth2) = ansible.run(
        # two sources, acks; h5 listens on the port, a member of another group only
        cast(check("multicast", "m-acks", group=GROUP, port=43001, ttl=1,
                   senders=[m("h1"), m("h4")], members=[m("h2"), m("h3"), m("r", "198.18.1.254")],
                   silent=[p("h5", join=["239.8.8.8"])], leave=[], ack=True, payloads=PAYLOADS)),
        # the router joins on eth2 (the other segment): it is not a member on segment 1
        cast(check("multicast", "m-wrong-iface", group=GROUP, port=43002, ttl=1,
                   senders=[m("h1")], members=[m("h2"), m("r", "198.18.2.254")],
                   silent=[], leave=[], ack=True, payloads=[TEXT])),
        cast(check("multicast", "m-wrong-iface-silent", group=GROUP, port=43003, ttl=1,
                   senders=[m("h1")], members=[m("h2")], silent=[p("r")], leave=[], ack=True,
                   payloads=[TEXT])),
        # h3's join fails (198.18.1.99 is no address of h3): it listens, but is no member
        cast(check("multicast", "m-no-join", group=GROUP, port=43008, ttl=1,
                   senders=[m("h1")], members=[m("h2"), m("h3", "198.18.1.99")], silent=[],
                   leave=[], ack=False, payloads=[TEXT])),
        cast(check("multicast", "m-no-join-silent", group=GROUP, port=43009, ttl=1,
                   senders=[m("h1")], members=[m("h2")], silent=[p("h3")], leave=[], ack=False,
                   payloads=[TEXT])),
        # TTL 1 reaches the segment; f1 beyond the router gets nothing even when it joins
        cast(check("multicast", "m-ttl-far", group=GROUP, port=43004, ttl=1,
                   senders=[m("h1")], members=[m("h2"), m("h3"), m("f1")], silent=[],
                   leave=[], ack=False, payloads=[TEXT])),
        cast(check("multicast", "m-ttl-far-silent", group=GROUP, port=43005, ttl=1,
                   senders=[m("h1")], members=[m("h2"), m("h3")], silent=[p("f1")],
                   leave=[], ack=False, payloads=[TEXT])),
        # h3 leaves after round 1
        cast(check("multicast", "m-leave", group=GROUP, port=43006, ttl=1,
                   senders=[m("h1")], members=[m("h2"), m("h3"), m("h4")], silent=[p("h5")],
                   leave=["h3"], ack=True, payloads=[TEXT, RANDOM])),
        # interface selection: the router sends out of eth2, to segment 2 only
        cast(check("multicast", "m-router-eth2", group=GROUP, port=43007, ttl=1,
                   senders=[m("r", "198.18.2.254")], members=[m("f1"), m("f2")],
                   silent=[p("h2")], leave=[], ack=True, payloads=[JSON])),
    )

    passed(two_senders)
    f = two_senders["figures"]
    assert f["acks"] == {"h1": 9, "h4": 9} and f["expected_acks"] == {"h1": 9, "h4": 9}  # 3 x 3
    assert f["received"] == {"h2": 6, "h3": 6, "r": 6, "h5": 0}
    recs = two_senders["details"]["h3"]["member"]["received"]
    assert {r["src"] for r in recs} == {"198.18.1.1", "198.18.1.4"}
    assert {r["dst"] for r in recs} == {GROUP}
    assert two_senders["details"]["h2"]["member"]["acks_sent"] == 6
    assert two_senders["details"]["h1"]["sender"]["acks_from"] == {"h2": 3, "h3": 3, "r": 3}
    assert two_senders["details"]["h5"]["silent"]["joined"] == [{"group": "239.8.8.8",
                                                                "interface": "198.18.1.5"}]

    failed(wrong_iface, "r (member) got 0 of 1 payloads from h1", "h1 (sender) counted 1 acks, expected 2")
    assert wrong_iface["figures"]["received"] == {"h2": 1, "r": 0}
    assert wrong_iface["details"]["r"]["member"]["joined"] == [{"group": GROUP, "interface": "198.18.2.254"}]
    passed(wrong_iface_silent)
    assert wrong_iface_silent["figures"]["acks"] == {"h1": 1}

    failed(no_join, "h3 (member) got 0 of 1 payloads from h1 in round 1; errors: join 239.7.7.7 on "
                    "198.18.1.99: [Errno 19] No such device")
    assert no_join["details"]["h3"]["member"]["joined"] == []
    assert agent_ok(no_join, "h2", "member")
    passed(no_join_silent)
    assert no_join_silent["figures"]["received"] == {"h2": 1, "h3": 0}

    failed(ttl_far, "f1 (member) got 0 of 1 payloads")
    assert ttl_far["figures"]["received"] == {"h2": 1, "h3": 1, "f1": 0}
    assert "f1" not in ttl_far["msg"].replace("f1 (member)", "")  # f1 is the only problem
    passed(ttl_far_silent)

    passed(leave)
    f = leave["figures"]
    assert f["rounds"] == 2
    assert f["received_by_round"] == {"1": {"h2": 2, "h3": 2, "h4": 2, "h5": 0},
                                      "2": {"h2": 2, "h3": 0, "h4": 2, "h5": 0}}
    assert f["acks"] == {"h1": 10} and f["expected_acks"] == {"h1": 10}  # 3 x 2 + 2 x 2
    assert leave["details"]["h3"]["member"]["left"] == [GROUP]
    assert "leavers got nothing in round 2" in leave["observed"]

    passed(via_eth2)
    assert via_eth2["figures"]["received"] == {"f1": 1, "f2": 1, "h2": 0}
    assert {r["src"] for r in via_eth2["details"]["f2"]["member"]["received"]} == {"198.18.2.254"}
    assert via_eth2["figures"]["acks"] == {"r": 2}


# --------------------------------------------------------------------------- anycast

def test_anycast(net, ansible):
    p = net.p
    servers = [p("h3"), p("h4"), p("f2")]
    nearest, wrong, in_check_mode = ansible.run(
        # two requests: over udp two datagrams, each answered; over tcp one connection
        cast(check("anycast", "a-nearest", address=ANYCAST, port=44001, protos=["tcp", "udp"],
                   servers=servers, payloads=[TEXT, JSON],
                   clients=[p("h1", expect="h4"), p("h5", expect="h3"), p("f1", expect="f2"),
                            p("h2", expect="f2")])),
        cast(check("anycast", "a-wrong", address=ANYCAST, port=44002, protos=["udp", "tcp"],
                   servers=servers, clients=[p("h1", expect="f2"), p("f1", expect="f2")])),
        # an observation: it runs in check mode too
        step("cast", {"check": check("anycast", "a-check-mode", address=ANYCAST, port=44003,
                                     protos=["udp"], servers=servers,
                                     clients=[p("h1", expect="h4")])}, check=True),
    )
    passed(nearest)
    assert nearest["figures"]["answers"] == {
        "h1": {"tcp": "h4", "udp": "h4"}, "h5": {"tcp": "h3", "udp": "h3"},
        "f1": {"tcp": "f2", "udp": "f2"}, "h2": {"tcp": "f2", "udp": "f2"}}
    assert nearest["figures"]["served"] == {"h3": {"tcp": 1, "udp": 2}, "h4": {"tcp": 1, "udp": 2},
                                            "f2": {"tcp": 2, "udp": 4}}
    assert [r["text"] for r in nearest["details"]["h5"]["client/udp"]["replies"]] == ["h3", "h3"]
    requests = nearest["details"]["h3"]["server"]["received"]
    assert sorted((r["proto"], r["preview"]) for r in requests) == [
        ("tcp", 'Hello, Cluster A!{"sensor":"temp","value":22.29}'),
        ("udp", "Hello, Cluster A!"), ("udp", '{"sensor":"temp","value":22.29}')]
    assert {r["src"] for r in requests} == {"198.18.1.5"}
    failed(wrong, "h1 (client/udp) answered over udp by h4, expected f2",
           "h1 (client/tcp) answered over tcp by h4, expected f2")
    assert "f1 (client" not in wrong["msg"]
    passed(in_check_mode)
    assert in_check_mode["figures"]["answers"] == {"h1": {"udp": "h4"}}


# --------------------------------------------------------------------------- relay

def test_relay(net, ansible):
    p = net.p
    good, wrong_side, limited = ansible.run(
        # h1 unicasts to the router, which broadcasts into segment 2
        cast(check("relay", "r-good", sender=p("h1"), relay=p("r"), address="198.18.1.254",
                   port=45001, out_address="198.18.2.255", out_port=45002, payloads=PAYLOADS,
                   receivers=[p("f1"), p("f2")], silent=[p("h2")])),
        # resent into segment 1 instead: f1 hears nothing and h2 hears it
        cast(check("relay", "r-wrong-side", sender=p("h1"), relay=p("r"), address="198.18.1.254",
                   port=45003, out_address="198.18.1.255", out_port=45004, payloads=[TEXT],
                   receivers=[p("f1")], silent=[p("h2")])),
        # a limited broadcast leaves by the interface of the relay's address (segment 1)
        cast(check("relay", "r-limited", sender=p("h1"), relay=p("r"), address="198.18.1.254",
                   port=45005, out_address="255.255.255.255", out_port=45006, payloads=[JSON],
                   receivers=[p("h2"), p("h3")], silent=[p("f1"), p("f2")])),
    )
    passed(good)
    assert good["figures"]["relayed"] == 3 and good["figures"]["relay_received"] == 3
    assert good["figures"]["received"] == {"f1": 3, "f2": 3, "h2": 0}
    recs = good["details"]["f2"]["receiver"]["received"]
    assert shas(recs) == sorted(x["sha256"] for x in good["figures"]["payloads"])
    assert {(r["src"], r["dst"]) for r in recs} == {("198.18.2.254", "198.18.2.255")}
    failed(wrong_side, "f1 (receiver) got 0 of 1 payloads", "h2 (silent) got 1 datagram (from 198.18.1.254)")
    passed(limited)
    assert {(r["src"], r["dst"]) for r in limited["details"]["h3"]["receiver"]["received"]} == \
        {("198.18.1.254", "255.255.255.255")}


# --------------------------------------------------------------------------- errors

def test_checks_that_cannot_run(net, ansible):
    p = net.p
    ghost = {"node": "ghost", "netns": net.ns("ghost"), "container": None, "address": "198.18.1.9"}
    no_ns, bad_leave, iperf, bad_bind, not_local = ansible.run(
        cast(check("broadcast", "e-ghost", sender=p("h1"), address="255.255.255.255",
                   port=46001, payloads=[TEXT], receivers=[p("h2"), ghost], silent=[])),
        cast(check("multicast", "e-leave", group=GROUP, port=46002, ttl=1, senders=[p("h1")],
                   members=[p("h2")], silent=[], leave=["h3"], ack=False, payloads=[TEXT])),
        cast(check("iperf3", "e-iperf", client=p("h1"), server=p("h2"))),
        # a sender address that is not the node's: it cannot bind it
        cast(check("unicast", "e-bind", proto="udp", sender=dict(p("h1"), address="198.18.1.77"),
                   receiver=p("h2"), address="198.18.1.2", port=46003, payloads=[TEXT])),
        cast(check("anycast", "e-server", address=ANYCAST, port=46004, protos=["udp"],
                   servers=[p("h1")], clients=[p("h2", expect="h1")])),
    )
    failed(no_ns, "ghost (receiver): the agent exited with status")
    assert net.ns("ghost") in no_ns["msg"]
    assert no_ns["details"]["ghost"]["receiver"]["problems"] == ["not ready"]
    failed(bad_leave, "leave names h3, not members")
    failed(iperf, "type 'iperf3' is not a cast check")
    failed(bad_bind, "h1 (sender): udp socket (bind 198.18.1.77", "Cannot assign requested address")
    failed(not_local, "h1 (server): bind 198.19.255.1:46004 (udp)")


# --------------------------------------------------------------------------- the agent alone

def test_agent_never_hangs(net):
    """The agent reports and exits within its life, with no command on stdin ever, and
    reports a datagram sent to it."""
    src = open(AGENT).read()
    args = {"role": "recv", "node": "h2", "proto": "udp", "port": 47001, "bind": "", "life": 1.0}
    # -I -S: isolated, without site-packages - the standard library is enough
    proc = subprocess.Popen(["ip", "netns", "exec", net.ns("h2"), "python3", "-I", "-S", "-c", src,
                             json.dumps(args)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "READY\n"
        sh("ip", "netns", "exec", net.ns("h1"), sys.executable, "-c",
           "import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM)"
           ".sendto(b'x', ('198.18.1.2', 47001))")
        started = time.monotonic()
        proc.wait(timeout=10)  # stdin stays open: only its life ends it
        assert time.monotonic() - started < 3
        out = proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    lines = out.splitlines()
    assert lines[0].startswith("GOT ") and json.loads(lines[0][4:])["src"] == "198.18.1.1"
    report = json.loads(lines[-1])
    assert report["count"] == 1 and report["received"][0]["sha256"] == hashlib.sha256(b"x").hexdigest()
    assert report["errors"] == ["stopped after its life of 1.0 s"] and proc.returncode == 0


# --------------------------------------------------------------------------- docker

def test_container_member(net, ansible, docker_client, tmp_path):
    """A docker container on segment 1 is a multicast member (the agent runs with the
    container's own python3 through docker exec), and counts for the acks."""
    tag = net.prefix + "docker"
    name = net.prefix + "c1"
    container = None
    try:
        container = docker_client.containers.run(
            "topo-node:latest", ["sleep", "300"], name=name, detach=True, network_mode="none",
            cap_add=["NET_ADMIN", "NET_RAW"], labels={"topo.test": tag})
        container.reload()
        pid = container.attrs["State"]["Pid"]
        sh("ip", "-n", net.ns("sw1"), "link", "add", "c1", "type", "veth", "peer", "name", "eth0",
           "netns", str(pid))
        sh("ip", "-n", net.ns("sw1"), "link", "set", "c1", "master", "br0", "up")
        sh("docker", "exec", name, "ip", "addr", "add", "198.18.1.50/24", "dev", "eth0")
        sh("docker", "exec", name, "ip", "link", "set", "eth0", "up")
        c1 = {"node": "c1", "netns": None, "container": name, "address": "198.18.1.50",
              "interface": None}
        ghost = dict(c1, node="c9", container=net.prefix + "no-such-container")
        good, wrong = ansible.run(
            cast(check("multicast", "d-member", group=GROUP, port=48001, ttl=1,
                       senders=[member(net, "h1")], members=[member(net, "h2"), c1],
                       silent=[net.p("h5")], leave=["c1"], ack=True, payloads=PAYLOADS,
                       capture={"node": "c1", "interface": "eth0", "netns": None,
                                "container": name, "filter": "udp port 48001"}),
                 capture_dir=str(tmp_path)),
            cast(check("multicast", "d-ghost", group=GROUP, port=48002, ttl=1,
                       senders=[member(net, "h1")], members=[ghost], silent=[], leave=[],
                       ack=False, payloads=[TEXT])),
        )
        passed(good)
        assert good["figures"]["acks"] == {"h1": 9} and good["figures"]["expected_acks"] == {"h1": 9}
        assert good["figures"]["received_by_round"]["1"]["c1"] == 3
        assert good["figures"]["received_by_round"]["2"]["c1"] == 0
        recs = good["details"]["c1"]["member"]["received"]
        assert shas(recs) == sorted(x["sha256"] for x in good["figures"]["payloads"])
        # the capture in the container's namespace: the bridge (no querier) floods both
        # rounds to its port, but its socket got round 1 only, so only 3 acks go out
        rows = [(r["src"], r["dst"], r["kind"]) for r in good["capture"]["rows"]]
        assert rows.count(("198.18.1.1", GROUP, "multicast")) == 6, rows
        assert rows.count(("198.18.1.50", "198.18.1.1", "unicast")) == 3, rows
        failed(wrong, "c9 (member): the agent exited with status")
    finally:
        if container is not None:
            container.remove(force=True)


# --------------------------------------------------------------------------- IPv6

ANYCAST6 = "2001:db8:ff::1"
GROUP6, OTHER6 = "ff0e::5", "ff0e::6"
HELLO = {"text": "Hello, World!"}


@pytest.fixture(scope="module")
def net6():
    """The IPv6 network (every name ``t6<hex>-*``)::

        segment 1: 2001:db8:1::/64 (bridge in sw1)      segment 2: 2001:db8:2::/64 (sw2)
          h1 ::1  h2 ::2  h3 ::3  h4 ::4                   f1 ::1
          r ::fe (eth1) ------- router, IPv6 forwarding ---- r ::fe (eth2)

    No DAD (accept_dad=0 before any address, and nodad), no router advertisements. The
    bridges snoop MLD (the default) with no querier: they flood multicast to every port.
    Anycast 2001:db8:ff::1/128 on the lo of h3 and f1; h1 reaches h3 (a host route), h2
    the router, which routes it to f1. No multicast routing."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    n = Net()
    n.prefix = "t6%s-" % secrets.token_hex(3)
    try:
        for node in ("sw1", "sw2", "h1", "h2", "h3", "h4", "f1", "r"):
            ns = n.add_ns(node)
            for key in ("all.accept_dad", "default.accept_dad", "all.accept_ra", "default.accept_ra"):
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.%s=0" % key)
        for switch in ("sw1", "sw2"):
            sh("ip", "-n", n.ns(switch), "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", n.ns(switch), "link", "set", "br0", "up")
        for i in range(1, 5):
            n.port("sw1", "h%d" % i, "eth0", "2001:db8:1::%d" % i)
        n.port("sw2", "f1", "eth0", "2001:db8:2::1")
        n.port("sw1", "r", "eth1", "2001:db8:1::fe")
        sh("ip", "-n", n.ns("sw2"), "link", "add", "r", "type", "veth", "peer", "name", "eth2",
           "netns", n.ns("r"))
        sh("ip", "-n", n.ns("sw2"), "link", "set", "r", "master", "br0", "up")
        sh("ip", "-n", n.ns("r"), "addr", "add", "2001:db8:2::fe/64", "dev", "eth2", "nodad")
        sh("ip", "-n", n.ns("r"), "link", "set", "eth2", "up")
        sh("ip", "netns", "exec", n.ns("r"), "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
        for node in ("h1", "h2", "h3", "h4"):
            sh("ip", "-n", n.ns(node), "-6", "route", "add", "default", "via", "2001:db8:1::fe")
        sh("ip", "-n", n.ns("f1"), "-6", "route", "add", "default", "via", "2001:db8:2::fe")
        for node in ("h3", "f1"):
            sh("ip", "-n", n.ns(node), "addr", "add", ANYCAST6 + "/128", "dev", "lo", "nodad")
        for node, via in (("h1", "2001:db8:1::3"), ("h2", "2001:db8:1::fe"), ("r", "2001:db8:2::1")):
            sh("ip", "-n", n.ns(node), "-6", "route", "add", ANYCAST6 + "/128", "via", via)
        yield n
    finally:
        n.cleanup()
        left = [name for name in n.made if os.path.exists("/run/netns/" + name)]
        assert not left, "namespaces left behind: %s" % left


def check6(kind, name, **fields):
    return check(kind, name, family=6, **fields)


def hop_limits(path, group):
    """The hop limit of every captured IPv6 datagram to ``group`` (read with scapy)."""
    from scapy.layers.inet6 import IPv6
    from scapy.utils import rdpcap
    return [p[IPv6].hlim for p in rdpcap(path) if IPv6 in p and p[IPv6].dst == group]


def test_unicast_and_anycast_ipv6(net6, ansible):
    p = net6.p
    udp, tcp, udp_wrong, nearest = ansible.run(
        cast(check6("unicast", "u6-udp", proto="udp", sender=p("h1"), receiver=p("h2"),
                    address="2001:db8:1::2", port=41101, payloads=PAYLOADS)),
        # through the router
        cast(check6("unicast", "u6-tcp", proto="tcp", sender=p("h1"), receiver=p("f1"),
                    address="2001:db8:2::1", port=41102, payloads=PAYLOADS)),
        cast(check6("unicast", "u6-wrong", proto="udp", sender=p("h1"), receiver=p("h2"),
                    address="2001:db8:1::3", port=41103, payloads=[TEXT])),
        cast(check6("anycast", "a6-nearest", address=ANYCAST6, port=44101, protos=["tcp", "udp"],
                    servers=[p("h3"), p("f1")], payloads=[TEXT],
                    clients=[p("h1", expect="h3"), p("h2", expect="f1"), p("h4", expect="f1")])),
    )
    passed(udp)
    got = udp["details"]["h2"]["receiver"]["received"]
    assert shas(got) == sorted(x["sha256"] for x in udp["figures"]["payloads"])
    assert {(r["src"], r["dst"]) for r in got} == {("2001:db8:1::1", "2001:db8:1::2")}
    assert "[2001:db8:1::2]:41101" in udp["expected"]
    passed(tcp)
    conn, = tcp["details"]["f1"]["receiver"]["received"]
    assert conn["src"] == "2001:db8:1::1" and len(conn["segments"]) == 3
    failed(udp_wrong, "h2 (receiver) got 0 of 1 payloads intact")
    passed(nearest)
    assert nearest["figures"]["answers"] == {"h1": {"tcp": "h3", "udp": "h3"},
                                             "h2": {"tcp": "f1", "udp": "f1"},
                                             "h4": {"tcp": "f1", "udp": "f1"}}
    assert nearest["figures"]["served"] == {"h3": {"tcp": 1, "udp": 1}, "f1": {"tcp": 2, "udp": 2}}


def test_multicast_ipv6_two_groups(net6, ansible, tmp_path):
    """examples/mcast6.yml by hand: h2 and h3 join ff0e::5 and get "Hello, World!"; h4
    joined only ff0e::6 gets nothing, though a capture on its wire shows the datagram;
    then ff0e::6 reaches h4 alone. Hop limit 1 and 5 are on the wire as sent."""
    p, m = net6.p, (lambda node, iface=None: member(net6, node, iface))
    cap = lambda node, port: {"node": node, "interface": "eth0", "netns": net6.ns(node),  # noqa: E731
                              "container": None, "filter": "udp port %d" % port}
    first, second, hops5 = ansible.run(
        cast(check6("multicast", "m6-hello", group=GROUP6, port=50001, ttl=1,
                    senders=[m("h1", "2001:db8:1::1")],
                    members=[m("h2", "2001:db8:1::2"), m("h3", "2001:db8:1::3")],
                    silent=[p("h4", join=[OTHER6])], payloads=[HELLO], capture=cap("h4", 50001)),
             capture_dir=str(tmp_path)),
        cast(check6("multicast", "m6-other", group=OTHER6, port=50001, ttl=1,
                    senders=[m("h1", "2001:db8:1::1")], members=[m("h4", "2001:db8:1::4")],
                    silent=[p("h2"), p("h3")], payloads=[{"text": "Hello, ff0e::6!"}])),
        cast(check6("multicast", "m6-hops", group=GROUP6, port=50003, ttl=5,
                    senders=[m("h1")], members=[m("h2")], silent=[], payloads=[TEXT],
                    capture=cap("h2", 50003)),
             capture_dir=str(tmp_path)),
    )
    passed(first)
    assert first["figures"]["received"] == {"h2": 1, "h3": 1, "h4": 0}
    for node in ("h2", "h3"):
        rec, = first["details"][node]["member"]["received"]
        assert (rec["preview"], rec["src"], rec["dst"]) == ("Hello, World!", "2001:db8:1::1", GROUP6)
        assert first["details"][node]["member"]["joined"] == [
            {"group": GROUP6, "interface": "2001:db8:1::%s" % node[1]}]
    assert first["details"]["h4"]["silent"]["joined"] == [{"group": OTHER6, "interface": "2001:db8:1::4"}]
    assert first["details"]["h4"]["silent"]["received"] == []
    assert "[ff0e::5]:50001, hop limit 1" in first["expected"]
    rows = [(r["src"], r["dst"], r["protocol"], r["kind"]) for r in first["capture"]["rows"]]
    assert rows == [("2001:db8:1::1", GROUP6, "UDP", "multicast")], rows  # on h4's wire
    assert hop_limits(first["capture"]["path"], GROUP6) == [1]
    passed(second)
    assert second["figures"]["received"] == {"h4": 1, "h2": 0, "h3": 0}
    passed(hops5)
    assert hop_limits(hops5["capture"]["path"], GROUP6) == [5]


def test_multicast_ipv6_leave_acks_interfaces(net6, ansible, tmp_path):
    p, m = net6.p, (lambda node, iface=None: member(net6, node, iface))
    leave, link_scope, wrong_iface, far, bad_join = ansible.run(
        # two senders, acks, h3 leaves after round 1 (MLD report, then MLD done: on h3's wire)
        cast(check6("multicast", "m6-leave", group=GROUP6, port=50011, ttl=1,
                    senders=[m("h1"), m("h4")], members=[m("h2"), m("h3")], silent=[],
                    leave=["h3"], ack=True, payloads=[TEXT, RANDOM],
                    capture={"node": "h3", "interface": "eth0", "netns": net6.ns("h3"),
                             "container": None, "filter": "ip6 dst ff02::16 or udp port 50011"}),
             capture_dir=str(tmp_path)),
        # a link-scope group needs the interface: the router sends out of eth2 only
        cast(check6("multicast", "m6-link-scope", group="ff02::1:5", port=50012, ttl=1,
                    senders=[m("r", "2001:db8:2::fe")], members=[m("f1")], silent=[p("h2")],
                    ack=True, payloads=[JSON])),
        # the router joins on eth2 (segment 2): no member on segment 1
        cast(check6("multicast", "m6-wrong-iface", group=GROUP6, port=50013, ttl=1,
                    senders=[m("h1")], members=[m("h2"), m("r", "2001:db8:2::fe")],
                    payloads=[TEXT])),
        # no multicast routing: f1 beyond the router gets nothing, whatever the hop limit
        cast(check6("multicast", "m6-far", group=GROUP6, port=50014, ttl=8,
                    senders=[m("h1")], members=[m("h2")], silent=[p("f1", join=[GROUP6[:-1] + "7"])],
                    payloads=[TEXT])),
        # 2001:db8:1::99 is no address of h3: it cannot join, and the check says so
        cast(check6("multicast", "m6-bad-join", group=GROUP6, port=50015, ttl=1,
                    senders=[m("h1")], members=[m("h3", "2001:db8:1::99")], payloads=[TEXT])),
    )
    passed(leave)
    f = leave["figures"]
    assert f["received_by_round"] == {"1": {"h2": 4, "h3": 4}, "2": {"h2": 4, "h3": 0}}
    assert f["acks"] == {"h1": 6, "h4": 6} == f["expected_acks"]  # 2 x 2 + 1 x 2 each
    assert leave["details"]["h3"]["member"]["left"] == [GROUP6]
    assert {r["src"] for r in leave["details"]["h2"]["member"]["received"]} == {"2001:db8:1::1",
                                                                                "2001:db8:1::4"}
    rows = leave["capture"]["rows"]
    # MLD goes from the link-local address (RFC 3810 5.2.13) to all MLDv2 routers, after
    # a hop-by-hop header (which is why BPF's "icmp6" does not match it)
    mld = [r for r in rows if r["protocol"] == "MLD" and r["src"].startswith("fe80:")]
    assert mld and all(r["dst"] == "ff02::16" and r["kind"] == "multicast" for r in mld), rows
    assert max(r["time"] for r in mld) > min(r["time"] for r in rows if r["protocol"] == "UDP"), \
        "no MLD report after the first datagram (the leave)"
    passed(link_scope)
    assert link_scope["figures"]["received"] == {"f1": 1, "h2": 0}
    assert link_scope["figures"]["acks"] == {"r": 1}
    assert link_scope["details"]["f1"]["member"]["received"][0]["src"] == "2001:db8:2::fe"
    failed(wrong_iface, "r (member) got 0 of 1 payloads from h1")
    assert wrong_iface["figures"]["received"] == {"h2": 1, "r": 0}
    passed(far)
    assert far["figures"]["received"] == {"h2": 1, "f1": 0}
    failed(bad_join, "h3 (member) got 0 of 1 payloads", "join ff0e::5 on 2001:db8:1::99",
           "no interface has 2001:db8:1::99")


def test_relay_ipv6(net6, ansible):
    """The relay resends to ff02::1 (all nodes) out of the interface that has its address;
    the listeners join ff02::1, so a leak to a silent node would be seen."""
    p = net6.p
    good, unicast_out = ansible.run(
        cast(check6("relay", "r6-all-nodes", sender=p("h1"), relay=p("r"), address="2001:db8:1::fe",
                    port=45101, out_address="ff02::1", out_port=45102, payloads=[TEXT, RANDOM],
                    receivers=[p("h2"), p("h3")], silent=[p("f1")])),
        cast(check6("relay", "r6-unicast", sender=p("h1"), relay=p("r"), address="2001:db8:1::fe",
                    port=45103, out_address="2001:db8:2::1", out_port=45104, payloads=[JSON],
                    receivers=[p("f1")], silent=[p("h2")])),
    )
    passed(good)
    assert good["figures"]["relayed"] == 2
    assert good["figures"]["received"] == {"h2": 2, "h3": 2, "f1": 0}
    assert {(r["src"], r["dst"]) for r in good["details"]["h3"]["receiver"]["received"]} == \
        {("2001:db8:1::fe", "ff02::1")}
    passed(unicast_out)
    assert unicast_out["details"]["f1"]["receiver"]["received"][0]["src"] == "2001:db8:2::fe"


def test_ipv6_checks_that_cannot_run(net6, ansible):
    p = net6.p
    bcast, v4_group, v4_sender, no_family, bad_bind = ansible.run(
        cast(check6("broadcast", "e6-bcast", sender=p("h1"), address="ff02::1", port=46101,
                    payloads=[TEXT], receivers=[p("h2")], silent=[])),
        cast(check6("multicast", "e6-v4-group", group=GROUP, port=46102, senders=[p("h1")],
                    members=[p("h2")], payloads=[TEXT])),
        cast(check6("unicast", "e6-v4-sender", sender=dict(p("h1"), address="198.18.1.1"),
                    receiver=p("h2"), address="2001:db8:1::2", port=46103, payloads=[TEXT])),
        # no family: IPv4, so an IPv6 group is the wrong family
        cast(check("multicast", "e6-no-family", group=GROUP6, port=46104, senders=[p("h1")],
                   members=[p("h2")], payloads=[TEXT])),
        cast(check6("unicast", "e6-bind", sender=dict(p("h1"), address="2001:db8:1::77"),
                    receiver=p("h2"), address="2001:db8:1::2", port=46105, payloads=[TEXT])),
    )
    failed(bcast, "broadcast check e6-bcast: broadcast is IPv4-only; use multicast to ff02::1")
    assert bcast["details"] == {}  # refused before any agent started
    failed(v4_group, "group 239.7.7.7 is not an IPv6 address (the check's family)")
    failed(v4_sender, "sender h1 address 198.18.1.1 is not an IPv6 address")
    failed(no_family, "group ff0e::5 is not an IPv4 address (the check's family when it has none)")
    failed(bad_bind, "h1 (sender): udp socket (bind 2001:db8:1::77", "Cannot assign requested address")
