"""topo.lab.link against the real kernel: an interface of the lab set down and up in four
steps, read back with ``ip -j``; the peer loses its carrier; a missing, a foreign and a
twice-listed interface are refused."""

from tests.modules.conftest import ROOT_ONLY, ip_json, four_steps, ok, sh, step

pytestmark = ROOT_ONLY


def flags(ns, ifname):
    """(admin up, operstate) of one interface, from ``ip -j link show``."""
    (link,) = ip_json(ns, "link", "show", "dev", ifname)
    return "UP" in link["flags"], link["operstate"]


def params(lab, state, ns, ifname="e0"):
    return {"lab": lab.name, "links": [{"netns": ns, "ifname": ifname, "state": state}]}


def test_down_and_up_four_steps(lab, ansible):
    a, b = lab.make_ns("a"), lab.make_ns("b")
    lab.make_veth(a, "e0", b, "e0")
    expected = [("fix", "link", "%s/e0" % a)]
    res = four_steps(ansible, lab, "link", params(lab, "down", a), expected)
    assert res["changes"][0]["detail"] == "up -> down"
    assert flags(a, "e0") == (False, "DOWN")
    assert flags(b, "e0")[0] is True and flags(b, "e0")[1] in ("LOWERLAYERDOWN", "DOWN")  # no carrier
    res = four_steps(ansible, lab, "link", params(lab, "up", a), expected)
    assert res["changes"][0]["detail"] == "down -> up"
    assert flags(a, "e0")[0] is True
    assert flags(b, "e0") == (True, "UP")


def test_refused(lab, ansible):
    a, b = lab.make_ns("a"), lab.make_ns("b")
    lab.make_veth(a, "e0", b, "e0")
    lab.make_veth(a, "mine", b, "mine", alias=None)
    missing, foreign, twice = ansible.run(
        step("link", params(lab, "down", a, "nope")),
        step("link", params(lab, "down", a, "mine")),
        step("link", {"lab": lab.name, "links": [{"netns": a, "ifname": "e0", "state": "down"},
                                                 {"netns": a, "ifname": "e0", "state": "up"}]}))
    assert missing["failed"] and "%s/nope does not exist" % a in missing["msg"]
    assert foreign["failed"] and "not made by topo" in foreign["msg"]
    assert twice["failed"] and "given twice" in twice["msg"]
    assert flags(a, "mine")[0] is True and flags(a, "e0")[0] is True
    ok(ansible.one("link", params(lab, "up", a)))
