"""topo.lab.route against the real kernel: static IPv4 and IPv6 routes with protocol 116, gateway
fix, prune, foreign routes."""

from tests.modules.conftest import (
    ROOT_ONLY, ROUTE_PROTO, assert_noop, changes, detail, four_steps, ip_json, ok, routes, sh, step,
    topo_routes,
)

pytestmark = ROOT_ONLY


def build(lab):
    """h1 (10.1.0.1/24) and r1 (10.1.0.254/24) on a veth, made by hand."""
    h1, r1 = lab.make_ns("h1"), lab.make_ns("r1")
    lab.make_veth(h1, "eth0", r1, "eth0")
    sh("ip", "-n", h1, "addr", "add", "10.1.0.1/24", "brd", "+", "dev", "eth0")
    sh("ip", "-n", r1, "addr", "add", "10.1.0.254/24", "brd", "+", "dev", "eth0")
    params = {"lab": lab.name, "namespaces": [h1, r1], "routes": [
        {"netns": h1, "routes": [{"dst": "0.0.0.0/0", "gateway": "10.1.0.254"},
                                 {"dst": "10.50.0.0/16", "gateway": "10.1.0.254"}]},
        {"netns": r1, "routes": [{"dst": "10.60.0.0/24", "gateway": "10.1.0.1"},
                                 {"dst": "0.0.0.0/0", "gateway": "10.1.0.1"}]},
    ]}
    return h1, r1, params


def route_of(ns, dst):
    found = [r for r in routes(ns) if r["dst"] == dst]
    assert len(found) == 1, (dst, routes(ns))
    return found[0]


def test_route_four_steps(lab, ansible):
    h1, r1, params = build(lab)
    expected = sorted([("create", "route", "%s 0.0.0.0/0" % h1),
                       ("create", "route", "%s 10.50.0.0/16" % h1),
                       ("create", "route", "%s 10.60.0.0/24" % r1),
                       ("create", "route", "%s 0.0.0.0/0" % r1)])

    def check_nothing_made():
        assert topo_routes(h1) == {} and topo_routes(r1) == {}

    apply = four_steps(ansible, lab, "route", params, expected,
                       after_check=check_nothing_made)
    assert detail(apply, "create", "%s 0.0.0.0/0" % h1) == "via 10.1.0.254"

    assert topo_routes(h1) == {"0.0.0.0/0": "10.1.0.254", "10.50.0.0/16": "10.1.0.254"}
    assert topo_routes(r1) == {"10.60.0.0/24": "10.1.0.1", "0.0.0.0/0": "10.1.0.1"}
    for ns, dst in ((h1, "0.0.0.0/0"), (h1, "10.50.0.0/16"), (r1, "10.60.0.0/24"),
                    (r1, "0.0.0.0/0")):
        r = route_of(ns, dst)
        assert r["protocol"] == str(ROUTE_PROTO) and r["dev"] == "eth0", r
    # the kernel's connected route is still there, untouched
    assert route_of(h1, "10.1.0.0/24")["protocol"] == "kernel"


def test_route_drift_prune_and_foreign(lab, ansible):
    h1, r1, full = build(lab)
    ok(ansible.one("route", full))

    # drift: the gateway of a topo route changed by hand (still marked 116)
    sh("ip", "-n", h1, "route", "replace", "10.50.0.0/16", "via", "10.1.0.253", "proto", ROUTE_PROTO)
    # routes made by hand, not topo's: default protocol, and a look-alike protocol number
    sh("ip", "-n", h1, "route", "add", "10.70.0.0/24", "via", "10.1.0.254")
    sh("ip", "-n", h1, "route", "add", "10.72.0.0/24", "via", "10.1.0.254", "proto", "117")
    sh("ip", "-n", r1, "route", "add", "10.71.0.0/24", "via", "10.1.0.1")

    # the edit: h1 loses 10.50.0.0/16; r1 stays in namespaces but has no routes any more,
    # so both of its topo routes (the default one too) go
    reduced = dict(full, routes=[{"netns": h1, "routes": full["routes"][0]["routes"][:1]}])
    check, repair, prune, again = ansible.run(
        step("route", full, check=True), step("route", full), step("route", reduced),
        step("route", reduced))

    assert changes(check) == [("fix", "route", "%s 10.50.0.0/16" % h1)]
    assert changes(repair) == [("fix", "route", "%s 10.50.0.0/16" % h1)]
    assert detail(repair, "fix", "%s 10.50.0.0/16" % h1) == "via 10.1.0.253 -> 10.1.0.254"
    assert changes(prune) == sorted([("remove", "route", "%s 10.50.0.0/16" % h1),
                                     ("remove", "route", "%s 10.60.0.0/24" % r1),
                                     ("remove", "route", "%s 0.0.0.0/0" % r1)])
    assert_noop(again)

    assert topo_routes(h1) == {"0.0.0.0/0": "10.1.0.254"}
    assert topo_routes(r1) == {}
    assert not [r for r in routes(r1) if r["dst"] == "0.0.0.0/0"]
    assert route_of(h1, "10.70.0.0/24")["gateway"] == "10.1.0.254"
    assert route_of(h1, "10.70.0.0/24")["protocol"] == "boot"
    assert route_of(h1, "10.72.0.0/24")["protocol"] == "117"
    assert route_of(r1, "10.71.0.0/24")["gateway"] == "10.1.0.1"
    assert not [r for r in routes(h1) if r["dst"] == "10.50.0.0/16"]


