"""Phase 3, expand: a validated :class:`~topo.model.Lab` becomes the expanded lab.

The expanded lab is the single source of truth (DESIGN.md 3): every name, address, route
and check is decided here, deterministically (same file, byte-identical result), and the
playbooks only read it. It is a plain dict, also what the snapshot tests compare::

    lab, routing
    nodes:    {name: {kind, netns, groups, forwarding, sysctls, loopback,
                      interfaces: [{ifname, address, mtu, segment, peer}], routes: [{dst, gateway}],
                      container: {image, cmd, env, binds}  (kind docker only)}}
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
from topo.casts import expand_check
from topo.model import DEFAULT_IMAGE, Lab

NS_PREFIX = "topo"
RESERVED = {"localhost", "all", "ungrouped", "topo_hosts", "topo_nodes", "netns", "docker"}
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
        self.bridges: list[str] = []  # the bridges of a LAN (several when tunnels join them)
        self.tunnels: set[int] = set()  # the tunnels this segment's L2 or L3 path rides on


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
    for bname, br in bridges.items():
        if br.node is not None and br.node not in nodes:
            problems.add(line(("bridges", bname, "node")), f"bridges.{bname}.node", f"unknown node {br.node!r}")
        elif br.node is not None and bname in used_ifnames[br.node]:
            problems.add(line(("bridges", bname)), f"bridges.{bname}",
                         f"node {br.node} already has an interface named {bname}")
    for t, tunnel in enumerate(lab.tunnels):
        if tunnel.endpoints[0].node == tunnel.endpoints[1].node:
            problems.add(line(("tunnels", t)), f"tunnels[{t}].endpoints", "a tunnel joins two different nodes")
        for j, ep in enumerate(tunnel.endpoints):
            path = ("tunnels", t, "endpoints", j)
            if ep.node not in nodes:
                what = "a bridge; a tunnel ends in a node" if ep.node in bridges else "unknown node"
                problems.add(line(path + ("node",)), _f(path + ("node",)), f"{ep.node!r}: {what}")
                continue
            if ep.ifname:
                prev = used_ifnames[ep.node].get(ep.ifname)
                if prev or ep.ifname in bridges and bridges[ep.ifname].node == ep.node:
                    problems.add(line(path + ("ifname",)), _f(path + ("ifname",)),
                                 f"interface {ep.ifname} is already used on node {ep.node}")
                else:
                    used_ifnames[ep.node][ep.ifname] = path + ("ifname",)
            if ep.bridge is not None:
                br = bridges.get(ep.bridge)
                if br is None:
                    problems.add(line(path + ("bridge",)), _f(path + ("bridge",)), f"unknown bridge {ep.bridge!r}")
                elif br.node != ep.node:
                    problems.add(line(path + ("bridge",)), _f(path + ("bridge",)),
                                 f"bridge {ep.bridge} must live in node {ep.node} for the tunnel to join it "
                                 f"(set bridges.{ep.bridge}.node: {ep.node})")
                if ep.address:
                    problems.add(line(path + ("address",)), _f(path + ("address",)),
                                 "a tunnel end plugged into a bridge has no address of its own; "
                                 "address the bridge's other members")
    problems.gate("references")

    # --- interface names, segments, veths ------------------------------------
    counters = {n: 0 for n in nodes}

    def next_ifname(node):
        while f"eth{counters[node]}" in used_ifnames[node]:
            counters[node] += 1
        name = f"eth{counters[node]}"
        used_ifnames[node][name] = ()
        return name

    # Bridges joined by an L2 tunnel (both ends plugged into bridges) are one segment.
    joined = {b: b for b in bridges}

    def root(b):
        while joined[b] != b:
            b = joined[b]
        return b

    for tunnel in lab.tunnels:
        a, b = (ep.bridge for ep in tunnel.endpoints)
        if a and b and root(a) != root(b):
            joined[max(root(a), root(b), key=list(bridges).index)] = min(root(a), root(b), key=list(bridges).index)
    segments: dict[str, _Segment] = {}
    seg_of_bridge = {b: root(b) for b in bridges}
    for bname in bridges:
        rep = seg_of_bridge[bname]
        seg = segments.get(rep) or segments.setdefault(rep, _Segment(rep, "lan", ("bridges", rep), bridge=rep))
        seg.bridges.append(bname)
        if bridges[bname].subnet:
            if seg.subnet is not None and seg.subnet != netaddr.IPNetwork(bridges[bname].subnet):
                problems.add(line(("bridges", bname, "subnet")), f"bridges.{bname}.subnet",
                             f"{bridges[bname].subnet} differs from {seg.subnet}, the subnet of bridge {seg.bridges[0]} "
                             "on the same L2 segment (joined by a tunnel)")
            seg.subnet = netaddr.IPNetwork(bridges[bname].subnet)
            seg.subnet_path = ("bridges", bname, "subnet")
    veths, ifaces, impairments = [], {n: [] for n in nodes}, []

    def bridge_netns(bname):
        node = bridges[bname].node
        return netns_name(lab.name, node if node else bname)

    for i, (link, (node_ends, bridge)) in enumerate(zip(lab.links, resolved)):
        ends = []
        for j, ep in node_ends:
            ifname = ep.ifname or next_ifname(ep.node)
            ends.append({"node": ep.node, "ifname": ifname, "address": ep.address, "mac": ep.mac,
                         "path": ("links", i, "endpoints", j)})
        if bridge is not None:
            seg = segments[seg_of_bridge[bridge]]
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
            end["segment"], end["mtu"], end["kind"] = seg.name, link.mtu, "veth"
            end["impair"] = link.impair
            ifaces[end["node"]].append(end)
        if bridge is not None:
            end = ends[0]
            pname = port_name(end["node"], end["ifname"])
            a = {"netns": netns_name(lab.name, end["node"]), "ifname": end["ifname"], "mtu": link.mtu}
            if end["mac"]:
                a["mac"] = end["mac"].lower()
            veths.append({"a": a, "b": {"netns": bridge_netns(bridge), "ifname": pname,
                                        "mtu": link.mtu, "master": bridge}})
            end["peer"] = f"{bridge}:{pname}"
            if link.impair:
                impairments.append((bridge_netns(bridge), pname, link.impair))
        else:
            pair = {}
            for key, end, other in (("a", ends[0], ends[1]), ("b", ends[1], ends[0])):
                pair[key] = {"netns": netns_name(lab.name, end["node"]), "ifname": end["ifname"], "mtu": link.mtu}
                if end["mac"]:
                    pair[key]["mac"] = end["mac"].lower()
                end["peer"] = f"{other['node']}:{other['ifname']}"
            veths.append(pair)
    # --- tunnels: one device per end; unbridged ends form a point-to-point segment ------
    tunnel_ends = []  # per tunnel: [end, end]
    for t, tunnel in enumerate(lab.tunnels):
        ends = []
        for j, ep in enumerate(tunnel.endpoints):
            ifname = ep.ifname or _tunnel_ifname(tunnel, used_ifnames[ep.node])
            used_ifnames[ep.node].setdefault(ifname, ("tunnels", t, "endpoints", j))
            ends.append({"node": ep.node, "ifname": ifname, "address": ep.address, "mac": None,
                         "path": ("tunnels", t, "endpoints", j), "bridge": ep.bridge, "local": ep.local,
                         "kind": tunnel.type, "impair": tunnel.impair})
        a, b = ends
        a["peer"], b["peer"] = f"{b['node']}:{b['ifname']}", f"{a['node']}:{a['ifname']}"
        bridged = [e for e in ends if e["bridge"]]
        if bridged:
            seg = segments[seg_of_bridge[bridged[0]["bridge"]]]
        else:
            name = f"{a['node']}.{a['ifname']}--{b['node']}.{b['ifname']}"
            seg = segments[name] = _Segment(name, "p2p", ("tunnels", t))
            if tunnel.subnet:
                seg.subnet, seg.subnet_path = netaddr.IPNetwork(tunnel.subnet), ("tunnels", t, "subnet")
        seg.tunnels.add(t)
        for end in ends:
            end["segment"], end["mtu"] = seg.name, tunnel.mtu
            if not end["bridge"]:
                seg.members.append(end)
            ifaces[end["node"]].append(end)
        tunnel_ends.append(ends)

    for bname, br in bridges.items():
        ports = [port_name(m["node"], m["ifname"]) for m in segments[seg_of_bridge[bname]].members
                 if m["peer"] == f"{bname}:{port_name(m['node'], m['ifname'])}"]
        clash = {p for p in ports if ports.count(p) > 1} | ({bname} & set(ports))
        if br.node is not None:
            clash |= set(ports) & set(used_ifnames[br.node])
        for p in sorted(clash):
            problems.add(line(("bridges", bname)), f"bridges.{bname}",
                         f"two interfaces of namespace {bridge_netns(bname)} would both be named {p}; "
                         "rename an interface")

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

    # --- tunnel underlay: where each end leaves from -----------------------------
    def own_addresses(node):
        found = [str(netaddr.IPNetwork(i["address"]).ip) for i in ifaces[node] if i["address"]]
        return found + ([str(netaddr.IPNetwork(loopbacks[node]).ip)] if loopbacks.get(node) else [])

    for ends in tunnel_ends:
        for end in ends:
            path = end["path"] + ("local",)
            if end["local"]:
                if end["local"] not in own_addresses(end["node"]):
                    problems.add(line(path), _f(path), f"{end['local']} is not an address of node {end['node']} "
                                                       f"(its addresses: {', '.join(own_addresses(end['node'])) or 'none'})")
                continue
            lo = loopbacks.get(end["node"])
            first = next((i["address"] for i in ifaces[end["node"]] if i["kind"] == "veth" and i["address"]), None)
            if lo or first:
                end["local"] = str(netaddr.IPNetwork(lo or first).ip)
            else:
                problems.add(line(end["path"]), _f(end["path"]),
                             f"node {end['node']} has no underlay address for this tunnel to leave from; "
                             "link it to the underlay, give it a loopback, or set local:")
    problems.gate("tunnels")
    for a, b in tunnel_ends:
        a["remote"], b["remote"] = b["local"], a["local"]

    # --- routes ----------------------------------------------------------------
    underlay = {t: (a["local"], b["local"]) for t, (a, b) in enumerate(tunnel_ends)}
    routes, reach, reach_segments = _routing(lab, segments, loopbacks, underlay)
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

    # --- tunnel MTUs: the underlay path's MTU minus the encapsulation --------------
    _tunnel_mtus(lab, tunnel_ends, ifaces, routes, loopbacks, segments, problems, line)
    problems.gate("tunnels")

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
            "interfaces": [{"ifname": i["ifname"], "kind": i["kind"], "address": i["address"], "mtu": i["mtu"],
                            "segment": i["segment"], "peer": i["peer"]} for i in ifaces[name]],
            "routes": [{"dst": d, "gateway": g} for d, g in sorted(routes[name].items(), key=_route_key)],
        }
        if node.anycast:
            out_nodes[name]["anycast"] = [f"{a}/32" for a in node.anycast]
        if node.kind == "docker":
            out_nodes[name]["container"] = {
                "image": node.image or DEFAULT_IMAGE, "cmd": node.cmd,
                "env": {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (node.env or {}).items()},
                "binds": list(node.binds or [])}
    out_bridges = {}
    for name, br in bridges.items():
        seg = segments[seg_of_bridge[name]]
        ports = [port_name(m["node"], m["ifname"]) for m in seg.members
                 if m["peer"] == f"{name}:{port_name(m['node'], m['ifname'])}"]
        ports += [e["ifname"] for ends in tunnel_ends for e in ends if e["bridge"] == name]
        out_bridges[name] = {"netns": bridge_netns(name), "node": br.node, "ifname": name,
                             "subnet": str(seg.subnet) if seg.subnet else None, "segment": seg.name,
                             "mtu": br.mtu, "mcast_snooping": br.igmp_snooping, "mcast_querier": br.querier,
                             "ports": ports}
    out_segments = {}
    for name, seg in segments.items():
        out_segments[name] = {"kind": seg.kind, "subnet": str(seg.subnet) if seg.subnet else None,
                              "members": [f"{m['node']}:{m['ifname']}" for m in seg.members]}
        if seg.bridges[1:] or seg.tunnels:
            out_segments[name]["bridges"] = list(seg.bridges)
            out_segments[name]["tunnels"] = sorted(seg.tunnels)
    out_tunnels = []
    for t, (tunnel, ends) in enumerate(zip(lab.tunnels, tunnel_ends)):
        for end in ends:
            dev = {"kind": tunnel.type, "netns": netns_name(lab.name, end["node"]), "ifname": end["ifname"],
                   "local": end["local"], "remote": end["remote"], "mtu": end["mtu"], "master": end["bridge"],
                   "ttl": tunnel.ttl}
            if tunnel.type == "vxlan":
                dev.update(vni=tunnel.vni, dstport=tunnel.dstport, srcport=tunnel.srcport, learning=tunnel.learning)
            else:
                dev["key"] = tunnel.key
            out_tunnels.append(dev)
    out_impairments = []
    for name in nodes:
        for i in ifaces[name]:
            if i["impair"]:
                out_impairments.append({"netns": netns_name(lab.name, name), "ifname": i["ifname"],
                                        **i["impair"].model_dump()})
    out_impairments += [{"netns": ns, "ifname": ifname, **imp.model_dump()} for ns, ifname, imp in impairments]
    features = {t.type for t in lab.tunnels}
    for imp in out_impairments:
        if imp["delay"] or imp["jitter"] or imp["loss"]:
            features.add("netem")
        if imp["rate"]:
            features.add("tbf")
    checks = _checks(lab, out_nodes, reach, reach_segments, problems, line)
    problems.gate("checks")
    return {"lab": lab.name, "routing": lab.routing, "features": sorted(features), "nodes": out_nodes,
            "bridges": out_bridges, "segments": out_segments, "veths": veths, "tunnels": out_tunnels,
            "impairments": out_impairments, "checks": checks}


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


def _routing(lab, segments, loopbacks, underlay):
    """Static routes for ``routing: auto``, and who reaches whom.

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
    anycast: dict[str, list[str]] = {}
    for name in sorted(nodes):
        for address in nodes[name].anycast:
            anycast.setdefault(address, []).append(name)
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
        return routes, reach, {n: set(node_segments[n]) for n in nodes}
    reach_segments = {n: set(node_segments[n]) for n in nodes}
    rides = {s.name: s.tunnels for s in segments.values()}
    underlay_ips = {t: [netaddr.IPAddress(a) for a in pair] for t, pair in underlay.items()}

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

    seg_subnets = {s.name: s.subnet for s in segments.values() if s.subnet is not None}
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
                table[f"{address}/32"] = first_hop[near[0][1]]
        if not nodes[src].forwarding and table and len(set(table.values())) == 1:
            table = {"0.0.0.0/0": next(iter(table.values()))}
        routes[src] = table
    return routes, reach, reach_segments


