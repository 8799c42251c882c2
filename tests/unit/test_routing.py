"""Who pings whom by default when the lab declares its own routes (routing: none)."""

import os

from topo.pipeline import compile_file

HERE = os.path.dirname(os.path.abspath(__file__))


def targets(expanded):
    return {c["from"]: {t["address"] for t in c["targets"]} for c in expanded["checks"] if c["type"] == "ping"}


def test_default_pings_follow_the_declared_routes():
    """h1 (default route to r1) and h2 (10/8 via r1) reach each other and r1's loopback
    through r1; h3, on h2's segment but without a route back, is pinged only from its own
    segment, and pings only there. Applied for real, every one of these pings passes."""
    got = targets(compile_file(os.path.join(HERE, "input", "static-routes.yml")).expanded)
    assert got["h1"] == {"10.0.1.1", "10.0.2.1", "10.0.2.2", "10.9.9.9"}
    assert got["h2"] == {"10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.3", "10.9.9.9"}
    assert got["h3"] == {"10.0.2.1", "10.0.2.2"}
    assert got["r1"] == {"10.0.1.2", "10.0.2.2", "10.0.2.3"}


def test_a_route_without_a_way_back_is_not_a_default_ping(tmp_path):
    """One-way routes: h1 reaches h2's segment through r1 but h2 has no route back, so no
    default ping crosses r1 (a ping needs its reply); r1's own addresses still answer."""
    lab = tmp_path / "oneway.yml"
    lab.write_text((open(os.path.join(HERE, "input", "static-routes.yml")).read()
                    .replace("h2: {routes: [{dst: 10.0.0.0/8, via: 10.0.2.1}]}", "h2: {}")))
    got = targets(compile_file(str(lab)).expanded)
    assert got["h1"] == {"10.0.1.1", "10.0.2.1", "10.9.9.9"}  # r1 itself answers
    assert got["h2"] == {"10.0.2.1", "10.0.2.3"}


def course():
    return compile_file(os.path.join(HERE, "input", "overlay-course.yml"))


def test_dev_routes_expand_and_default_pings_follow_them():
    """overlay-course.yml: the routes through gretun1 have no gateway and name the device;
    the default pings follow them (the tenant namespaces reach each other's underlay, and a
    leaf reaches the far tenant from gretun1's address), and stop where no route comes back
    (sc2 has no route to the tenant underlays)."""
    compiled = course()
    nodes = compiled.expanded["nodes"]
    assert {"dst": "111.0.0.0/24", "gateway": None, "dev": "gretun1"} in nodes["lc11"]["routes"]
    assert {"dst": "110.0.0.0/24", "gateway": None, "dev": "gretun1"} in nodes["lc2"]["routes"]
    assert all("dev" not in r for r in nodes["sc1"]["routes"])
    got = targets(compiled.expanded)
    assert "111.0.0.2" in got["dockerns1"] and "110.0.0.2" in got["dockerns3"]
    assert {"111.0.0.1", "111.0.0.2"} <= got["lc11"] and {"110.0.0.1", "110.0.0.2"} <= got["lc2"]
    assert "10.2.2.1" in got["dockerns1"]          # out via sc2, back through gretun1
    assert not {"110.0.0.2", "111.0.0.2"} & got["sc2"]  # sc2 has no route back to them
    assert got["h1"] == {"32.0.0.2", "32.0.0.3", "32.0.0.4"}


def test_dev_routes_carry_the_tunnel_mtu_path():
    """vxlan0's underlay (110.0.0.2 -> 111.0.0.2) leaves lc11 through gretun1 (a dev route):
    its MTU is gretun1's 1476 minus VXLAN's 50; built with a warning (mtu_check: warn)."""
    compiled = course()
    ends = {(t["kind"], t["ifname"]): t for t in compiled.expanded["tunnels"]}
    assert ends[("gre", "gretun1")]["mtu"] == 1476
    assert ends[("vxlan", "vxlan0")]["mtu"] == 1426
    assert [w for w in compiled.expanded["warnings"] if "MTU is 1426" in w and "br1_dockerns" in w]


def test_tunnel_remote_stands_for_the_other_ends_local(tmp_path):
    """An end that names its remote: the other end (without local) leaves from that address,
    not its default one; given on both sides and agreeing, it changes nothing. IPv6 too: a
    remote of the IPv6 family makes the underlay IPv6 (ip6gre)."""
    lab = tmp_path / "remote.yml"
    lab.write_text("""
name: remote
nodes: {a: {}, b: {}}
links:
  - endpoints: [{node: a, address: 10.0.1.1/24}, {node: b, address: 10.0.1.2/24}]
  - endpoints: [{node: a, address: "10.0.2.1/24 2001:db8:2::1/64"}, {node: b, address: "10.0.2.2/24 2001:db8:2::2/64"}]
tunnels:
  - {type: gre, endpoints: [{node: a, remote: 10.0.2.2}, b]}
  - {type: gre, endpoints: [{node: a, local: 10.0.2.1, remote: 10.0.2.2}, {node: b, local: 10.0.2.2, remote: 10.0.2.1}]}
  - {type: gre, endpoints: [a, {node: b, remote: "2001:db8:2::1"}]}
""")
    tunnels = compile_file(str(lab)).expanded["tunnels"]
    by = [(t["kind"], t["netns"].split("-")[-1], t["local"], t["remote"]) for t in tunnels]
    assert ("gre", "a", "10.0.1.1", "10.0.2.2") in by and ("gre", "b", "10.0.2.2", "10.0.1.1") in by
    assert ("gre", "a", "10.0.2.1", "10.0.2.2") in by and ("gre", "b", "10.0.2.2", "10.0.2.1") in by
    assert ("ip6gre", "a", "2001:db8:2::1", "2001:db8:2::2") in by
    assert ("ip6gre", "b", "2001:db8:2::2", "2001:db8:2::1") in by


