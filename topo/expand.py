"""Phase 3, expand: a validated :class:`~topo.model.Lab` becomes the expanded lab.

The expanded lab is the single source of truth (DESIGN.md 3): every name, address, route
and check is decided here, deterministically (same file, byte-identical result), and the
playbooks only read it. It is a plain dict, also what the snapshot tests compare::

    lab, routing
    nodes:    {name: {kind, netns, groups, forwarding, sysctls, loopback,
                      interfaces: [{ifname, address, mtu, segment, peer}], routes: [{dst, gateway}]}}
    bridges:  {name: {netns, ifname, subnet, mtu, mcast_snooping, mcast_querier, ports}}
    segments: {name: {kind: lan|p2p, subnet, members: ["node:ifname", ...]}}
    veths:    [{a: {netns, ifname, mtu, master?}, b: {...}}]
    checks:   [{type: ping, from, targets: [{node, address, expect}]}]

Addressing follows netlab's model: an explicit address or subnet wins; otherwise a LAN
(bridge) segment takes the next free subnet of the ``lan`` pool, a point-to-point link one
of the ``p2p`` pool, and a node with ``loopback: true`` a /32 of the ``loopback`` pool.
Pools are walked lazily and skip every subnet that overlaps one already taken.

Names: a node or bridge lives in namespace ``topo-<lab>-<name>``; a bridge's device is
named after the bridge; the bridge-side end of a node's veth is ``<node>-<ifname>``, or
``p`` + 8 hex digits of its SHA-1 when that is longer than 15 characters (IFNAMSIZ).
"""

from __future__ import annotations

import hashlib
from collections import deque

import netaddr

from topo.errors import Problems
from topo.load import RawLab
from topo.model import Lab

NS_PREFIX = "topo"
RESERVED = {"localhost", "all", "ungrouped", "topo_hosts", "topo_nodes", "netns"}
IFNAMSIZ = 15


def netns_name(lab: str, name: str) -> str:
    """Namespace of a node or bridge: ``topo-<lab>-<name>``."""
    return f"{NS_PREFIX}-{lab}-{name}"


def port_name(node: str, ifname: str) -> str:
    """Name of the bridge-side veth end for ``node``'s interface ``ifname`` (<= 15 chars)."""
    name = f"{node}-{ifname}"
    if len(name) <= IFNAMSIZ:
        return name
    return "p" + hashlib.sha1(name.encode()).hexdigest()[:8]


class _Segment:
    """An L2 segment: a bridge with its ports, or a point-to-point veth link."""

    def __init__(self, name, kind, path, bridge=None):
        self.name, self.kind, self.path, self.bridge = name, kind, path, bridge
        self.subnet: netaddr.IPNetwork | None = None
        self.subnet_path: tuple = path
        self.members: list[dict] = []  # {node, ifname, address (str|None), path}


def previous_allocation(expanded: dict | None) -> dict:
    """What an expansion allocated, for a later :func:`expand` to keep:
    ``{"segments": {name: subnet}, "addresses": {"node:ifname": cidr}, "loopbacks": {node: cidr}}``.
    Given that dict itself, returns it."""
    if not expanded:
        return {"segments": {}, "addresses": {}, "loopbacks": {}}
    if "addresses" in expanded:
        return expanded
    return {
        "segments": {name: s.get("subnet") for name, s in (expanded.get("segments") or {}).items()},
        "addresses": {f"{n}:{i['ifname']}": i["address"] for n, node in (expanded.get("nodes") or {}).items()
                      for i in node.get("interfaces") or [] if i.get("address")},
        "loopbacks": {n: node.get("loopback") for n, node in (expanded.get("nodes") or {}).items()},
    }