def test_route_prune_option(lab, ansible):
    """prune=false leaves topo's undeclared routes in place; prune=true (the default) removes
    them, in the four steps, with routes of other protocols untouched."""
    h1, r1, full = build(lab)
    ok(ansible.one("route", full))
    sh("ip", "-n", r1, "route", "add", "10.71.0.0/24", "via", "10.1.0.1")  # not topo's
    # h1 keeps its default route and gains 10.80.0.0/24; 10.50.0.0/16 and r1's two routes
    # are no longer declared
    edited = dict(full, routes=[{"netns": h1, "routes": full["routes"][0]["routes"][:1]
                                 + [{"dst": "10.80.0.0/24", "gateway": "10.1.0.254"}]}])

    four_steps(ansible, lab, "route", dict(edited, prune=False),
               [("create", "route", "%s 10.80.0.0/24" % h1)])
    assert topo_routes(h1) == {"0.0.0.0/0": "10.1.0.254", "10.50.0.0/16": "10.1.0.254",
                               "10.80.0.0/24": "10.1.0.254"}
    assert topo_routes(r1) == {"10.60.0.0/24": "10.1.0.1", "0.0.0.0/0": "10.1.0.1"}

    def nothing_removed():
        assert topo_routes(r1) == {"10.60.0.0/24": "10.1.0.1", "0.0.0.0/0": "10.1.0.1"}

    pruned = four_steps(ansible, lab, "route", edited,
                        sorted([("remove", "route", "%s 10.50.0.0/16" % h1),
                                ("remove", "route", "%s 10.60.0.0/24" % r1),
                                ("remove", "route", "%s 0.0.0.0/0" % r1)]),
                        after_check=nothing_removed)
    assert detail(pruned, "remove", "%s 10.60.0.0/24" % r1) == "via 10.1.0.1"
    assert topo_routes(h1) == {"0.0.0.0/0": "10.1.0.254", "10.80.0.0/24": "10.1.0.254"}
    assert topo_routes(r1) == {}
    assert route_of(r1, "10.71.0.0/24")["protocol"] == "boot"
    assert route_of(h1, "10.1.0.0/24")["protocol"] == "kernel"


# --------------------------------------------------------------------------
# IPv6 routes (in one list with IPv4 ones, as the expansion gives them)
# --------------------------------------------------------------------------

def routes6(ns):
    """[{dst, gateway, dev, protocol}] of the IPv6 routes of ``ns``'s main table (``ip -j -6``)."""
    return [{"dst": "::/0" if r["dst"] == "default" else r["dst"], "gateway": r.get("gateway"),
             "dev": r.get("dev"), "protocol": str(r.get("protocol", "boot"))}
            for r in ip_json(ns, "-6", "route", "show", "table", "main")]


def topo_routes6(ns):
    """{dst: gateway} of the IPv6 routes with topo's protocol number (116)."""
    return {r["dst"]: r["gateway"] for r in routes6(ns) if r["protocol"] == str(ROUTE_PROTO)}


