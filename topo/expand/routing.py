"""Phase "routing": static routes and who reaches whom.

With ``routing: auto`` every node gets routes to every subnet and loopback it can reach,
by hop count (:func:`_shortest_paths`), once per address family the lab has: IPv6 routes
follow the same shortest paths, their next hop the neighbour's global IPv6 address on the
shared segment (not its link-local one: a route then needs no output interface). Then each
node's declared ``gateway:`` and ``routes:`` are added (they win). Every next hop must be
on one of the node's subnets of its family.
"""

from __future__ import annotations

from collections import deque

import netaddr

from topo.expand.state import Expansion
from topo.model import by_family

#: Per family: the End key, the Segment attribute, the default route, a host's prefix length.
FAMILIES = {4: ("address", "subnet", "0.0.0.0/0", 32), 6: ("address6", "subnet6", "::/0", 128)}


def routing(x: Expansion) -> None:
    """Fill ``x.routes`` ``{node: {dst cidr: gateway}}`` (IPv4 and, in a lab with IPv6,
    IPv6), ``x.reach``, ``x.reach_segments`` and ``x.reach_segments6``; report next hops
    that are on none of the node's subnets."""
    nodes = x.lab.nodes
    underlay = {t: (a["local"], b["local"]) for t, (a, b) in enumerate(x.tunnel_ends)}
    routes, x.reach, x.reach_segments = _shortest_paths(x.lab, x.segments, x.loopbacks, underlay)
    x.reach_segments6 = {n: set() for n in nodes}
    if x.v6:
        routes6, reach6, x.reach_segments6 = _shortest_paths(x.lab, x.segments, x.loopbacks6, underlay, version=6)
        for name in nodes:
            routes[name].update(routes6[name])
            x.reach[name] |= reach6[name]
    for name, node in nodes.items():
        table = routes.setdefault(name, {})
        for gateway, default in zip(by_family(node.gateway), ("0.0.0.0/0", "::/0")):
            if gateway:
                table[default] = gateway if default == "0.0.0.0/0" else str(netaddr.IPAddress(gateway))
        for r in node.routes:
            if ":" in r.dst:
                table[str(netaddr.IPNetwork(r.dst))] = str(netaddr.IPAddress(r.via))
            else:
                table[r.dst] = r.via
    x.routes = routes
    for name in nodes:
        connected = [netaddr.IPNetwork(i[key]) for i in x.ifaces[name] for key in ("address", "address6")
                     if i.get(key)]
        for dst, gw in routes[name].items():
            if not any(netaddr.IPAddress(gw) in c for c in connected if c.version == netaddr.IPAddress(gw).version):
                where = ("nodes", name, "gateway") if dst in ("0.0.0.0/0", "::/0") else ("nodes", name, "routes")
                x.add(where, f"next hop {gw} for {dst} is on none of {name}'s subnets")


