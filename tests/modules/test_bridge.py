"""topo.lab.bridge against the real kernel: kind, mtu, up, alias, IGMP snooping/querier."""

from tests.modules.conftest import (
    ROOT_ONLY, assert_noop, changes, detail, four_steps, links, ok, sh, step,
)

pytestmark = ROOT_ONLY


def test_bridge_four_steps(lab, ansible):
    lan, sw = lab.make_ns("lan"), lab.make_ns("sw")
    params = {"lab": lab.name, "namespaces": [lan, sw], "bridges": [
        {"netns": lan, "name": "br0", "mtu": 9000, "mcast_querier": True},
        {"netns": lan, "name": "br1", "mcast_snooping": False},
        {"netns": sw, "name": "br0"},
    ]}
    expected = sorted([("create", "bridge", "%s/br0" % lan), ("create", "bridge", "%s/br1" % lan),
                       ("create", "bridge", "%s/br0" % sw)])

    def check_nothing_made():
        assert sorted(links(lan)) == ["lo"]

    four_steps(ansible, lab, "bridge", params, expected,
               after_check=check_nothing_made)

    have = links(lan)
    assert sorted(have) == ["br0", "br1", "lo"]
    br0, br1 = have["br0"], have["br1"]
    assert (br0["kind"], br0["mtu"], br0["up"], br0["alias"]) == ("bridge", 9000, True, lab.if_marker)
    assert (br0["mcast_snooping"], br0["mcast_querier"]) == (1, 1)
    assert (br1["kind"], br1["mtu"], br1["up"], br1["alias"]) == ("bridge", 1500, True, lab.if_marker)
    assert (br1["mcast_snooping"], br1["mcast_querier"]) == (0, 0)
    sw0 = links(sw)["br0"]
    assert (sw0["kind"], sw0["up"], sw0["alias"]) == ("bridge", True, lab.if_marker)
    assert (sw0["mcast_snooping"], sw0["mcast_querier"]) == (1, 0)


def test_bridge_drift_prune_and_foreign(lab, ansible):
    lan = lab.make_ns("lan")
    full = {"lab": lab.name, "namespaces": [lan], "bridges": [
        {"netns": lan, "name": "br0", "mcast_querier": True},
        {"netns": lan, "name": "br1"},
        {"netns": lan, "name": "br2"},
    ]}
    reduced = dict(full, bridges=full["bridges"][:2])
    ok(ansible.one("bridge", full))

    # made by hand, not topo's: a bridge without alias, one with a look-alike alias,
    # and a veth named like a bridge the lab will declare
    lab.make_bridge(lan, "brhand", alias=None)
    lab.make_bridge(lan, "brlook", alias="topo:%sx" % lab.name)
    lab.make_veth(lan, "brveth", lan, "brveth-p", alias=None)
    # drift: querier flipped by hand
    sh("ip", "-n", lan, "link", "set", "br0", "type", "bridge", "mcast_querier", "0")
    assert links(lan)["br0"]["mcast_querier"] == 0

    with_foreign = dict(reduced, bridges=reduced["bridges"] + [{"netns": lan, "name": "brveth"}])
    check, fix, prune, again, refused = ansible.run(
        step("bridge", full, check=True), step("bridge", full), step("bridge", reduced),
        step("bridge", reduced), step("bridge", with_foreign))

    assert changes(check) == [("fix", "bridge", "%s/br0" % lan)]
    assert changes(fix) == [("fix", "bridge", "%s/br0" % lan)]
    assert detail(fix, "fix", "%s/br0" % lan) == "mcast_querier 0 -> 1"
    assert changes(prune) == [("remove", "bridge", "%s/br2" % lan)]
    assert_noop(again)
    assert refused["failed"] is True
    assert "not made by topo" in refused["msg"] and "brveth" in refused["msg"]

    have = links(lan)
    assert have["br0"]["mcast_querier"] == 1
    assert "br2" not in have
    assert {"br0", "br1", "brhand", "brlook", "brveth", "brveth-p"} <= set(have)
    assert have["brhand"]["alias"] is None and have["brhand"]["kind"] == "bridge"
    assert have["brlook"]["alias"] == "topo:%sx" % lab.name
    assert have["brveth"]["kind"] == "veth" and have["brveth"]["alias"] is None