def build6(lab):
    """h1 (10.1.0.1/24, 2001:db8:1::1/64) and r1 (10.1.0.254/24, 2001:db8:1::fe/64) on a veth,
    made by hand, with routes of both families declared."""
    h1, r1, _ = build(lab)
    sh("ip", "-n", h1, "addr", "add", "2001:db8:1::1/64", "dev", "eth0", "nodad")
    sh("ip", "-n", r1, "addr", "add", "2001:db8:1::fe/64", "dev", "eth0", "nodad")
    params = {"lab": lab.name, "namespaces": [h1, r1], "routes": [
        {"netns": h1, "routes": [{"dst": "0.0.0.0/0", "gateway": "10.1.0.254"},
                                 {"dst": "2001:db8:50::/48", "gateway": "2001:db8:1::fe"},
                                 {"dst": "::/0", "gateway": "2001:db8:1::fe"}]},
        {"netns": r1, "routes": [{"dst": "2001:DB8:60:0::/64", "gateway": "2001:db8:1:0::1"}]},
    ]}
    return h1, r1, params


def test_route_ipv6_four_steps_and_traffic(lab, ansible):
    h1, r1, params = build6(lab)
    expected = sorted([("create", "route", "%s 0.0.0.0/0" % h1),
                       ("create", "route", "%s 2001:db8:50::/48" % h1),
                       ("create", "route", "%s ::/0" % h1),
                       ("create", "route", "%s 2001:db8:60::/64" % r1)])

    def nothing_made():  # the shared snapshot reads IPv4 only
        assert topo_routes6(h1) == {} and topo_routes6(r1) == {}

    apply = four_steps(ansible, lab, "route", params, expected, after_check=nothing_made)
    assert detail(apply, "create", "%s ::/0" % h1) == "via 2001:db8:1::fe"

    assert topo_routes(h1) == {"0.0.0.0/0": "10.1.0.254"}
    assert topo_routes6(h1) == {"2001:db8:50::/48": "2001:db8:1::fe", "::/0": "2001:db8:1::fe"}
    assert topo_routes6(r1) == {"2001:db8:60::/64": "2001:db8:1::1"}
    assert all(r["dev"] == "eth0" for r in routes6(h1) if r["protocol"] == str(ROUTE_PROTO))
    # the kernel's connected and link-local routes are still there, untouched
    kernel = {r["dst"] for r in routes6(h1) if r["protocol"] == "kernel"}
    assert {"2001:db8:1::/64", "fe80::/64"} <= kernel
    # traffic takes the routes: h1 reaches an address of r1's beyond its connected subnet
    sh("ip", "-n", r1, "addr", "add", "2001:db8:50::fe/128", "dev", "lo")
    assert "1 received" in sh("ip", "netns", "exec", h1, "ping", "-6", "-c", "1", "-W", "2", "2001:db8:50::fe")


def test_route_ipv6_drift_prune_foreign_and_families(lab, ansible):
    h1, r1, full = build6(lab)
    ok(ansible.one("route", full))

    # drift: an IPv6 topo route's gateway changed by hand (still marked 116)
    sh("ip", "-n", h1, "-6", "route", "replace", "2001:db8:50::/48", "via", "2001:db8:1::fd", "proto", ROUTE_PROTO)
    # an IPv6 route made by hand, not topo's
    sh("ip", "-n", h1, "-6", "route", "add", "2001:db8:70::/64", "via", "2001:db8:1::fe")
    # the edit: h1 loses its IPv6 default route, r1 all of its routes
    reduced = dict(full, routes=[{"netns": h1, "routes": full["routes"][0]["routes"][:2]}])
    check, repair, prune, again = ansible.run(
        step("route", full, check=True), step("route", full), step("route", reduced),
        step("route", reduced))
    for result in (check, repair):
        assert changes(result) == [("fix", "route", "%s 2001:db8:50::/48" % h1)]
        assert detail(result, "fix", "%s 2001:db8:50::/48" % h1) == "via 2001:db8:1::fd -> 2001:db8:1::fe"
    assert changes(prune) == sorted([("remove", "route", "%s ::/0" % h1),
                                     ("remove", "route", "%s 2001:db8:60::/64" % r1)])
    assert detail(prune, "remove", "%s ::/0" % h1) == "via 2001:db8:1::fe"
    assert_noop(again)
    assert topo_routes6(h1) == {"2001:db8:50::/48": "2001:db8:1::fe"}
    assert topo_routes6(r1) == {}
    assert topo_routes(h1) == {"0.0.0.0/0": "10.1.0.254"}
    assert [r["protocol"] for r in routes6(h1) if r["dst"] == "2001:db8:70::/64"] == ["boot"]

    # a declared IPv6 destination held by a route topo did not make is refused, and kept
    foreign = dict(reduced, routes=[{"netns": h1, "routes": reduced["routes"][0]["routes"]
                                     + [{"dst": "2001:db8:70::/64", "gateway": "2001:db8:1::fe"}]}])
    refused = ansible.one("route", foreign)
    assert refused.get("failed") and "route 2001:db8:70::/64 in %s exists (protocol 3)" % h1 in refused["msg"]
    # a gateway of the other family is refused before anything changes
    mixed = dict(reduced, routes=[{"netns": h1, "routes": [{"dst": "2001:db8:80::/64", "gateway": "10.1.0.254"}]}])
    refused = ansible.one("route", mixed)
    assert refused.get("failed") and "the destination is IPv6, the gateway IPv4" in refused["msg"], refused
    assert topo_routes6(h1) == {"2001:db8:50::/48": "2001:db8:1::fe"}
    assert topo_routes(h1) == {"0.0.0.0/0": "10.1.0.254"}