def expand(lab: Lab, raw: RawLab, previous: dict | None = None) -> dict:
    """Expand ``lab`` (validated from ``raw``); raises InputError with every problem found.

    ``previous`` is an earlier expanded lab of the same name (the lab directory's
    expanded.yml). Pool allocations in it are kept where they still fit, so editing a lab
    (adding or removing a node) does not renumber the nodes that were not edited. The result
    is a function of (file, previous) alone: deterministic either way.
    """
    prior = previous_allocation(previous)
    problems = Problems(raw.file)
    line = raw.line_of
    nodes, bridges = lab.nodes, lab.bridges

    # --- names and references ------------------------------------------------
    groups = {g for n in nodes.values() for g in n.groups}
    for name in nodes:
        if name in RESERVED:
            problems.add(line(("nodes", name)), f"nodes.{name}", f"{name!r} is reserved; choose another name")
        if name in groups:
            problems.add(line(("nodes", name)), f"nodes.{name}", f"{name!r} is also a group name; Ansible needs them distinct")
    for name in bridges:
        if name in nodes:
            problems.add(line(("bridges", name)), f"bridges.{name}", f"{name!r} is both a node and a bridge; names must be unique")
        if name in RESERVED:
            problems.add(line(("bridges", name)), f"bridges.{name}", f"{name!r} is reserved; choose another name")

    used_ifnames: dict[str, dict[str, tuple]] = {n: {} for n in nodes}
    resolved = []  # per link: (node_ends, bridge_name or None)
    for i, link in enumerate(lab.links):
        node_ends, bridge = [], None
        for j, ep in enumerate(link.endpoints):
            path = ("links", i, "endpoints", j)
            if ep.node in nodes:
                node_ends.append((j, ep))
                if ep.ifname:
                    prev = used_ifnames[ep.node].get(ep.ifname)
                    if prev:
                        problems.add(line(path + ("ifname",)), _f(path + ("ifname",)),
                                     f"interface {ep.ifname} is already used on node {ep.node} "
                                     f"(line {line(prev)})")
                    else:
                        used_ifnames[ep.node][ep.ifname] = path + ("ifname",)
            elif ep.node in bridges:
                if bridge is not None:
                    problems.add(line(path), _f(path), "a link joins a node to a bridge or two nodes; "
                                                        "it cannot join two bridges")
                bridge = ep.node
                for key in ("ifname", "address", "mac"):
                    if getattr(ep, key):
                        problems.add(line(path + (key,)), _f(path + (key,)),
                                     f"{key} belongs on the node end; {ep.node} is a bridge")
            else:
                known = ", ".join(sorted(nodes)[:8]) + (" ..." if len(nodes) > 8 else "")
                problems.add(line(path + ("node",)), _f(path + ("node",)),
                             f"unknown node {ep.node!r} (nodes: {known})")
        if bridge is not None and link.subnet is not None and bridges[bridge].subnet not in (None, link.subnet):
            problems.add(line(("links", i, "subnet")), f"links[{i}].subnet",
                         f"{link.subnet} differs from bridge {bridge}'s subnet {bridges[bridge].subnet}")
        resolved.append((node_ends, bridge))
    problems.gate("references")

    # --- interface names, segments, veths ------------------------------------
    counters = {n: 0 for n in nodes}

    def next_ifname(node):
        while f"eth{counters[node]}" in used_ifnames[node]:
            counters[node] += 1
        name = f"eth{counters[node]}"
        used_ifnames[node][name] = ()
        return name

    segments: dict[str, _Segment] = {}
    for bname in bridges:
        segments[bname] = _Segment(bname, "lan", ("bridges", bname), bridge=bname)
        if bridges[bname].subnet:
            segments[bname].subnet = netaddr.IPNetwork(bridges[bname].subnet)
            segments[bname].subnet_path = ("bridges", bname, "subnet")
    veths, ifaces = [], {n: [] for n in nodes}
    for i, (link, (node_ends, bridge)) in enumerate(zip(lab.links, resolved)):
        ends = []
        for j, ep in node_ends:
            ifname = ep.ifname or next_ifname(ep.node)
            ends.append({"node": ep.node, "ifname": ifname, "address": ep.address, "mac": ep.mac,
                         "path": ("links", i, "endpoints", j)})
        if bridge is not None:
            seg = segments[bridge]
            if link.subnet and seg.subnet is None:
                seg.subnet, seg.subnet_path = netaddr.IPNetwork(link.subnet), ("links", i, "subnet")
        else:
            a, b = ends
            name = f"{a['node']}.{a['ifname']}--{b['node']}.{b['ifname']}"
            seg = segments[name] = _Segment(name, "p2p", ("links", i))
            if link.subnet:
                seg.subnet, seg.subnet_path = netaddr.IPNetwork(link.subnet), ("links", i, "subnet")
        for end in ends:
            seg.members.append(end)
            end["segment"], end["mtu"] = seg.name, link.mtu
            ifaces[end["node"]].append(end)
        if bridge is not None:
            end = ends[0]
            pname = port_name(end["node"], end["ifname"])
            a = {"netns": netns_name(lab.name, end["node"]), "ifname": end["ifname"], "mtu": link.mtu}
            if end["mac"]:
                a["mac"] = end["mac"].lower()
            veths.append({"a": a, "b": {"netns": netns_name(lab.name, bridge), "ifname": pname,
                                        "mtu": link.mtu, "master": bridge}})
            end["peer"] = f"{bridge}:{pname}"
        else:
            pair = {}
            for key, end, other in (("a", ends[0], ends[1]), ("b", ends[1], ends[0])):
                pair[key] = {"netns": netns_name(lab.name, end["node"]), "ifname": end["ifname"], "mtu": link.mtu}
                if end["mac"]:
                    pair[key]["mac"] = end["mac"].lower()
                end["peer"] = f"{other['node']}:{other['ifname']}"
            veths.append(pair)
    for bname, seg in segments.items():
        if seg.bridge:
            ports = [port_name(m["node"], m["ifname"]) for m in seg.members]
            clash = {p for p in ports if ports.count(p) > 1} | ({bname} & set(ports))
            for p in sorted(clash):
                problems.add(line(("bridges", bname)), f"bridges.{bname}",
                             f"two ports of this bridge would both be named {p}; rename an interface")

    # --- subnets: explicit, inferred, then pools ------------------------------
    for seg in segments.values():
        for m in seg.members:
            if m["address"] and "/" in m["address"]:
                net = netaddr.IPNetwork(m["address"]).cidr
                if seg.subnet is None:
                    seg.subnet, seg.subnet_path = net, m["path"] + ("address",)
    taken: list[tuple[netaddr.IPNetwork, str, tuple]] = [
        (s.subnet, s.name, s.subnet_path) for s in segments.values() if s.subnet is not None]
    loopbacks: dict[str, str] = {}
    for name, node in nodes.items():
        if isinstance(node.loopback, str):
            ip = netaddr.IPNetwork(node.loopback if "/" in node.loopback else node.loopback + "/32")
            loopbacks[name] = str(ip)
            taken.append((ip.cidr, f"loopback of {name}", ("nodes", name, "loopback")))
    _check_overlaps(taken, problems, line)
    problems.gate("addressing")

    used = netaddr.IPSet(net for net, _, _ in taken)
    pools = {}

    def allocate(pool_name, hosts_needed, where, path, prefer=None):
        pool = lab.pool(pool_name)
        if prefer:
            net = netaddr.IPNetwork(prefer)
            if (net.prefixlen == pool.prefix and net in netaddr.IPNetwork(pool.ipv4)
                    and not (used & netaddr.IPSet([net]))):
                used.add(net)
                return net
        if pool_name not in pools:
            pools[pool_name] = netaddr.IPNetwork(pool.ipv4).subnet(pool.prefix)
        capacity = 2 ** (32 - pool.prefix) - (2 if pool.prefix < 31 else 0)
        if hosts_needed > capacity:
            problems.add(line(path), _f(path), f"{where} needs {hosts_needed} addresses; a /{pool.prefix} "
                                              f"from pool {pool_name!r} holds {capacity}")
            return None
        first = netaddr.IPNetwork(pool.ipv4).network
        for net in pools[pool_name]:
            if pool.prefix == 32 and net.ip == first:
                continue  # a /32 pool's network address is not handed out as a loopback
            if not (used & netaddr.IPSet([net])):
                used.add(net)
                return net
        problems.add(line(path), _f(path), f"ran out of subnets in pool {pool_name!r} "
                                          f"({pool.ipv4}, /{pool.prefix}) for {where}")
        return None

    for seg in segments.values():
        if seg.subnet is None and seg.members:
            seg.subnet = allocate("lan" if seg.kind == "lan" else "p2p", len(seg.members),
                                  f"segment {seg.name}", seg.path, prior["segments"].get(seg.name))
    for name, node in nodes.items():
        if node.loopback is True:
            net = allocate("loopback", 1, f"the loopback of {name}", ("nodes", name, "loopback"),
                           prior["loopbacks"].get(name))
            if net is not None:
                loopbacks[name] = f"{net.ip}/32"
    problems.gate("addressing")

    # --- addresses -------------------------------------------------------------
    for seg in segments.values():
        net = seg.subnet
        if net is None:
            continue
        claimed = set()
        for m in seg.members:
            if not m["address"]:
                continue
            ip = netaddr.IPNetwork(m["address"] if "/" in m["address"] else f"{m['address']}/{net.prefixlen}")
            path = m["path"] + ("address",)
            if ip.prefixlen != net.prefixlen or ip.ip not in net:
                problems.add(line(path), _f(path), f"{m['address']} is outside the segment's subnet {net}"
                                                   f" (segment {seg.name})")
                continue
            if net.prefixlen < 31 and ip.ip in (net.network, net.broadcast):
                problems.add(line(path), _f(path), f"{ip.ip} is the {'network' if ip.ip == net.network else 'broadcast'}"
                                                   f" address of {net}")
                continue
            if ip.ip in claimed:
                problems.add(line(path), _f(path), f"{ip.ip} is used twice on segment {seg.name}")
                continue
            claimed.add(ip.ip)
            m["address"] = f"{ip.ip}/{net.prefixlen}"
        for m in seg.members:  # keep earlier allocations that still fit
            before = prior["addresses"].get(f"{m['node']}:{m['ifname']}")
            if m["address"] is None and before:
                ip = netaddr.IPNetwork(before)
                usable = net.prefixlen >= 31 or ip.ip not in (net.network, net.broadcast)
                if ip.prefixlen == net.prefixlen and ip.ip in net and usable and ip.ip not in claimed:
                    claimed.add(ip.ip)
                    m["address"] = before
        free = (h for h in (net.iter_hosts() if net.prefixlen < 31 else iter(net)) if h not in claimed)
        for m in seg.members:
            if m["address"] is None:
                host = next(free, None)
                if host is None:
                    problems.add(line(seg.path), _f(seg.path), f"subnet {net} of segment {seg.name} has no free address left")
                    break
                m["address"] = f"{host}/{net.prefixlen}"
    problems.gate("addressing")

    # --- routes ----------------------------------------------------------------
    routes, reach = _routing(lab, segments, loopbacks)
    for name, node in nodes.items():
        table = routes.setdefault(name, {})
        if node.gateway:
            table["0.0.0.0/0"] = node.gateway
        for r in node.routes:
            table[r.dst] = r.via
    for name, node in nodes.items():
        connected = [netaddr.IPNetwork(i["address"]) for i in ifaces[name] if i["address"]]
        for dst, gw in routes[name].items():
            if not any(netaddr.IPAddress(gw) in c for c in connected):
                where = ("nodes", name, "gateway") if dst == "0.0.0.0/0" else ("nodes", name, "routes")
                problems.add(line(where), _f(where), f"next hop {gw} for {dst} is on none of {name}'s subnets")
    problems.gate("routing")

    # --- the expanded lab -------------------------------------------------------
    out_nodes = {}
    for name, node in nodes.items():
        sysctls = {"net.ipv4.ip_forward": "1" if node.forwarding else "0"}
        sysctls.update({k: str(v) for k, v in node.sysctls.items()})
        out_nodes[name] = {
            "kind": node.kind,
            "netns": netns_name(lab.name, name),
            "groups": list(node.groups),
            "forwarding": node.forwarding,
            "sysctls": dict(sorted(sysctls.items())),
            "loopback": loopbacks.get(name),
            "interfaces": [{"ifname": i["ifname"], "address": i["address"], "mtu": i["mtu"],
                            "segment": i["segment"], "peer": i["peer"]} for i in ifaces[name]],
            "routes": [{"dst": d, "gateway": g} for d, g in sorted(routes[name].items(), key=_route_key)],
        }
    out_bridges = {
        name: {"netns": netns_name(lab.name, name), "ifname": name,
               "subnet": str(segments[name].subnet) if segments[name].subnet else None,
               "mtu": br.mtu, "mcast_snooping": br.igmp_snooping, "mcast_querier": br.querier,
               "ports": [port_name(m["node"], m["ifname"]) for m in segments[name].members]}
        for name, br in bridges.items()}
    out_segments = {
        name: {"kind": s.kind, "subnet": str(s.subnet) if s.subnet else None,
               "members": [f"{m['node']}:{m['ifname']}" for m in s.members]}
        for name, s in segments.items()}
    checks = _checks(lab, out_nodes, reach, problems, line)
    problems.gate("checks")
    return {"lab": lab.name, "routing": lab.routing, "nodes": out_nodes, "bridges": out_bridges,
            "segments": out_segments, "veths": veths, "checks": checks}