#: Bytes each tunnel type adds to a packet (outer IPv4 20 + ...): VXLAN UDP 8 + VXLAN 8 +
#: inner Ethernet 14; GRE 4; gretap GRE 4 + inner Ethernet 14. A GRE key adds 4 (RFC 2890).
OVERHEAD = {"vxlan": 50, "gre": 24, "gretap": 38}


def _tunnel_ifname(tunnel, used):
    """Default name of a tunnel end: vxlan<VNI>, else gre<n> / gtap<n> (gre0 and gretap0 are
    the kernel's fallback devices in every namespace once ip_gre is loaded)."""
    if tunnel.type == "vxlan" and f"vxlan{tunnel.vni}" not in used:
        return f"vxlan{tunnel.vni}"
    stem = {"vxlan": "vx", "gre": "gre", "gretap": "gtap"}[tunnel.type]
    n = 1
    while f"{stem}{n}" in used:
        n += 1
    return f"{stem}{n}"


def _tunnel_mtus(lab, tunnel_ends, ifaces, routes, loopbacks, segments, problems, line):
    """Set each tunnel end's MTU (unless declared): the smallest egress MTU on the routed
    path between the two underlay addresses, both ways, minus :data:`OVERHEAD`. A tunnel
    whose path rides another tunnel waits for that one's MTU. A bridged end whose MTU is
    below a frame size the segment's other members may send is an error (the bridge would
    drop those frames silently)."""
    owner = {}
    for node, items in ifaces.items():
        for i in items:
            if i["address"]:
                owner[netaddr.IPNetwork(i["address"]).ip] = node
    own_loopback = {node: netaddr.IPNetwork(lo).ip for node, lo in loopbacks.items() if lo}

    def lookup(node, dst):
        best = None
        for prefix, gw in routes[node].items():
            net = netaddr.IPNetwork(prefix)
            if dst in net and (best is None or net.prefixlen > best[0].prefixlen):
                best = (net, netaddr.IPAddress(gw))
        return best[1] if best else None

    def path_mtu(src, dst):
        """Smallest egress MTU from node ``src`` to address ``dst``; None while a hop's MTU
        is unknown; a string when there is no path (the reason)."""
        dst = netaddr.IPAddress(dst)
        cur, mtu, seen = src, 65535, set()
        while True:
            mine = [i for i in ifaces[cur] if i["address"]]
            if any(netaddr.IPNetwork(i["address"]).ip == dst for i in mine) or own_loopback.get(cur) == dst:
                return mtu
            if cur in seen:
                return f"the routes from {src} towards {dst} loop at {cur}"
            seen.add(cur)
            hop = dst if any(dst in netaddr.IPNetwork(i["address"]) for i in mine) else lookup(cur, dst)
            egress = next((i for i in mine if hop is not None and hop in netaddr.IPNetwork(i["address"])), None)
            if egress is None or hop not in owner:
                return f"{cur} has no route to {dst}"
            if egress["mtu"] is None:
                return None
            mtu = min(mtu, egress["mtu"])
            cur = owner[hop]

    pending = [t for t, tunnel in enumerate(lab.tunnels) if tunnel.mtu is None]
    while pending:
        progress = []
        for t in pending:
            a, b = tunnel_ends[t]
            found = [path_mtu(a["node"], a["remote"]), path_mtu(b["node"], b["remote"])]
            if any(isinstance(f, str) for f in found):
                why = next(f for f in found if isinstance(f, str))
                problems.add(line(("tunnels", t)), f"tunnels[{t}]", f"the underlay cannot carry this tunnel: {why} "
                                                                   "(routing: auto, or routes on the nodes)")
                progress.append(t)
            elif None not in found:
                tunnel = lab.tunnels[t]
                mtu = min(found) - OVERHEAD[tunnel.type] - (4 if tunnel.key is not None else 0)
                a["mtu"] = b["mtu"] = mtu
                progress.append(t)
        if not progress:
            for t in pending:
                problems.add(line(("tunnels", t)), f"tunnels[{t}]", "its underlay path rides on a tunnel that "
                                                                   "rides on it; set mtu: on one of them")
            break
        pending = [t for t in pending if t not in progress]
    for t, ends in enumerate(tunnel_ends):
        end = next((e for e in ends if e["bridge"]), None)  # both ends share the MTU and segment
        if end is None or end["mtu"] is None:
            continue
        seg = segments[end["segment"]]
        big = max((m["mtu"] for m in seg.members if m["mtu"]), default=0)
        if big > end["mtu"]:
            problems.add(line(("tunnels", t)), f"tunnels[{t}]",
                         f"the tunnel's MTU is {end['mtu']} but segment {seg.name} carries frames of "
                         f"up to {big} bytes, which the bridge would drop; lower the segment's link mtu to "
                         f"{end['mtu']} or raise the underlay's MTU by {big - end['mtu']}")


