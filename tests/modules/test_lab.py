"""All modules in the order the apply playbook runs them, on a lab that does not exist yet.

Check mode must predict the whole build even though each module depends on objects
an earlier module would make (namespaces, bridges, interfaces); the build must then
do exactly what was predicted, be idempotent, and forward traffic h1 -> r1 -> h2.
"""

from tests.modules.conftest import (
    ROOT_ONLY, addresses, assert_noop, changes, links, ok, routes, sh, step, sysctl, topo_routes,
    veth_peer,
)

pytestmark = ROOT_ONLY

ORDER = ("netns", "bridge", "veth", "address", "route")


def declare(lab):
    h1, h2, r1, lan = (lab.ns(n) for n in ("h1", "h2", "r1", "lan"))
    names = [h1, h2, r1, lan]
    return {
        "netns": {"lab": lab.name, "namespaces": [
            {"name": h1, "node": "h1"}, {"name": h2, "node": "h2"},
            {"name": r1, "node": "r1", "sysctls": {"net.ipv4.ip_forward": 1}},
            {"name": lan, "node": "lan"}]},
        "bridge": {"lab": lab.name, "namespaces": names,
                   "bridges": [{"netns": lan, "name": "br0"}]},
        "veth": {"lab": lab.name, "namespaces": names, "veths": [
            {"a": {"netns": h1, "ifname": "eth0"},
             "b": {"netns": lan, "ifname": "h1-eth0", "master": "br0"}},
            {"a": {"netns": r1, "ifname": "eth0"},
             "b": {"netns": lan, "ifname": "r1-eth0", "master": "br0"}},
            {"a": {"netns": r1, "ifname": "eth1"}, "b": {"netns": h2, "ifname": "eth0"}}]},
        "address": {"lab": lab.name, "interfaces": [
            {"netns": h1, "ifname": "eth0", "addresses": ["10.1.0.1/24"]},
            {"netns": r1, "ifname": "eth0", "addresses": ["10.1.0.254/24"]},
            {"netns": r1, "ifname": "eth1", "addresses": ["10.2.0.254/24"]},
            {"netns": h2, "ifname": "eth0", "addresses": ["10.2.0.1/24"]}]},
        "route": {"lab": lab.name, "namespaces": names, "routes": [
            {"netns": h1, "routes": [{"dst": "0.0.0.0/0", "gateway": "10.1.0.254"}]},
            {"netns": h2, "routes": [{"dst": "0.0.0.0/0", "gateway": "10.2.0.254"}]}]},
    }


def test_lab_check_predicts_build_then_build_is_idempotent(lab, ansible):
    params = declare(lab)
    h1, h2, r1, lan = (lab.ns(n) for n in ("h1", "h2", "r1", "lan"))

    predicted = ansible.run(*(step(m, params[m], check=True) for m in ORDER))
    assert lab.owned_names() == []
    expected = {
        "netns": sorted(("create", "netns", n) for n in (h1, h2, r1, lan)),
        "bridge": [("create", "bridge", "%s/br0" % lan)],
        "veth": sorted([("create", "veth", "%s/eth0 <-> %s/h1-eth0" % (h1, lan)),
                        ("create", "veth", "%s/eth0 <-> %s/r1-eth0" % (r1, lan)),
                        ("create", "veth", "%s/eth1 <-> %s/eth0" % (r1, h2))]),
        "address": sorted([("create", "address", "%s/eth0" % h1),
                           ("create", "address", "%s/eth0" % r1),
                           ("create", "address", "%s/eth1" % r1),
                           ("create", "address", "%s/eth0" % h2)]),
        "route": sorted([("create", "route", "%s 0.0.0.0/0" % h1),
                         ("create", "route", "%s 0.0.0.0/0" % h2)]),
    }
    for module, res in zip(ORDER, predicted):
        assert changes(res) == expected[module], module

    ping = {"count": 2, "interval": 0.2, "timeout": 1, "targets": [
        {"address": "10.1.0.254", "node": "r1"}, {"address": "10.2.0.1", "node": "h2"}]}
    results = ansible.run(*[step(m, params[m]) for m in ORDER],
                          *[step(m, params[m]) for m in ORDER],
                          step("ping", ping, netns=h1))
    applied, again, pinged = results[:5], results[5:10], results[10]
    for module, res in zip(ORDER, applied):
        assert changes(res) == expected[module], module
    for res in again:
        assert_noop(res)
    ok(pinged)
    assert [r["observed"] for r in pinged["results"]] == ["pass", "pass"]

    assert lab.owned_names() == sorted([h1, h2, lan, r1])
    assert sysctl(r1, "net.ipv4.ip_forward") == "1"
    assert links(lan)["h1-eth0"]["master"] == "br0" and links(lan)["r1-eth0"]["master"] == "br0"
    assert veth_peer(r1, "eth1") == (h2, "eth0")
    assert addresses(h2)["eth0"] == {"10.2.0.1/24": "10.2.0.255"}
    assert topo_routes(h1) == {"0.0.0.0/0": "10.1.0.254"}