def _f(path: tuple) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _route_key(item):
    net = netaddr.IPNetwork(item[0])
    return (net.prefixlen == 0, int(net.network), net.prefixlen)


def _check_overlaps(taken, problems, line):
    """Report every pair of explicit subnets that overlap (sweep over sorted ranges)."""
    ordered = sorted(taken, key=lambda t: (t[0].first, -t[0].last))
    widest = None
    for net, name, path in ordered:
        if widest is not None and net.first <= widest[0].last:
            problems.add(line(path), _f(path), f"subnet {net} ({name}) overlaps {widest[0]} ({widest[1]})")
        if widest is None or net.last > widest[0].last:
            widest = (net, name, path)


def _routing(lab, segments, loopbacks):
    """Static routes for ``routing: auto``, and who reaches whom.

    Shortest paths by hop count over segments, transiting only nodes with
    ``forwarding: true``; ties go to the alphabetically first neighbour, so the result is
    deterministic. Returns ``(routes, reach)``: ``routes[node] = {dst: gateway}`` and
    ``reach[node]`` = the set of nodes whose addresses ``node`` can reach (its own
    segments' members, plus every node reached through routers when routing is auto).
    A node that does not forward and whose routes all share one gateway gets a single
    default route instead.
    """
    nodes = lab.nodes
    adjacency: dict[str, list[tuple[str, str, str]]] = {n: [] for n in nodes}  # node -> (segment, peer, peer address)
    node_segments: dict[str, set[str]] = {n: set() for n in nodes}
    for seg in segments.values():
        for m in seg.members:
            node_segments[m["node"]].add(seg.name)
            for other in seg.members:
                if other["node"] != m["node"] and other["address"]:
                    adjacency[m["node"]].append((seg.name, other["node"], other["address"].split("/")[0]))
    for n in adjacency:
        adjacency[n].sort()
    routes = {n: {} for n in nodes}
    reach = {n: {o for _, o, _ in adjacency[n]} for n in nodes}
    if lab.routing != "auto":
        return routes, reach
    seg_subnets = {s.name: str(s.subnet) for s in segments.values() if s.subnet is not None}
    for src in sorted(nodes):
        dist, first_hop = {src: 0}, {src: None}
        queue = deque([src])
        while queue:
            u = queue.popleft()
            if u != src and not nodes[u].forwarding:
                continue
            for _, v, addr in adjacency[u]:
                if v not in dist:
                    dist[v] = dist[u] + 1
                    first_hop[v] = addr if u == src else first_hop[u]
                    queue.append(v)
        reach[src] |= set(dist) - {src}
        table = {}
        for seg_name, subnet in seg_subnets.items():
            if seg_name in node_segments[src]:
                continue
            best = None
            for m in segments[seg_name].members:
                v = m["node"]
                if v in dist and v != src and nodes[v].forwarding:
                    key = (dist[v], v)
                    if best is None or key < best:
                        best = key
            if best is not None:
                table[subnet] = first_hop[best[1]]
        for v, lo in loopbacks.items():
            if v != src and v in dist:
                table[str(netaddr.IPNetwork(lo).cidr)] = first_hop[v]
        if not nodes[src].forwarding and table and len(set(table.values())) == 1:
            table = {"0.0.0.0/0": next(iter(table.values()))}
        routes[src] = table
    return routes, reach