def test_dev_routes_on_link_ipv4_and_ipv6(tmp_path):
    """A route through a veth without a next hop sends to the destination itself on that
    link: over IPv4 its owner answers ARP for any of its addresses (h1 reaches r1's
    other address), over IPv6 neighbour discovery answers only for the link's own
    addresses (h1 does not reach r1's 2001:db8:9::1 that way)."""
    lab = tmp_path / "onlink.yml"
    lab.write_text("""
name: onlink
routing: none
nodes:
  h1: {routes: [{dst: 10.0.9.0/24, dev: eth0}, {dst: "2001:db8:9::/64", dev: eth0}]}
  r1: {forwarding: true}
  h2: {}
links:
  - endpoints: [{node: h1, address: "10.0.1.1/24 2001:db8:1::1/64"}, {node: r1, address: "10.0.1.2/24 2001:db8:1::2/64"}]
  - endpoints: [{node: r1, address: "10.0.9.1/24 2001:db8:9::1/64"}, {node: h2, address: "10.0.9.2/24 2001:db8:9::2/64"}]
""")
    got = targets(compile_file(str(lab)).expanded)
    assert got["h1"] == {"10.0.1.2", "2001:db8:1::2", "10.0.9.1"}


def _routes(expanded, node):
    return {r["dst"]: r["gateway"] for r in expanded["nodes"][node]["routes"]}


def test_auto_routes_of_a_chain_are_merged_and_its_ends_get_a_default(tmp_path):
    """A routed chain of 20 forwarding nodes: the ends (one neighbour router each) get one
    default route; an inner node's routes per side are merged into the few prefixes that
    cover exactly that side's /30s, so every address still goes the way it went, and the
    default pings still cover every pair."""
    import netaddr
    nodes = [f"n{i}" for i in range(1, 21)]
    lab = tmp_path / "chain.yml"
    lab.write_text("name: chain\nrouting: auto\nnodes:\n" + "".join(f"  {n}: {{forwarding: true}}\n" for n in nodes)
                   + "links:\n" + "".join(f"  - [{a}, {b}]\n" for a, b in zip(nodes, nodes[1:])))
    e = compile_file(str(lab)).expanded
    assert _routes(e, "n1") == {"0.0.0.0/0": "10.1.0.2"} and _routes(e, "n20") == {"0.0.0.0/0": "10.1.0.73"}
    total = sum(len(n["routes"]) for n in e["nodes"].values())
    assert total < 20 * 18 / 3, total  # was 20 * 18 (one route per /30 not connected)
    # n10 sits on 10.1.0.32/30 (to n9) and 10.1.0.36/30 (to n10): everything left of it
    # (10.1.0.0-31) via n9, everything right (10.1.0.40-75) via n11, nothing else
    n10 = {netaddr.IPNetwork(d): g for d, g in _routes(e, "n10").items()}
    for k in range(19):
        net = netaddr.IPNetwork(f"10.1.0.{4 * k}/30")
        via = [g for d, g in n10.items() if net in d]
        assert via == ([] if k in (8, 9) else ["10.1.0.33"] if k < 8 else ["10.1.0.38"]), (k, via)
    pinged = targets(e)
    assert all(len(pinged[n]) == 38 - len(e["nodes"][n]["interfaces"]) for n in nodes)


def test_two_forwarding_stubs_do_not_bounce_defaults_at_each_other(tmp_path):
    """a -- b, both forwarding with loopbacks: each routes only the other's loopback, via the
    other. Defaults both ways would bounce any unrouted address between them until its TTL
    ran out, so the first by name keeps its route and only b gets the default."""
    lab = tmp_path / "pair.yml"
    lab.write_text("name: pair\nrouting: auto\nnodes:\n  a: {forwarding: true, loopback: true}\n"
                   "  b: {forwarding: true, loopback: true}\nlinks:\n  - [a, b]\n")
    e = compile_file(str(lab)).expanded
    a, b = _routes(e, "a"), _routes(e, "b")
    assert list(b) == ["0.0.0.0/0"] and "0.0.0.0/0" not in a and len(a) == 1