def _checks(lab, out_nodes, reach, reach_segments, problems, line):
    """Ping checks: the declared ones, or every node to every address it should reach
    (with ``to: all``, only the addresses on segments it has a path to)."""
    def addresses(node, src=None):
        n = out_nodes[node]
        seen = reach_segments[src] if src else None
        addrs = [i["address"].split("/")[0] for i in n["interfaces"]
                 if i["address"] and (seen is None or i["segment"] in seen)]
        if n["loopback"] and (seen is None or f"lo:{node}" in seen):
            addrs.append(n["loopback"].split("/")[0])
        return addrs

    wanted: dict[str, dict[str, str]] = {}
    declared = lab.verify if lab.verify is not None else [None]
    captures = []
    check_names: dict[str, int] = {}
    for k, check in enumerate(declared):
        if check is not None and check.capture is not None:
            captures.append(_capture_check(lab, k, check.capture, out_nodes, addresses, problems, line))
            continue
        if check is not None and check.kind != "ping":
            expanded = expand_check(lab, k, check, out_nodes, problems, line)
            if expanded and expanded["name"] in check_names:
                problems.add(line(("verify", k)), f"verify[{k}].{check.kind}.name",
                             f"another check (verify[{check_names[expanded['name']]}]) is named {expanded['name']!r}; "
                             "check names must be unique (they name capture files and report rows)")
            elif expanded:
                check_names[expanded["name"]] = k
            captures.append(expanded)
            continue
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
                implicit = expect == "pass" and (ping is None or ping.to == "all")
                if implicit and d not in reach[s]:
                    continue  # "all" means every node this one should reach
                for addr in addresses(d, s if implicit else None):
                    wanted.setdefault(s, {})[addr] = (d, expect)
    pings = [{"type": "ping", "from": s,
              "targets": [{"node": d, "address": a, "expect": e}
                          for a, (d, e) in sorted(wanted[s].items(), key=lambda t: netaddr.IPAddress(t[0]))]}
             for s in sorted(wanted)]
    return pings + [c for c in captures if c]