def _checks(lab, out_nodes, reach, problems, line):
    """Ping checks: the declared ones, or every node to every address it should reach."""
    def addresses(node):
        n = out_nodes[node]
        addrs = [i["address"].split("/")[0] for i in n["interfaces"] if i["address"]]
        if n["loopback"]:
            addrs.append(n["loopback"].split("/")[0])
        return addrs

    wanted: dict[str, dict[str, str]] = {}
    declared = lab.verify if lab.verify is not None else [None]
    for k, check in enumerate(declared):
        ping = check.ping if check is not None else None
        srcs = sorted(out_nodes) if ping is None or ping.from_ == "all" else ping.from_
        dsts = sorted(out_nodes) if ping is None or ping.to == "all" else ping.to
        expect = ping.expect if ping is not None else "pass"
        for key, names in (("from", srcs), ("to", dsts)):
            for n in names:
                if n not in out_nodes:
                    problems.add(line(("verify", k, "ping", key)), f"verify[{k}].ping.{key}", f"unknown node {n!r}")
        for s in srcs:
            for d in dsts:
                if s == d or s not in out_nodes or d not in out_nodes:
                    continue
                reachable = d in reach[s]
                if expect == "pass" and not reachable and (ping is None or ping.to == "all"):
                    continue  # "all" means every node this one should reach
                for addr in addresses(d):
                    wanted.setdefault(s, {})[addr] = (d, expect)
    return [{"type": "ping", "from": s,
             "targets": [{"node": d, "address": a, "expect": e}
                         for a, (d, e) in sorted(wanted[s].items(), key=lambda t: netaddr.IPAddress(t[0]))]}
            for s in sorted(wanted)]
