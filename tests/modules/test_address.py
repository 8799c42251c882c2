"""topo.lab.address against the real kernel: IPv4 addresses, prefix length, broadcast; IPv6
addresses with nodad beside the kernel's own (link-local, autoconfigured), drift, disabled IPv6."""


from tests.modules.conftest import (
    ROOT_ONLY, addresses, assert_noop, four_steps, ip_json, ok, sh, step,
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


# --------------------------------------------------------------------------
# IPv6 (and both families on one interface)
# --------------------------------------------------------------------------

def addresses6(ns):
    """{ifname: {cidr: flags}} of every IPv6 address in ``ns`` (link-local ones too), read
    with ``ip -j -6 addr``; flags is the sorted list of the ones iproute2 prints (nodad,
    tentative, dadfailed, ...), with ``scope`` and ``dynamic`` (a finite lifetime) added."""
    out = {}
    for link in ip_json(ns, "-6", "addr", "show"):
        for a in link.get("addr_info", []):
            flags = sorted(k for k in ("nodad", "tentative", "dadfailed", "optimistic", "deprecated") if a.get(k))
            flags.append("scope " + a["scope"])
            if a.get("valid_life_time", 4294967295) != 4294967295:
                flags.append("dynamic")
            out.setdefault(link["ifname"], {})["%s/%d" % (a["local"], a["prefixlen"])] = flags
    return out


def global6(ns, ifname):
    """{cidr: flags} of ``ifname``'s IPv6 addresses but the link-local ones."""
    return {c: f for c, f in addresses6(ns).get(ifname, {}).items() if "scope link" not in f}


def link_local(ns, ifname):
    return [c for c, f in addresses6(ns).get(ifname, {}).items() if "scope link" in f]


def ping6(ns, target):
    """ping -6 once from ``ns``; the output (raises when no reply came)."""
    return sh("ip", "netns", "exec", ns, "ping", "-6", "-c", "1", "-W", "2", target)


def test_address_ipv6_four_steps_nodad_and_traffic(lab, ansible):
    h1, h2 = build(lab)
    params = {"lab": lab.name, "interfaces": [
        {"netns": h1, "ifname": "eth0", "addresses": ["10.1.0.1/24", "2001:db8:1::1/64"]},
        # upper case and a zero run spelled out: the kernel's form is compared
        {"netns": h1, "ifname": "lo", "addresses": ["2001:DB8:0:0::1/128", "10.255.0.1/32"]},
        {"netns": h2, "ifname": "eth0", "addresses": ["2001:db8:1::2/64"]},
    ]}
    expected = sorted([("create", "%s/eth0" % h1, "10.1.0.1/24"),
                       ("create", "%s/eth0" % h1, "2001:db8:1::1/64"),
                       ("create", "%s/lo" % h1, "2001:db8::1/128"),
                       ("create", "%s/lo" % h1, "10.255.0.1/32"),
                       ("create", "%s/eth0" % h2, "2001:db8:1::2/64")])

    def no_ipv6_made():  # the shared snapshot reads IPv4 only
        assert global6(h1, "eth0") == {} and global6(h2, "eth0") == {}

    four_steps(ansible, lab, "address", params, expected, summarize=addr_changes, after_check=no_ipv6_made)

    # usable at once: nodad, never tentative; the kernel's link-local addresses and ::1 stay
    assert global6(h1, "eth0") == {"2001:db8:1::1/64": ["nodad", "scope global"]}
    assert global6(h2, "eth0") == {"2001:db8:1::2/64": ["nodad", "scope global"]}
    assert global6(h1, "lo") == {"::1/128": ["scope host"], "2001:db8::1/128": ["nodad", "scope global"]}
    assert len(link_local(h1, "eth0")) == 1 and len(link_local(h2, "eth0")) == 1
    assert addresses(h1)["eth0"] == {"10.1.0.1/24": "10.1.0.255"}
    assert "1 received" in ping6(h1, "2001:db8:1::2")


def test_address_ipv6_drift_repaired_and_kernel_addresses_kept(lab, ansible):
    h1, h2 = build(lab)
    params = {"lab": lab.name, "interfaces": [
        {"netns": h1, "ifname": "eth0", "addresses": ["10.1.0.1/24", "2001:db8:1::1/64", "2001:db8:2::1/64"]},
        {"netns": h2, "ifname": "eth0", "addresses": ["2001:db8:1::2/64"]},
    ]}
    ok(ansible.one("address", params))
    ll_h2 = link_local(h2, "eth0")

    # by hand: h2's address changed; h1's 2001:db8:1::1 re-added without nodad (DAD runs);
    # an address with a finite lifetime, as autoconfiguration makes them (the kernel's, kept);
    # an address on an undeclared interface (kept)
    sh("ip", "-n", h2, "addr", "del", "2001:db8:1::2/64", "dev", "eth0")
    sh("ip", "-n", h2, "addr", "add", "2001:db8:1::9/64", "dev", "eth0", "nodad")
    # (nodad so that the kernel's DAD does not make the address read back as tentative at the end)
    sh("ip", "-n", h2, "addr", "add", "2001:db8:9::5/64", "dev", "eth0", "nodad",
       "valid_lft", "600", "preferred_lft", "600")
    sh("ip", "-n", h2, "addr", "add", "2001:db8:ff::9/128", "dev", "lo")
    sh("ip", "-n", h1, "addr", "del", "2001:db8:1::1/64", "dev", "eth0")
    sh("ip", "-n", h1, "addr", "add", "2001:db8:1::1/64", "dev", "eth0")
    # the declaration of h1/eth0 changes: 2001:db8:2::1/64 dropped, 2001:db8:3::1/64 added
    edited = {"lab": lab.name, "interfaces": [
        {"netns": h1, "ifname": "eth0", "addresses": ["10.1.0.1/24", "2001:db8:1::1/64", "2001:db8:3::1/64"]},
        params["interfaces"][1],
    ]}

    check, repair, edit, again = ansible.run(
        step("address", params, check=True), step("address", params), step("address", edited),
        step("address", edited))
    expected = sorted([("create", "%s/eth0" % h2, "2001:db8:1::2/64"),
                       ("remove", "%s/eth0" % h2, "2001:db8:1::9/64")])
    for result in (check, repair):
        got = addr_changes(result)
        fixes = [c for c in got if c[0] == "fix"]
        assert [c for c in got if c[0] != "fix"] == expected
        # DAD of the hand-made address is running or done by now: either way not nodad
        assert len(fixes) == 1 and fixes[0][1] == "%s/eth0" % h1, got
        assert fixes[0][2] in ("2001:db8:1::1/64 dad tentative -> nodad", "2001:db8:1::1/64 dad done -> nodad")
    assert addr_changes(edit) == sorted([("remove", "%s/eth0" % h1, "2001:db8:2::1/64"),
                                         ("create", "%s/eth0" % h1, "2001:db8:3::1/64")])
    assert_noop(again)

    assert global6(h1, "eth0") == {"2001:db8:1::1/64": ["nodad", "scope global"],
                                   "2001:db8:3::1/64": ["nodad", "scope global"]}
    assert global6(h2, "eth0") == {"2001:db8:1::2/64": ["nodad", "scope global"],
                                   "2001:db8:9::5/64": ["nodad", "scope global", "dynamic"]}
    assert "2001:db8:ff::9/128" in global6(h2, "lo")
    assert link_local(h2, "eth0") == ll_h2
    assert addresses(h1)["eth0"] == {"10.1.0.1/24": "10.1.0.255"}
    assert "1 received" in ping6(h2, "2001:db8:1::1")


def test_address_ipv6_on_an_interface_with_ipv6_disabled(lab, ansible):
    """Docker leaves a container's interfaces with disable_ipv6=1: the module turns IPv6 on
    before adding an IPv6 address, and the kernel's link-local address appears."""
    h1, h2 = build(lab)
    sh("ip", "netns", "exec", h1, "sysctl", "-qw", "net.ipv6.conf.eth0.disable_ipv6=1")
    assert global6(h1, "eth0") == {} and link_local(h1, "eth0") == []
    params = {"lab": lab.name, "interfaces": [
        {"netns": h1, "ifname": "eth0", "addresses": ["2001:db8:1::1/64"]},
        {"netns": h2, "ifname": "eth0", "addresses": ["2001:db8:1::2/64"]}]}
    four_steps(ansible, lab, "address", params,
               [("create", "%s/eth0" % h1, "2001:db8:1::1/64"), ("create", "%s/eth0" % h2, "2001:db8:1::2/64")],
               summarize=addr_changes)
    assert sh("ip", "netns", "exec", h1, "sysctl", "-n", "net.ipv6.conf.eth0.disable_ipv6").strip() == "0"
    assert global6(h1, "eth0") == {"2001:db8:1::1/64": ["nodad", "scope global"]}
    assert len(link_local(h1, "eth0")) == 1
    assert "1 received" in ping6(h2, "2001:db8:1::1")


def test_address_link_local_declared_is_refused(lab, ansible):
    h1, _ = build(lab)
    res = ansible.one("address", {"lab": lab.name, "interfaces": [
        {"netns": h1, "ifname": "eth0", "addresses": ["10.1.0.1/24", "fe80::1/64"]}]})
    assert res.get("failed") and "fe80::1/64 is an IPv6 link-local address" in res["msg"], res
    assert "eth0" not in addresses(h1) and global6(h1, "eth0") == {}