#: Layers that mean "encapsulated": a capture expecting one pins the inner addresses.
TUNNEL_LAYERS = {"GRE", "VXLAN"}


def _capture_check(lab, k, cap, out_nodes, addresses, problems, line):
    """The expanded form of a ``capture`` check (see the topo.lab.capture module)."""
    where = ("verify", k, "capture")
    node, ifname = cap.on.split(":", 1)
    unknown = [(key, name) for key, name in (("on", node), ("ping.from", cap.ping.from_), ("ping.to", cap.ping.to))
               if name not in out_nodes]
    for key, name in unknown:
        problems.add(line(where), _f(where) + "." + key, f"unknown node {name!r}")
    if unknown:
        return None
    known = [i["ifname"] for i in out_nodes[node]["interfaces"]] + ["lo", "any"]
    if ifname not in known:
        problems.add(line(where), _f(where) + ".on", f"node {node} has no interface {ifname} ({', '.join(known)})")
        return None
    src, dst = addresses(cap.ping.from_), addresses(cap.ping.to)
    if not src or not dst:
        problems.add(line(where), _f(where) + ".ping", "both nodes of the ping need an address")
        return None
    expect = cap.expect.model_dump(exclude_none=True)
    if TUNNEL_LAYERS & set(cap.expect.layers):
        expect.update(inner_src=src[0], inner_dst=dst[0])
    return {"type": "capture", "name": f"{node}-{ifname}-{k}", "node": node, "interface": ifname,
            "netns": out_nodes[node]["netns"], "filter": cap.filter,
            "traffic": [{"netns": out_nodes[cap.ping.from_]["netns"],
                         "argv": ["ping", "-c", str(cap.ping.count), "-i", "0.2", "-W", "1", dst[0]]}],
            "description": f"ping {cap.ping.from_} -> {cap.ping.to} {dst[0]}", "expect": expect}