# --------------------------------------------------------------------------
# Routes through a device (dev), with or without a gateway
# --------------------------------------------------------------------------

def build_dev(lab):
    """h1 with eth0 to r1 (10.1.0.1/24 - 10.1.0.254/24, 2001:db8:1::1/64 - ::fe) and eth1 to r2
    (10.2.0.1/24 - 10.2.0.254/24), made by hand; h1 routes 10.90.0.0/24 and 2001:db8:90::/64
    through dev eth0 without a gateway, 10.91.0.0/24 via 10.2.0.254 dev eth1."""
    h1, r1, _ = build(lab)
    r2 = lab.make_ns("r2")
    lab.make_veth(h1, "eth1", r2, "eth0")
    sh("ip", "-n", h1, "addr", "add", "10.2.0.1/24", "brd", "+", "dev", "eth1")
    sh("ip", "-n", r2, "addr", "add", "10.2.0.254/24", "brd", "+", "dev", "eth0")
    sh("ip", "-n", h1, "addr", "add", "2001:db8:1::1/64", "dev", "eth0", "nodad")
    sh("ip", "-n", r1, "addr", "add", "2001:db8:1::fe/64", "dev", "eth0", "nodad")
    params = {"lab": lab.name, "namespaces": [h1, r1, r2], "routes": [
        {"netns": h1, "routes": [{"dst": "10.90.0.0/24", "dev": "eth0"},
                                 {"dst": "10.91.0.0/24", "gateway": "10.2.0.254", "dev": "eth1"},
                                 {"dst": "2001:db8:90::/64", "dev": "eth0"}]},
    ]}
    return h1, r1, r2, params


def test_route_dev_four_steps_read_back_and_traffic(lab, ansible):
    h1, r1, r2, params = build_dev(lab)
    expected = sorted([("create", "route", "%s 10.90.0.0/24" % h1),
                       ("create", "route", "%s 10.91.0.0/24" % h1),
                       ("create", "route", "%s 2001:db8:90::/64" % h1)])

    def nothing_made():
        assert topo_routes(h1) == {} and topo_routes6(h1) == {}

    apply = four_steps(ansible, lab, "route", params, expected, after_check=nothing_made)
    assert detail(apply, "create", "%s 10.90.0.0/24" % h1) == "dev eth0"
    assert detail(apply, "create", "%s 10.91.0.0/24" % h1) == "via 10.2.0.254 dev eth1"
    assert detail(apply, "create", "%s 2001:db8:90::/64" % h1) == "dev eth0"

    # read back with ip -j: output interface, no gateway, scope link for IPv4 (as `ip route add dev`)
    raw = {r["dst"]: r for r in ip_json(h1, "-4", "route", "show", "table", "main")}
    assert raw["10.90.0.0/24"]["dev"] == "eth0" and "gateway" not in raw["10.90.0.0/24"], raw
    assert raw["10.90.0.0/24"]["scope"] == "link" and raw["10.90.0.0/24"]["protocol"] == str(ROUTE_PROTO)
    assert (raw["10.91.0.0/24"]["dev"], raw["10.91.0.0/24"]["gateway"]) == ("eth1", "10.2.0.254")
    six = [r for r in routes6(h1) if r["dst"] == "2001:db8:90::/64"]
    assert six == [{"dst": "2001:db8:90::/64", "gateway": None, "dev": "eth0", "protocol": str(ROUTE_PROTO)}]
    # traffic takes the dev route: r1 answers ARP for an address on its lo, reached on-link
    sh("ip", "-n", r1, "addr", "add", "10.90.0.5/32", "dev", "lo")
    assert "1 received" in sh("ip", "netns", "exec", h1, "ping", "-c", "1", "-W", "2", "10.90.0.5")