def lab_params(params):
    """The same lab as one topo.lab.lab call (what the apply playbook runs)."""
    return {"lab": params["netns"]["lab"], "namespaces": params["netns"]["namespaces"],
            "bridges": params["bridge"]["bridges"], "veths": params["veth"]["veths"],
            "addresses": params["address"]["interfaces"], "routes": params["route"]["routes"]}


def test_lab_module_four_steps_and_same_changes_as_the_five(lab, ansible):
    """topo.lab.lab = the five modules in one process: check, apply, apply, check."""
    params = declare(lab)
    whole = lab_params(params)
    h1, h2, r1, lan = (lab.ns(n) for n in ("h1", "h2", "r1", "lan"))
    check1, apply1, apply2, check2 = ansible.run(step("lab", whole, check=True), step("lab", whole),
                                                 step("lab", whole), step("lab", whole, check=True))
    assert check1["changed"] is True and apply1["changed"] is True
    assert changes(check1) == changes(apply1)
    assert check1["summary"] == {"container": 0, "netns": 4, "bridge": 1, "veth": 3, "tunnel": 0, "impair": 0, "address": 4, "route": 2}
    assert_noop(apply2)
    assert_noop(check2)
    assert veth_peer(h1, "eth0") == (lan, "h1-eth0")
    assert links(lan)["r1-eth0"]["master"] == "br0"
    assert addresses(r1)["eth1"] == {"10.2.0.254/24": "10.2.0.255"}
    assert topo_routes(h2) == {"0.0.0.0/0": "10.2.0.254"}


#: What a dual-stack lab adds to every namespace (the expansion's IPv6 sysctls).
IPV6_SYSCTLS = {"net.ipv6.conf.all.accept_dad": "0", "net.ipv6.conf.default.accept_dad": "0",
                "net.ipv6.conf.all.accept_ra": "0", "net.ipv6.conf.default.accept_ra": "0"}


def declare_dual_stack(lab):
    """:func:`declare`'s lab dual stack, as the expansion gives it: IPv6 beside every IPv4
    address and route, IPv6 forwarding on r1, IPv6 loopbacks."""
    params = declare(lab)
    h1, h2, r1, lan = (lab.ns(n) for n in ("h1", "h2", "r1", "lan"))
    six = {h1: {"eth0": "2001:db8:1::1/64"}, r1: {"eth0": "2001:db8:1::fe/64", "eth1": "2001:db8:2::fe/64"},
           h2: {"eth0": "2001:db8:2::1/64"}}
    for iface in params["address"]["interfaces"]:
        iface["addresses"].append(six[iface["netns"]][iface["ifname"]])
    params["address"]["interfaces"].append({"netns": r1, "ifname": "lo", "addresses": ["2001:db8::1/128"]})
    for ns in params["netns"]["namespaces"]:
        ns["sysctls"] = dict(ns.get("sysctls") or {}, **IPV6_SYSCTLS)
        if ns["node"] == "r1":
            ns["sysctls"]["net.ipv6.conf.all.forwarding"] = "1"
    for item in params["route"]["routes"]:
        gw = {h1: "2001:db8:1::fe", h2: "2001:db8:2::fe"}[item["netns"]]
        item["routes"].append({"dst": "::/0", "gateway": gw})
    return params


