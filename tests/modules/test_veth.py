"""topo.lab.veth against the real kernel: pairs across namespaces, mtu, mac, master, prune."""


from tests.modules.conftest import (
    ROOT_ONLY, assert_noop, changes, detail, four_steps, links, ok, sh, step, veth_peer,
)

pytestmark = ROOT_ONLY

MAC_H1 = "02:00:00:00:01:01"
MAC_H2 = "02:00:00:00:02:01"


def build(lab):
    """Namespaces h1, h2, lan and the lab's bridge lan/br0, made by hand."""
    h1, h2, lan = lab.make_ns("h1"), lab.make_ns("h2"), lab.make_ns("lan")
    lab.make_bridge(lan, "br0")
    veths = [
        {"a": {"netns": h1, "ifname": "eth0"},
         "b": {"netns": lan, "ifname": "h1-eth0", "master": "br0"}},
        {"a": {"netns": h2, "ifname": "eth0", "mtu": 1400},
         "b": {"netns": lan, "ifname": "h2-eth0", "mtu": 1400, "master": "br0"}},
        {"a": {"netns": h1, "ifname": "eth1", "mtu": 9000, "mac": MAC_H1.upper()},
         "b": {"netns": h2, "ifname": "eth1", "mtu": 9000, "mac": MAC_H2}},
    ]
    return h1, h2, lan, {"lab": lab.name, "veths": veths, "namespaces": [h1, h2, lan]}


def pair_name(a, b):
    return "%s/%s <-> %s/%s" % (a["netns"], a["ifname"], b["netns"], b["ifname"])


def assert_pair(lab, a_ns, a_if, b_ns, b_if, mtu, master_b=None, mac_a=None, mac_b=None):
    """Both ends exist as veths that are each other's peer, with every declared attribute."""
    la, lb = links(a_ns)[a_if], links(b_ns)[b_if]
    for end, mac, master in ((la, mac_a, None), (lb, mac_b, master_b)):
        assert end["kind"] == "veth"
        assert end["mtu"] == mtu
        assert end["up"] is True
        assert end["alias"] == lab.if_marker
        assert end["master"] == master
        if mac:
            assert end["mac"] == mac
    # each end's peer (ifindex in the namespace named by its link-netnsid) is the other
    assert veth_peer(a_ns, a_if) == (b_ns, b_if)
    assert veth_peer(b_ns, b_if) == (a_ns, a_if)


def test_veth_four_steps(lab, ansible):
    h1, h2, lan, params = build(lab)
    v = params["veths"]
    expected = sorted(("create", "veth", pair_name(p["a"], p["b"])) for p in v)

    four_steps(ansible, lab, "veth", params, expected)

    assert_pair(lab, h1, "eth0", lan, "h1-eth0", 1500, master_b="br0")
    assert_pair(lab, h2, "eth0", lan, "h2-eth0", 1400, master_b="br0")
    assert_pair(lab, h1, "eth1", h2, "eth1", 9000, mac_a=MAC_H1, mac_b=MAC_H2)
    assert sorted(links(h1)) == ["eth0", "eth1", "lo"]
    assert sorted(links(h2)) == ["eth0", "eth1", "lo"]
    assert sorted(links(lan)) == ["br0", "h1-eth0", "h2-eth0", "lo"]
    # no end was left in (or made visible in) the root namespace
    assert not [n for n, l in links(None).items() if l["alias"] == lab.if_marker]


def test_veth_drift_prune_and_foreign(lab, ansible):
    h1, h2, lan, full = build(lab)
    ok(ansible.one("veth", full))

    # drift by hand: one end of h1<->h2 deleted (the kernel takes its peer along),
    # a bridge port detached
    sh("ip", "-n", h1, "link", "del", "eth1")
    sh("ip", "-n", lan, "link", "set", "h2-eth0", "nomaster")
    assert "eth1" not in links(h2)
    # veths made by hand without the marker (one with a namespace-style look-alike alias)
    lab.make_veth(h1, "hand0", h2, "hand1", alias=None)
    sh("ip", "-n", h2, "link", "set", "hand1", "alias", "topo:%s:h2" % lab.name)

    reduced = dict(full, veths=full["veths"][1:])  # the h1 <-> lan pair is gone
    check, repair, prune, again = ansible.run(
        step("veth", full, check=True), step("veth", full), step("veth", reduced),
        step("veth", reduced))

    p3 = full["veths"][2]
    expected = sorted([("create", "veth", pair_name(p3["a"], p3["b"])),
                       ("fix", "veth", "%s/h2-eth0" % lan)])
    assert changes(check) == expected
    assert changes(repair) == expected
    assert detail(repair, "create", pair_name(p3["a"], p3["b"])) == ""  # nothing to replace
    assert detail(repair, "fix", "%s/h2-eth0" % lan) == "master None -> br0"
    assert links(lan)["h2-eth0"]["master"] == "br0"
    # removing one end removes the pair: one change, not two
    assert changes(prune) == [("remove", "veth", "%s/eth0" % h1)]
    assert_noop(again)

    assert_pair(lab, h1, "eth1", h2, "eth1", 9000, mac_a=MAC_H1, mac_b=MAC_H2)
    assert_pair(lab, h2, "eth0", lan, "h2-eth0", 1400, master_b="br0")
    assert "eth0" not in links(h1) and "h1-eth0" not in links(lan)
    hand0, hand1 = links(h1)["hand0"], links(h2)["hand1"]
    assert hand0["kind"] == "veth" and hand0["alias"] is None
    assert hand1["alias"] == "topo:%s:h2" % lab.name
    assert veth_peer(h1, "hand0") == (h2, "hand1")


def test_veth_miswired_pair_is_rebuilt(lab, ansible):
    h1, h2, h3, h4 = (lab.make_ns(n) for n in ("h1", "h2", "h3", "h4"))
    # by hand, marked as the lab's but cabled wrong: h1/eth0 <-> h3/p and h2/eth0 <-> h4/q
    lab.make_veth(h1, "eth0", h3, "p")
    lab.make_veth(h2, "eth0", h4, "q")
    pair = {"a": {"netns": h1, "ifname": "eth0"}, "b": {"netns": h2, "ifname": "eth0"}}
    res = ansible.one("veth", {"lab": lab.name, "veths": [pair], "namespaces": [h1, h2]})
    assert changes(res) == [("create", "veth", pair_name(pair["a"], pair["b"]))]
    assert veth_peer(h1, "eth0") == (h2, "eth0")


def test_veth_refuses_to_replace_unmarked_veth(lab, ansible):
    h1, h2 = lab.make_ns("h1"), lab.make_ns("h2")
    lab.make_veth(h1, "eth0", h1, "mine", alias=None)  # someone's own pair, no marker
    pair = {"a": {"netns": h1, "ifname": "eth0"}, "b": {"netns": h2, "ifname": "eth0"}}
    res = ansible.one("veth", {"lab": lab.name, "veths": [pair], "namespaces": [h1, h2]})
    # the unmarked veth and its peer survive
    assert veth_peer(h1, "eth0") == (h1, "mine")
    assert res["failed"] is True and "not made by topo" in res["msg"]