def test_route_dev_drift_edit_prune_and_unknown_dev(lab, ansible):
    h1, r1, r2, full = build_dev(lab)
    ok(ansible.one("route", full))

    # drift: a dev route moved to the other interface by hand (still marked 116)
    sh("ip", "-n", h1, "route", "replace", "10.90.0.0/24", "dev", "eth1", "proto", ROUTE_PROTO)
    # the edit: 10.91.0.0/24 keeps its gateway but no longer names a dev (not compared then),
    # 2001:db8:90::/64 is no longer declared
    reduced = dict(full, routes=[{"netns": h1, "routes": [
        {"dst": "10.90.0.0/24", "dev": "eth0"}, {"dst": "10.91.0.0/24", "gateway": "10.2.0.254"}]}])
    check, repair, prune, again = ansible.run(
        step("route", full, check=True), step("route", full), step("route", reduced),
        step("route", reduced))
    for result in (check, repair):
        assert changes(result) == [("fix", "route", "%s 10.90.0.0/24" % h1)]
        assert detail(result, "fix", "%s 10.90.0.0/24" % h1) == "dev eth1 -> dev eth0"
    assert changes(prune) == [("remove", "route", "%s 2001:db8:90::/64" % h1)]
    assert detail(prune, "remove", "%s 2001:db8:90::/64" % h1) == "dev eth0"
    assert_noop(again)
    assert [r["dev"] for r in routes(h1) if r["dst"] == "10.90.0.0/24"] == ["eth0"]
    assert topo_routes6(h1) == {}

    # a gateway-only route made by hand as topo's, then declared with a dev: fixed to dev only
    moved = dict(full, routes=[{"netns": h1, "routes": [{"dst": "10.90.0.0/24", "gateway": "10.2.0.254"},
                                                        {"dst": "10.91.0.0/24", "dev": "eth0"}]}])
    result = ansible.one("route", moved)
    assert changes(result) == sorted([("fix", "route", "%s 10.90.0.0/24" % h1),
                                      ("fix", "route", "%s 10.91.0.0/24" % h1)])
    assert detail(result, "fix", "%s 10.91.0.0/24" % h1) == "via 10.2.0.254 dev eth1 -> dev eth0"
    raw = {r["dst"]: r for r in ip_json(h1, "-4", "route", "show", "table", "main")}
    assert (raw["10.90.0.0/24"].get("gateway"), raw["10.90.0.0/24"]["dev"]) == ("10.2.0.254", "eth1")
    assert (raw["10.91.0.0/24"].get("gateway"), raw["10.91.0.0/24"]["dev"]) == (None, "eth0")

    # a dev the namespace does not have fails, naming it and the namespace's interfaces
    wrong = dict(full, routes=[{"netns": h1, "routes": [{"dst": "10.92.0.0/24", "dev": "gretun1"}]}])
    refused = ansible.one("route", wrong)
    assert refused.get("failed") and "%s has no interface gretun1 (it has eth0, eth1, lo)" % h1 in refused["msg"], \
        refused
    # neither a gateway nor a dev is refused before anything changes
    neither = dict(full, routes=[{"netns": h1, "routes": [{"dst": "10.93.0.0/24"}]}])
    refused = ansible.one("route", neither)
    assert refused.get("failed") and "give a gateway, a dev or both" in refused["msg"], refused
    assert not [r for r in routes(h1) if r["dst"] in ("10.92.0.0/24", "10.93.0.0/24")]
