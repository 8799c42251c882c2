"""Phase "routing": static routes and who reaches whom.

With ``routing: auto`` every node gets routes to every subnet and loopback it can reach,
by hop count (:func:`_shortest_paths`), once per address family the lab has: IPv6 routes
follow the same shortest paths, their next hop the neighbour's global IPv6 address on the
shared segment (not its link-local one: a route then needs no output interface). Then each
node's declared ``gateway:`` and ``routes:`` are added (they win). Every next hop must be
on one of the node's subnets of its family (of its ``dev``'s, for a route through a device).
A route may name the interface it leaves through (``dev:``, with or without ``via``): one
of the node's interfaces (veths, tunnel ends) or bridges inside it.
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
    underlay = {t: (ends[0]["local"], ends[0]["remote"]) for t, ends in enumerate(x.tunnel_ends)}
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
        devs = x.route_devs[name] = {}
        for i, r in enumerate(node.routes):
            dst = str(netaddr.IPNetwork(r.dst)) if ":" in r.dst else r.dst
            table[dst] = r.via if r.via is None or ":" not in r.via else str(netaddr.IPAddress(r.via))
            if r.dev:
                names = interface_names(x, name)
                if r.dev in names:
                    devs[dst] = r.dev
                    on_dev = [netaddr.IPNetwork(e[k]) for e in x.ifaces[name] for k in ("address", "address6")
                              if e["ifname"] == r.dev and e.get(k)]
                    if r.via and not any(netaddr.IPAddress(r.via) in net for net in on_dev):
                        x.add(("nodes", name, "routes", i, "via"),
                              f"next hop {r.via} for {r.dst} is on none of {r.dev}'s subnets "
                              f"({', '.join(str(n.cidr) for n in on_dev) or 'it has no address'})")
                else:
                    x.add(("nodes", name, "routes", i, "dev"),
                          f"node {name} has no interface {r.dev} (its interfaces: {', '.join(names) or 'none'})")
            else:
                devs.pop(dst, None)
    x.routes = routes
    if x.lab.routing != "auto" and any(n.routes or n.gateway for n in nodes.values()):
        _reach_by_tables(x)
    for name in nodes:
        connected = [netaddr.IPNetwork(i[key]) for i in x.ifaces[name] for key in ("address", "address6")
                     if i.get(key)]
        for dst, gw in routes[name].items():
            if gw is None or dst in x.route_devs[name]:  # a dev route's next hop is checked above
                continue
            if not any(netaddr.IPAddress(gw) in c for c in connected if c.version == netaddr.IPAddress(gw).version):
                where = ("nodes", name, "gateway") if dst in ("0.0.0.0/0", "::/0") else ("nodes", name, "routes")
                x.add(where, f"next hop {gw} for {dst} is on none of {name}'s subnets")


#: Tunnel device kinds that carry IP packets, not frames: what goes in comes out at the peer.
L3_TUNNELS = ("gre", "ip6gre")


def on_device(x: Expansion, node: str, dev: str) -> tuple[str, str | None]:
    """``(segment, peer node or None)`` of ``node``'s interface (or bridge inside it) ``dev``:
    the peer is the other end of an L3 tunnel (GRE), where every packet sent into it comes out
    (None when that end is outside the lab: nothing in the lab answers there)."""
    for end in x.ifaces[node]:
        if end["ifname"] == dev:
            peer = end["peer"].split(":")[0] if end["kind"] in L3_TUNNELS and end["peer"] else None
            return end["segment"], peer
    return x.seg_of_bridge[dev], None


def interface_names(x: Expansion, node: str) -> list[str]:
    """The names of ``node``'s interfaces a route can leave through: its veths and tunnel
    ends, then the bridges inside it, in order."""
    return [i["ifname"] for i in x.ifaces[node]] + sorted(b for b, br in x.lab.bridges.items() if br.node == node)


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
    node_segments: dict[str, set[str]] = {n: set() for n in nodes}
    routes = {n: {} for n in nodes}
    reach: dict[str, set[str]] = {n: set() for n in nodes}
    holders = {}  # segment -> [(node, address without prefix length)] of the members with an address
    for seg in segments.values():
        holders[seg.name] = [(m["node"], m[key].split("/")[0]) for m in seg.members if m.get(key)]
        addressed = {n for n, _ in holders[seg.name]}
        for m in seg.members:
            node_segments[m["node"]].add(seg.name)
            reach[m["node"]] |= addressed - {m["node"]}
    if lab.routing != "auto":
        # No adjacency lists: one bridge of N members would make N*(N-1) entries of them
        # (issue 16: 1000 members, 218 MiB) where only who reaches whom is needed.
        return routes, reach, {n: set(node_segments[n]) for n in nodes}
    adjacency: dict[str, list[tuple[str, str, str]]] = {n: [] for n in nodes}  # node -> (segment, peer, peer address)
    for seg in segments.values():
        for m in seg.members:
            adjacency[m["node"]] += [(seg.name, peer, addr) for peer, addr in holders[seg.name] if peer != m["node"]]
    for n in adjacency:
        adjacency[n].sort()
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
    stubs: dict[str, dict[str, str]] = {}
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
        routes[src] = _compact(nodes[src], table, default)
        if default in routes[src] and table and default not in table:
            stubs[src] = table  # kept in case a cycle of defaults sends it back to its routes
    owner = {addr: peer for n in nodes for _, peer, addr in adjacency[n]}
    _break_cycles(lab, routes, stubs, owner, default)
    return routes, reach, reach_segments


def _compact(node, table, default):
    """Fewer routes that forward every routed address as before: ``table`` ``{dst:
    gateway}`` of ``node`` (a model Node) in one family (``default``: its default route).

    * A stub - a node whose routes all share one gateway (its only neighbour router) -
      gets one default route toward it instead. A forwarding node that declares a gateway
      or a default route of this family keeps its routes (the declared default would take
      over all of them), and where two forwarding nodes' defaults would point at each other
      (or round a longer cycle), the first of them by name keeps its routes instead, so an
      address no node routes is dropped, not bounced until its hop limit runs out.
    * Otherwise the prefixes that share a gateway are merged where the addressing allows:
      adjacent prefixes (consecutive /30s of a chain, say) into the fewest covering
      prefixes, which cover exactly the same addresses. A node whose routes overlap each
      other (a /32 inside a routed subnet) keeps them as they are.

    On a routed chain of N forwarding nodes with consecutive /30s this makes about
    2 log2(N) routes a node instead of N - 2 (and one at each end).
    """
    declared = any(r.dst in ("0.0.0.0/0", "::/0") and (":" in r.dst) == (":" in default) for r in node.routes) or \
        any(g and (":" in g) == (":" in default) for g in by_family(node.gateway))
    if table and len(set(table.values())) == 1 and not (node.forwarding and declared):
        return {default: next(iter(table.values()))}
    return _merge(table)


def _break_cycles(lab, routes, stubs, owner, default):
    """Where forwarding nodes' default routes (``routes`` ``{node: {dst: gateway}}``, changed
    in place) point round a cycle, the first node of the cycle by name gets its own routes
    back (``stubs`` ``{node: its routes before the default}``, merged); ``owner`` ``{gateway
    address: node}``."""
    points = {n: owner[t[default]] for n, t in routes.items()
              if n in stubs and lab.nodes[n].forwarding and t.get(default) in owner}
    done: set[str] = set()
    for start in sorted(points):
        path, n = [], start
        while n in points and n not in done and n not in path:
            path.append(n)
            n = points[n]
        if n in path:  # a cycle: n ... back to n
            keep = min(path[path.index(n):])
            routes[keep] = _merge(stubs[keep])
        done.update(path)


def _merge(table):
    """``table`` ``{dst: gateway}`` with the prefixes of each gateway merged into the fewest
    prefixes covering exactly the same addresses; unchanged when any two prefixes overlap."""
    if len(table) < 2:
        return dict(table)
    nets = sorted((netaddr.IPNetwork(dst), gw) for dst, gw in table.items())
    for (a, _), (b, _) in zip(nets, nets[1:]):
        if b.first <= a.last:
            return dict(table)
    by_gateway: dict[str, list[list[int]]] = {}
    for net, gw in nets:  # sorted: consecutive ranges of one gateway join
        ranges = by_gateway.setdefault(gw, [])
        if ranges and ranges[-1][1] + 1 == net.first:
            ranges[-1][1] = net.last
        else:
            ranges.append([net.first, net.last])
    version = nets[0][0].version
    out = {}
    for gw, ranges in by_gateway.items():
        for first, last in ranges:
            for cidr in netaddr.iprange_to_cidrs(netaddr.IPAddress(first, version), netaddr.IPAddress(last, version)):
                out[str(cidr)] = gw
    return out


def _reach_by_tables(x: Expansion, max_hops: int = 64) -> None:
    """With ``routing: none`` and declared routes, who reaches whom is what the nodes' tables
    make reachable, not only who shares a segment: extend ``x.reach`` and
    ``x.reach_segments(6)`` with every address a ping would reach and get its reply from.

    A walk of the tables as the kernel does it: at each node, an address of its own is
    delivered (any interface: Linux's weak host model); else the longest prefix among its
    connected subnets and ``x.routes`` wins (a connected subnet on a tie) and the packet goes
    to the owner of the destination, or of the next hop, on that segment; a node that does
    not forward drops what is not its own. The ping's source address is the one on the
    source's outgoing interface, and the reply must walk back to it. At most ``max_hops``
    hops (the kernel's default TTL of 64)."""
    own: dict[str, str] = {}           # address -> its node
    where: dict[str, str] = {}         # "segment:address" or "lo:node" of each address, for reach_segments
    connected: dict[str, list] = {n: [] for n in x.lab.nodes}  # node -> [(net, segment, own address)]
    holders: dict[tuple[str, str], str] = {}  # (segment, address) -> node
    for name, ends in x.ifaces.items():
        for i in ends:
            for key in ("address", "address6"):
                if i.get(key):
                    net = netaddr.IPNetwork(i[key])
                    ip = str(net.ip)
                    own[ip], where[ip] = name, i["segment"]
                    holders[(i["segment"], ip)] = name
                    connected[name].append((net.cidr, i["segment"], ip))
    for loopbacks in (x.loopbacks, x.loopbacks6):
        for name, lo in loopbacks.items():
            ip = str(netaddr.IPNetwork(lo).ip)
            own[ip], where[ip] = name, f"lo:{name}"
    tables = {n: [(netaddr.IPNetwork(dst), gw, x.route_devs.get(n, {}).get(dst)) for dst, gw in t.items()]
              for n, t in x.routes.items()}

    def step(node: str, dst: netaddr.IPAddress):
        """(next node, source address at ``node``) for ``dst``, or None when dropped."""
        best = None  # (prefix length, connected first, segment or None, gateway or None, source)
        for net, seg, ip in connected[node]:
            if net.version == dst.version and dst in net and (best is None or net.prefixlen >= best[0]):
                best = (net.prefixlen, 1, seg, None, ip)
        for net, gw, dev in tables.get(node, []):
            if net.version == dst.version and dst in net and (best is None or (net.prefixlen, 0) > best[:2]):
                if dev:  # through a device: the source is its address, else the node's first of the family
                    egress = on_device(x, node, dev)
                    mine = [ip for cnet, seg, ip in connected[node] if seg == egress[0]] + \
                           [ip for cnet, seg, ip in connected[node]]
                    source = next((ip for ip in mine if netaddr.IPAddress(ip).version == dst.version), None)
                    best = (net.prefixlen, 0, egress[0], gw, source, egress[1]) if source else None
                    continue
                gw_ip = netaddr.IPAddress(gw)
                on = [(seg, ip) for cnet, seg, ip in connected[node] if gw_ip in cnet]
                best = (net.prefixlen, 0, on[0][0], str(gw_ip), on[0][1]) if on else None
        if best is None:
            return None
        seg, gw, src = best[2:5]
        if len(best) > 5 and best[5] and not gw:  # an L3 tunnel: whatever goes in comes out at its peer
            return best[5], src
        nxt = holders.get((seg, gw or str(dst)))
        on_link = {m["node"] for m in x.segments[seg].members}
        if nxt is None and not gw and dst.version == 4 and own.get(str(dst)) in on_link:
            nxt = own[str(dst)]  # on-link: the owner answers ARP for any of its addresses (ND: only on that link)
        return (nxt, src) if nxt else None

    def walk(src_node: str, dst: str):
        """The node ``dst`` is delivered to from ``src_node`` and the source address used, or None."""
        node, dst_ip, source = src_node, netaddr.IPAddress(dst), None
        for _ in range(max_hops):
            if own.get(dst) == node:
                return node, source
            if node != src_node and not x.lab.nodes[node].forwarding:
                return None
            hop = step(node, dst_ip)
            if hop is None:
                return None
            node, source = hop[0], source or hop[1]
        return None

    for src in x.lab.nodes:
        for dst, holder in own.items():
            if holder == src:
                continue
            there = walk(src, dst)
            if there and there[1] and (back := walk(holder, there[1])) and back[0] == src:
                x.reach[src].add(holder)
                segs = x.reach_segments6 if ":" in dst else x.reach_segments
                segs.setdefault(src, set()).add(where[dst])
