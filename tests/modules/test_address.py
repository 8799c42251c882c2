"""topo.lab.address against the real kernel: IPv4 addresses, prefix length, broadcast."""


from tests.modules.conftest import (
    ROOT_ONLY, addresses, assert_noop, four_steps, ok, sh, step,
)

pytestmark = ROOT_ONLY


def build(lab):
    """Namespaces h1, h2 joined by a veth pair h1/eth0 <-> h2/eth0, made by hand."""
    h1, h2 = lab.make_ns("h1"), lab.make_ns("h2")
    lab.make_veth(h1, "eth0", h2, "eth0")
    return h1, h2


def addr_changes(result):
    """Sorted (action, interface, address) of a successful step."""
    ok(result)
    assert all(c["resource"] == "address" for c in result["changes"])
    return sorted((c["action"], c["name"], c["detail"]) for c in result["changes"])


def test_address_four_steps(lab, ansible):
    h1, h2 = build(lab)
    params = {"lab": lab.name, "interfaces": [
        {"netns": h1, "ifname": "eth0", "addresses": ["10.1.0.1/24", "10.2.0.1/30", "10.3.0.1/31"]},
        {"netns": h1, "ifname": "lo", "addresses": ["10.255.0.1/32"]},
        {"netns": h2, "ifname": "eth0", "addresses": ["10.1.0.2/24"]},
    ]}
    expected = sorted([("create", "%s/eth0" % h1, "10.1.0.1/24"),
                       ("create", "%s/eth0" % h1, "10.2.0.1/30"),
                       ("create", "%s/eth0" % h1, "10.3.0.1/31"),
                       ("create", "%s/lo" % h1, "10.255.0.1/32"),
                       ("create", "%s/eth0" % h2, "10.1.0.2/24")])

    four_steps(ansible, lab, "address", params, expected, summarize=addr_changes)

    # prefix lengths and broadcasts (brd + below /31, none for /31 and /32);
    # the loopback keeps 127.0.0.1/8
    assert addresses(h1) == {
        "lo": {"127.0.0.1/8": None, "10.255.0.1/32": None},
        "eth0": {"10.1.0.1/24": "10.1.0.255", "10.2.0.1/30": "10.2.0.3", "10.3.0.1/31": None},
    }
    assert addresses(h2) == {"lo": {"127.0.0.1/8": None}, "eth0": {"10.1.0.2/24": "10.1.0.255"}}


def test_address_drift_and_declared_change(lab, ansible):
    h1, h2 = build(lab)
    params = {"lab": lab.name, "interfaces": [
        {"netns": h1, "ifname": "eth0", "addresses": ["10.1.0.1/24", "10.2.0.1/30", "10.3.0.1/31"]},
        {"netns": h2, "ifname": "eth0", "addresses": ["10.1.0.2/24"]},
    ]}
    ok(ansible.one("address", params))

    # by hand: h2/eth0's address changed; an address on an undeclared interface
    sh("ip", "-n", h2, "addr", "del", "10.1.0.2/24", "dev", "eth0")
    sh("ip", "-n", h2, "addr", "add", "10.1.0.9/24", "brd", "+", "dev", "eth0")
    sh("ip", "-n", h2, "addr", "add", "10.254.0.9/32", "dev", "lo")
    # the declaration of h1/eth0 changes: a prefix length, and one address dropped
    edited = {"lab": lab.name, "interfaces": [
        {"netns": h1, "ifname": "eth0", "addresses": ["10.1.0.1/24", "10.2.0.1/29"]},
        params["interfaces"][1],
    ]}

    check, repair, edit, again = ansible.run(
        step("address", params, check=True), step("address", params), step("address", edited),
        step("address", edited))
    expected = [("create", "%s/eth0" % h2, "10.1.0.2/24"), ("remove", "%s/eth0" % h2, "10.1.0.9/24")]
    assert addr_changes(check) == expected
    assert addr_changes(repair) == expected
    assert addr_changes(edit) == sorted([("remove", "%s/eth0" % h1, "10.2.0.1/30"),
                                         ("remove", "%s/eth0" % h1, "10.3.0.1/31"),
                                         ("create", "%s/eth0" % h1, "10.2.0.1/29")])
    assert_noop(again)

    assert addresses(h2) == {"lo": {"127.0.0.1/8": None, "10.254.0.9/32": None},
                             "eth0": {"10.1.0.2/24": "10.1.0.255"}}
    assert addresses(h1) == {"lo": {"127.0.0.1/8": None},
                             "eth0": {"10.1.0.1/24": "10.1.0.255", "10.2.0.1/29": "10.2.0.7"}}


def test_address_dropping_primary_keeps_wanted_secondary(lab, ansible):
    h1, _ = build(lab)
    two = {"lab": lab.name, "interfaces": [
        {"netns": h1, "ifname": "eth0", "addresses": ["10.1.0.1/24", "10.1.0.2/24"]}]}
    one = {"lab": lab.name, "interfaces": [
        {"netns": h1, "ifname": "eth0", "addresses": ["10.1.0.2/24"]}]}
    first, edit, again = ansible.run(step("address", two), step("address", one),
                                     step("address", one))
    ok(first)
    assert [(c["action"], c["detail"]) for c in edit["changes"]] == [("remove", "10.1.0.1/24")]
    # with the bug, the edit left eth0 without any address and this run adds 10.1.0.2/24 back
    assert_noop(again)
    assert addresses(h1)["eth0"] == {"10.1.0.2/24": "10.1.0.255"}


def test_address_missing_broadcast_is_repaired(lab, ansible):
    h1, _ = build(lab)
    sh("ip", "-n", h1, "addr", "add", "10.1.0.1/24", "dev", "eth0")  # no brd
    res = ansible.one("address", {"lab": lab.name, "interfaces": [
        {"netns": h1, "ifname": "eth0", "addresses": ["10.1.0.1/24"]}]})
    ok(res)
    assert addresses(h1)["eth0"] == {"10.1.0.1/24": "10.1.0.255"}
    assert res["changed"] is True