def test_lab_dual_stack_four_steps_and_traffic_of_both_families(lab, ansible):
    """A small dual-stack lab through topo.lab.lab: check, apply, apply, check; then every
    address of both families answers from h1 (h2 through r1), read back with ip -j."""
    import json
    whole = lab_params(declare_dual_stack(lab))
    h1, h2, r1, lan = (lab.ns(n) for n in ("h1", "h2", "r1", "lan"))
    check1, apply1, apply2, check2 = ansible.run(step("lab", whole, check=True), step("lab", whole),
                                                 step("lab", whole), step("lab", whole, check=True))
    assert changes(check1) == changes(apply1)
    assert apply1["summary"] == {"container": 0, "netns": 4, "bridge": 1, "veth": 3, "tunnel": 0, "impair": 0,
                                 "address": 9, "route": 4}
    assert_noop(apply2)
    assert_noop(check2)

    def global6(ns):
        return {link["ifname"]: sorted(a["local"] + "/%d" % a["prefixlen"] for a in link["addr_info"]
                                       if a["scope"] == "global")
                for link in json.loads(sh("ip", "-j", "-n", ns, "-6", "addr", "show"))}
    assert global6(r1) == {"lo": ["2001:db8::1/128"], "eth0": ["2001:db8:1::fe/64"],
                           "eth1": ["2001:db8:2::fe/64"]}
    assert global6(h2) == {"lo": [], "eth0": ["2001:db8:2::1/64"]}
    assert topo_routes(h1) == {"0.0.0.0/0": "10.1.0.254"}
    six = [r for r in json.loads(sh("ip", "-j", "-n", h1, "-6", "route", "show")) if r.get("protocol") == "116"]
    assert [(r["dst"], r["gateway"]) for r in six] == [("default", "2001:db8:1::fe")]
    assert sysctl(r1, "net.ipv6.conf.all.forwarding") == "1" and sysctl(h1, "net.ipv6.conf.eth0.accept_dad") == "0"
    for target in ("10.1.0.254", "10.2.0.1", "2001:db8:1::fe", "2001:db8::1", "2001:db8:2::fe", "2001:db8:2::1"):
        out = sh("ip", "netns", "exec", h1, "ping", "-c", "1", "-W", "2", target, check=False)
        assert "1 received" in out, out