def _shortest_paths(lab, segments, loopbacks, underlay, version=4):
    """Static routes for ``routing: auto`` of one address family (``version`` 4 or 6: the
    members' ``address`` or ``address6``, segments' ``subnet`` or ``subnet6``, ``loopbacks``
    of that family), and who reaches whom.

    Shortest paths by hop count over segments, transiting only nodes with
    ``forwarding: true``; ties go to the alphabetically first neighbour, so the result is
    deterministic. A route towards a tunnel's own underlay address (``underlay``:
    ``{tunnel index: (local, remote)}``) never rides on that tunnel: paths to a destination
    that holds one of those addresses ignore the segments that depend on the tunnel.
    Returns ``(routes, reach, reach_segments)``: ``routes[node] = {dst: gateway}``,
    ``reach[node]`` = the set of nodes ``node`` can reach (its own segments' members, plus
    every node reached through routers when routing is auto), and ``reach_segments[node]``
    = the segments (and ``lo:<node>`` loopbacks) whose addresses it can reach. A node that does not forward and
    whose routes all share one gateway gets a single default route instead. An ``anycast``
    address (held by several nodes) is routed to the nearest holder by hop count, ties to
    the first by name.
    """
    nodes = lab.nodes
    key, subnet_attr, default, host_len = FAMILIES[version]
    anycast: dict[str, list[str]] = {}
    for name in sorted(nodes):
        for address in nodes[name].anycast:
            if netaddr.IPAddress(address).version == version:
                anycast.setdefault(str(netaddr.IPAddress(address)), []).append(name)
    adjacency: dict[str, list[tuple[str, str, str]]] = {n: [] for n in nodes}  # node -> (segment, peer, peer address)
    node_segments: dict[str, set[str]] = {n: set() for n in nodes}
    for seg in segments.values():
        for m in seg.members:
            node_segments[m["node"]].add(seg.name)
            for other in seg.members:
                if other["node"] != m["node"] and other.get(key):
                    adjacency[m["node"]].append((seg.name, other["node"], other[key].split("/")[0]))
    for n in adjacency:
        adjacency[n].sort()
    routes = {n: {} for n in nodes}
    reach = {n: {o for _, o, _ in adjacency[n]} for n in nodes}
    if lab.routing != "auto":
        return routes, reach, {n: set(node_segments[n]) for n in nodes}
    reach_segments = {n: set(node_segments[n]) for n in nodes}
    rides = {s.name: s.tunnels for s in segments.values()}
    underlay_ips = {t: [ip for ip in map(netaddr.IPAddress, pair) if ip.version == version]
                    for t, pair in underlay.items()}

    def search(src, banned):
        dist, first_hop = {src: 0}, {src: None}
        queue = deque([src])
        while queue:
            u = queue.popleft()
            if u != src and not nodes[u].forwarding:
                continue
            for seg, v, addr in adjacency[u]:
                if v not in dist and not rides[seg] & banned:
                    dist[v] = dist[u] + 1
                    first_hop[v] = addr if u == src else first_hop[u]
                    queue.append(v)
        return dist, first_hop

    seg_subnets = {s.name: getattr(s, subnet_attr) for s in segments.values() if getattr(s, subnet_attr) is not None}
    for src in sorted(nodes):
        searches = {}

        def avoiding(banned):
            if banned not in searches:
                searches[banned] = search(src, banned)
            return searches[banned]

        def paths(net):
            """Shortest paths towards ``net``: without the tunnels whose underlay is in it."""
            return avoiding(frozenset(t for t, ips in underlay_ips.items() if any(ip in net for ip in ips)))

        reach[src] |= set(avoiding(frozenset())[0]) - {src}
        table = {}
        for seg_name, subnet in seg_subnets.items():
            if seg_name in node_segments[src]:
                continue
            dist, first_hop = paths(subnet)
            best = None
            for m in segments[seg_name].members:
                v = m["node"]
                if v in dist and v != src and nodes[v].forwarding:
                    key = (dist[v], v)
                    if best is None or key < best:
                        best = key
            if best is not None:
                table[str(subnet)] = first_hop[best[1]]
                reach_segments[src].add(seg_name)
        for v, lo in loopbacks.items():
            dist, first_hop = paths(netaddr.IPNetwork(lo))
            if v != src and v in dist:
                table[str(netaddr.IPNetwork(lo).cidr)] = first_hop[v]
                reach_segments[src].add(f"lo:{v}")
        for address, holders in anycast.items():  # the nearest holder; ties: the first by name
            if src in holders:
                continue
            dist, first_hop = paths(netaddr.IPNetwork(address))
            near = sorted((dist[v], v) for v in holders if v in dist)
            if near:
                table[f"{address}/{host_len}"] = first_hop[near[0][1]]
        if not nodes[src].forwarding and table and len(set(table.values())) == 1:
            table = {default: next(iter(table.values()))}
        routes[src] = table
    return routes, reach, reach_segments
