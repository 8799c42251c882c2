"""The last phase: the decisions of the others, written out in the expanded lab's shape
(:mod:`topo.expand.shape`). Deterministic: the same decisions give the same dicts, keys
in the same order, so ``expanded.yml`` and the snapshots are byte-identical run to run.
"""

from __future__ import annotations

import netaddr

from topo.expand.names import netns_name
from topo.expand.segments import bridge_netns, bridge_ports
from topo.expand.shape import Bridge, Expanded, Impairment, Node, Segment, Tunnel
from topo.expand.state import Expansion
from topo.model import DEFAULT_IMAGE

#: The sysctls every node of a lab with IPv6 gets (forwarding as ``forwarding:``): IPv6 on
#: (Docker starts containers with it disabled, so their interfaces would lack link-local
#: addresses), no duplicate address detection (addresses usable at once) and no router
#: advertisements (routes only from the topology). ``default.*`` applies to the
#: interfaces made later.
IPV6_SYSCTLS = {"net.ipv6.conf.all.disable_ipv6": "0", "net.ipv6.conf.default.disable_ipv6": "0",
                "net.ipv6.conf.all.accept_dad": "0", "net.ipv6.conf.default.accept_dad": "0",
                "net.ipv6.conf.all.accept_ra": "0", "net.ipv6.conf.default.accept_ra": "0"}


def nodes(x: Expansion) -> None:
    """Fill ``x.out_nodes`` ``{name: Node}`` (the checks phase reads it). The IPv6 keys
    (address6, loopback6, the IPv6 sysctls) only in a lab that has IPv6."""
    lab = x.lab
    out: dict[str, Node] = {}
    for name, node in lab.nodes.items():
        sysctls = {"net.ipv4.ip_forward": "1" if node.forwarding else "0"}
        if x.v6:
            sysctls["net.ipv6.conf.all.forwarding"] = "1" if node.forwarding else "0"
            sysctls.update(IPV6_SYSCTLS)
        sysctls.update({k: str(v) for k, v in node.sysctls.items()})
        interfaces = []
        for i in x.ifaces[name]:
            iface = {"ifname": i["ifname"], "kind": i["kind"], "address": i["address"]}
            if x.v6:
                iface["address6"] = i["address6"]
            iface.update(mtu=i["mtu"], segment=i["segment"], peer=i["peer"])
            interfaces.append(iface)
        out[name] = {
            "kind": node.kind,
            "netns": netns_name(lab.name, name),
            "groups": list(node.groups),
            "forwarding": node.forwarding,
            "sysctls": dict(sorted(sysctls.items())),
            "loopback": x.loopbacks.get(name),
            **({"loopback6": x.loopbacks6.get(name)} if x.v6 else {}),
            "interfaces": interfaces,
            "routes": [{"dst": d, "gateway": g, **({"dev": x.route_devs[name][d]} if d in x.route_devs[name] else {})}
                       for d, g in sorted(x.routes[name].items(), key=_route_key)],
        }
        if node.anycast:
            out[name]["anycast"] = [f"{a}/32" if ":" not in a else f"{netaddr.IPAddress(a)}/128"
                                    for a in node.anycast]
        if node.exec:
            out[name]["exec"] = [list(argv) for argv in node.exec]
        if node.kind == "docker":
            out[name]["container"] = {
                "image": node.image or DEFAULT_IMAGE, "cmd": node.cmd,
                "env": {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in (node.env or {}).items()},
                "binds": list(node.binds or [])}
    x.out_nodes = out


def _route_key(item):
    """Sort key of a route ``(dst, gateway)``: IPv4 first, then IPv6; in each by network,
    then prefix length; the default last."""
    net = netaddr.IPNetwork(item[0])
    return (net.version, net.prefixlen == 0, int(net.network), net.prefixlen)


def _bridges(x: Expansion) -> dict[str, Bridge]:
    out = {}
    for name, br in x.lab.bridges.items():
        seg = x.segments[x.seg_of_bridge[name]]
        ports = bridge_ports(x, name)
        ports += [e["ifname"] for ends in x.tunnel_ends for e in ends if e["bridge"] == name]
        out[name] = {"netns": bridge_netns(x, name), "node": br.node, "ifname": name,
                     "subnet": str(seg.subnet) if seg.subnet else None,
                     **({"subnet6": str(seg.subnet6) if seg.subnet6 else None} if x.v6 else {}),
                     "segment": seg.name,
                     "mtu": br.mtu, "mcast_snooping": br.igmp_snooping, "mcast_querier": br.querier,
                     "ports": ports}
    return out


def _segments(x: Expansion) -> dict[str, Segment]:
    out = {}
    for name, seg in x.segments.items():
        out[name] = {"kind": seg.kind, "subnet": str(seg.subnet) if seg.subnet else None,
                     **({"subnet6": str(seg.subnet6) if seg.subnet6 else None} if x.v6 else {}),
                     "members": [f"{m['node']}:{m['ifname']}" for m in seg.members]}
        if seg.bridges[1:] or seg.tunnels:
            out[name]["bridges"] = list(seg.bridges)
            out[name]["tunnels"] = sorted(seg.tunnels)
    return out


def _tunnels(x: Expansion) -> list[Tunnel]:
    out = []
    for tunnel, ends in zip(x.lab.tunnels, x.tunnel_ends):
        for end in ends:
            dev = {"kind": end["kind"], "netns": netns_name(x.lab.name, end["node"]), "ifname": end["ifname"],
                   "local": end["local"], "remote": end["remote"], "mtu": end["mtu"], "master": end["bridge"],
                   "ttl": tunnel.ttl}
            if tunnel.type == "vxlan":
                dev.update(vni=tunnel.vni, dstport=tunnel.dstport, srcport=tunnel.srcport, learning=tunnel.learning)
            else:
                dev["key"] = tunnel.key
            out.append(dev)
    return out


def _impairments(x: Expansion) -> list[Impairment]:
    out = []
    for name in x.lab.nodes:
        for i in x.ifaces[name]:
            if i["impair"]:
                out.append({"netns": netns_name(x.lab.name, name), "ifname": i["ifname"], **i["impair"].model_dump()})
    out += [{"netns": ns, "ifname": ifname, **imp.model_dump()} for ns, ifname, imp in x.bridge_impairments]
    return out


def _features(x: Expansion, impairments: list[Impairment]) -> list[str]:
    """Kernel features the lab needs: its tunnel types (``ip6gre``, ``ip6gretap`` among them),
    ``netem`` (delay, jitter, loss), ``tbf`` (rate)."""
    features = {end["kind"] for ends in x.tunnel_ends for end in ends}
    for imp in impairments:
        if imp["delay"] or imp["jitter"] or imp["loss"]:
            features.add("netem")
        if imp["rate"]:
            features.add("tbf")
    return sorted(features)


def result(x: Expansion, checks: list) -> Expanded:
    """The expanded lab (see :class:`topo.expand.shape.Expanded`), with ``checks`` from the checks phase."""
    impairments = _impairments(x)
    unmanaged = {} if x.lab.autoaddress else {"autoaddress": False}
    return {"lab": x.lab.name, "routing": x.lab.routing, **unmanaged, "features": _features(x, impairments),
            "nodes": x.out_nodes, "bridges": _bridges(x), "segments": _segments(x), "veths": x.veths,
            "tunnels": _tunnels(x), "impairments": impairments, "checks": checks,
            **({"warnings": x.warnings} if x.warnings else {})}