def test_lab_drift_left_by_hand_after_an_earlier_run_is_found(lab, ansible):
    """A run reads back less in the namespaces it creates itself (they hold only lo); in
    namespaces an earlier run made, every drift is still found: topo routes (IPv4 and
    IPv6) in namespaces without declared routes (the kernel-filtered dump) and with them,
    extra addresses on interfaces and lo, a wrong broadcast. Routes of other protocols
    and of other tables stay; the re-apply repairs all, then is a no-op."""
    whole = lab_params(declare(lab))
    h1, h2, r1, lan = (lab.ns(n) for n in ("h1", "h2", "r1", "lan"))
    apply1 = ansible.one("lab", whole)
    assert apply1["summary"]["route"] == 2 and apply1["summary"]["address"] == 4

    sh("ip", "-n", r1, "route", "add", "10.80.0.0/24", "via", "10.2.0.1", "proto", "116")
    sh("ip", "-n", r1, "-6", "route", "add", "2001:db8:80::/48", "dev", "eth1", "proto", "116")
    sh("ip", "-n", r1, "route", "add", "10.81.0.0/24", "via", "10.2.0.1", "proto", "116", "table", "100")
    sh("ip", "-n", r1, "route", "add", "10.82.0.0/24", "via", "10.2.0.1")
    sh("ip", "-n", lan, "route", "add", "10.83.0.0/24", "dev", "br0", "proto", "116")
    sh("ip", "-n", h1, "route", "add", "10.84.0.0/24", "via", "10.1.0.254", "proto", "116")
    sh("ip", "-n", h2, "addr", "add", "10.2.0.9/24", "dev", "eth0")
    sh("ip", "-n", h2, "addr", "add", "10.9.9.9/32", "dev", "lo")
    sh("ip", "-n", r1, "addr", "del", "10.1.0.254/24", "dev", "eth0")
    sh("ip", "-n", r1, "addr", "add", "10.1.0.254/24", "broadcast", "10.1.0.250", "dev", "eth0")

    check, repair, again = ansible.run(step("lab", whole, check=True), step("lab", whole), step("lab", whole))
    expected = sorted([("remove", "route", "%s 10.80.0.0/24" % r1), ("remove", "route", "%s 2001:db8:80::/48" % r1),
                       ("remove", "route", "%s 10.83.0.0/24" % lan), ("remove", "route", "%s 10.84.0.0/24" % h1),
                       ("remove", "address", "%s/eth0" % h2), ("fix", "address", "%s/eth0" % r1)])
    assert changes(check) == expected
    assert changes(repair) == expected
    assert_noop(again)
    assert topo_routes(r1) == {} and topo_routes(lan) == {}
    assert topo_routes(h1) == {"0.0.0.0/0": "10.1.0.254"}
    assert [r["dst"] for r in routes(r1, table="100")] == ["10.81.0.0/24"]
    assert [r for r in routes(r1) if r["dst"] == "10.82.0.0/24"]
    assert addresses(h2)["eth0"] == {"10.2.0.1/24": "10.2.0.255"}
    assert addresses(r1)["eth0"] == {"10.1.0.254/24": "10.1.0.255"}
    # lo is not declared in h2: its addresses are not topo's to change
    assert "10.9.9.9/32" in addresses(h2)["lo"]


def test_lab_grows_by_a_namespace_next_to_one_made_outside_topo(lab, ansible):
    """A later run creates a namespace next to existing ones: the new one is read as fresh,
    the old ones in full. A namespace under a declared name that topo did not make is
    refused, and nothing is created in it."""
    whole = lab_params(declare(lab))
    h1, h2, r1, lan = (lab.ns(n) for n in ("h1", "h2", "r1", "lan"))
    small = dict(whole, namespaces=[ns for ns in whole["namespaces"] if ns["name"] != h2],
                 veths=whole["veths"][:2], addresses=whole["addresses"][:2], routes=whole["routes"][:1])
    ok(ansible.one("lab", small))
    sh("ip", "-n", h1, "route", "add", "10.84.0.0/24", "via", "10.1.0.254", "proto", "116")
    grown = ansible.one("lab", whole)
    assert changes(grown) == sorted([
        ("create", "netns", h2), ("create", "veth", "%s/eth1 <-> %s/eth0" % (r1, h2)),
        ("create", "address", "%s/eth1" % r1), ("create", "address", "%s/eth0" % h2),
        ("create", "route", "%s 0.0.0.0/0" % h2), ("remove", "route", "%s 10.84.0.0/24" % h1)])
    assert_noop(ansible.one("lab", whole))
    assert topo_routes(h2) == {"0.0.0.0/0": "10.2.0.254"}

    other = lab.make_ns("h3", alias=None)
    refused = ansible.one("lab", dict(whole, namespaces=whole["namespaces"] + [{"name": other, "node": "h3"}],
                                      addresses=whole["addresses"] + [{"netns": other, "ifname": "lo",
                                                                       "addresses": ["10.9.0.3/32"]}]))
    assert refused.get("failed") and "was not made by topo" in refused["msg"]
    assert "10.9.0.3/32" not in addresses(other).get("lo", {})
