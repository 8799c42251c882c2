"""Phase "checks" (continued): the cast checks (unicast, broadcast, multicast, anycast,
relay) and iperf3 checks of ``verify:`` become the dicts the ``topo.lab.cast`` and
``topo.lab.iperf`` modules run.

Each check names its nodes by node name or by declared group (a group stands for its
members, in name order). A node taking part becomes a *participant*::

    {node, netns, container (docker nodes: the container's name; else None), address}

where ``address`` is the node's first IPv4 address (its first interface's, else its
loopback), the one it sends from and is reached at - on an IPv6 check its first IPv6
address (``address6`` of its first interface that has one, else ``loopback6``). A check is
IPv6 when it says ``family: ipv6``, or names an IPv6 address or an ff00::/8 group; the
expanded check then carries ``family: 6`` (IPv4 checks have no ``family`` key, so IPv4
labs expand as before), and a multicast ``ttl`` is the hop limit. Every check gets a unique ``name``
(default ``<type>-<index in verify>``), used for its capture file, and a one-line
``description``. Problems (unknown nodes, a node with no address, a directed broadcast
from a node without a subnet, an anycast server that does not hold the address ...) are
reported like every other, naming the check's line and field.
"""

from __future__ import annotations

import netaddr

from ansible_collections.topo.lab.plugins.module_utils.api import CAST_TYPES  # noqa: F401 (one home)
from topo.expand.state import Expansion

LIMITED_BROADCAST = "255.255.255.255"
#: What an IPv6 relay resends to: all nodes of the link (IPv6 has no broadcast).
ALL_NODES6 = "ff02::1"


def check_family(spec) -> int:
    """4 or 6: the check's ``family``, else 6 when it names an IPv6 address or group
    (``address``, ``group``, a silent node's ``join``), else 4."""
    if getattr(spec, "family", None):
        return 6 if spec.family == "ipv6" else 4
    named = [getattr(spec, "address", None), getattr(spec, "group", None)]
    named += [g for m in getattr(spec, "silent", None) or [] if not isinstance(m, str) for g in m.join]
    return 6 if any(isinstance(a, str) and ":" in a for a in named) else 4


class _Ctx:
    """One check being expanded: ``verify[k].<kind>``; ``ok`` until a problem is reported."""

    def __init__(self, x: Expansion, k: int, kind: str, family: int = 4):
        self.x, self.lab, self.nodes = x, x.lab, x.out_nodes
        self.where = ("verify", k, kind)
        self.k, self.kind = k, kind
        self.family = family
        self.ok = True
        self.groups: dict[str, list[str]] = {}
        for name, node in self.lab.nodes.items():
            for g in node.groups:
                self.groups.setdefault(g, []).append(name)

    def bad(self, field: str, message: str) -> None:
        """Report ``message`` at the check's line, naming ``verify[k].<kind>.<field>``."""
        self.x.add(self.where, message, field=self.where + ((field,) if field else ()))
        self.ok = False

    def names(self, field: str, items) -> list[str]:
        """Node names for ``items`` (node or group names; a group stands for its members, by
        name); unknown ones are reported."""
        out: list[str] = []
        for item in items:
            found = [item] if item in self.nodes else sorted(self.groups.get(item, []))
            if not found:
                self.bad(field, f"unknown node or group {item!r}")
            out += [n for n in found if n not in out]
        return out

    # node() is called as ``ctx.node(a) & ctx.node(b)``: both run, so both unknown nodes are told.
    def node(self, field: str, name: str) -> bool:
        """Whether ``name`` is a node; reports it under ``field`` when not."""
        if name not in self.nodes:
            self.bad(field, f"unknown node {name!r}")
            return False
        return True

    def _keys(self) -> tuple[str, str]:
        """The interface and node keys of the check's family's address."""
        return ("address6", "loopback6") if self.family == 6 else ("address", "loopback")

    def address(self, name: str, field: str) -> str | None:
        """The node's first address of the check's family, no length (first interface's,
        else loopback's); None, reported, when it has none."""
        n = self.nodes[name]
        ikey, lkey = self._keys()
        for i in n["interfaces"]:
            if i.get(ikey):
                return i[ikey].split("/")[0]
        if n.get(lkey):
            return n[lkey].split("/")[0]
        self.bad(field, f"node {name} has no IPv{self.family} address to send from or be reached at")
        return None

    def part(self, name: str, field: str) -> dict:
        """The node as a participant: ``{node, netns, container, address}``."""
        n = self.nodes[name]
        return {"node": name, "netns": n["netns"], "container": n["netns"] if n["kind"] == "docker" else None,
                "address": self.address(name, field)}

    def iface_address(self, name: str, ifname: str, field: str) -> str | None:
        """The address, no length, of ``name``'s interface ``ifname``; None, reported, when it has none."""
        ikey = self._keys()[0]
        for i in self.nodes[name]["interfaces"]:
            if i["ifname"] == ifname:
                if not i.get(ikey):
                    self.bad(field, f"{name}:{ifname} has no {'IPv6 ' if self.family == 6 else ''}address")
                return i[ikey].split("/")[0] if i.get(ikey) else None
        self.bad(field, f"node {name} has no interface {ifname}")
        return None

    def capture(self, spec) -> dict | None:
        """The expanded ``capture:`` of a check (``node:ifname`` or ``{on, filter}``):
        ``{node, interface, netns, container, filter}``; None when not asked for or wrong (reported)."""
        if spec is None:
            return None
        on, bpf = (spec, None) if isinstance(spec, str) else (spec.on, spec.filter)
        node, ifname = on.split(":", 1)
        if not self.node("capture", node):
            return None
        known = [i["ifname"] for i in self.nodes[node]["interfaces"]] + ["lo", "any"]
        if ifname not in known:
            self.bad("capture", f"node {node} has no interface {ifname} ({', '.join(known)})")
            return None
        n = self.nodes[node]
        return {"node": node, "interface": ifname, "netns": n["netns"],
                "container": n["netns"] if n["kind"] == "docker" else None, "filter": bpf}


def expand_check(x: Expansion, k: int, check) -> dict | None:
    """The expanded form of cast or iperf3 check ``check`` (a model.Check), at index ``k``
    of ``verify:`` (see :class:`topo.expand.shape.CastCheck`, :class:`~topo.expand.shape.IperfCheck`);
    None (with problems reported on ``x``) when it refers to what does not exist. Reads
    ``x.out_nodes``."""
    kind = check.kind
    spec = getattr(check, kind)
    ctx = _Ctx(x, k, kind, check_family(spec))
    out = {"type": kind, "name": spec.name or f"{kind}-{k}"}
    if ctx.family == 6:
        out["family"] = 6
    body = {"unicast": _unicast, "broadcast": _broadcast, "multicast": _multicast, "anycast": _anycast,
            "relay": _relay, "iperf3": _iperf3}[kind](ctx, spec)
    if body is None or not ctx.ok:
        return None
    out.update(body)
    if kind != "iperf3":
        out["timeout"] = spec.timeout
        out["payloads"] = spec.payloads()
    capture = ctx.capture(spec.capture)
    if spec.capture is not None and capture is None:
        return None
    if capture:
        out["capture"] = capture
    return out


def _unicast(ctx, c):
    if not (ctx.node("from", c.from_) & ctx.node("to", c.to)):
        return None
    sender, receiver = ctx.part(c.from_, "from"), ctx.part(c.to, "to")
    address = c.address or receiver["address"]
    if address is None:
        return None
    if netaddr.IPAddress(address).version != ctx.family:
        ctx.bad("address", f"{address} is not an IPv{ctx.family} address (family: ipv{ctx.family})")
        return None
    return {"description": f"{c.proto.upper()} {c.from_} -> {c.to} {_hostport(address, c.port)}"
                           + (" (must not arrive)" if c.expect == "fail" else ""),
            "proto": c.proto, "sender": sender, "receiver": receiver, "address": address, "port": c.port,
            "expect": c.expect}


def _broadcast(ctx, c):
    if not ctx.node("from", c.from_):
        return None
    to, silent = ctx.names("to", c.to), ctx.names("silent", c.silent)
    to = [n for n in to if n != c.from_]
    _disjoint(ctx, to, silent)
    sender = ctx.part(c.from_, "from")
    if c.address == "directed":
        iface = next((i for i in ctx.nodes[c.from_]["interfaces"] if i["address"]), None)
        if iface is None:
            ctx.bad("address", f"a directed broadcast needs a subnet on {c.from_}")
            return None
        address = str(netaddr.IPNetwork(iface["address"]).broadcast)
    else:
        address = LIMITED_BROADCAST
    return {"description": f"UDP broadcast {c.from_} -> {address}:{c.port} to {_few(to)}"
                           + (f", not {_few(silent)}" if silent else ""),
            "sender": sender, "address": address, "port": c.port,
            "receivers": [ctx.part(n, "to") for n in to], "silent": [ctx.part(n, "silent") for n in silent]}


def _multicast(ctx, c):
    senders = ctx.names("from", [c.from_] if isinstance(c.from_, str) else c.from_)
    members, member_if = [], {}
    for m in c.members:
        if isinstance(m, str):
            for n in ctx.names("members", [m]):
                if n not in members:
                    members.append(n)
        elif ctx.node("members", m.node):
            members.append(m.node)
            member_if[m.node] = m.interface
    silent, joins = [], {}
    group = netaddr.IPAddress(c.group)
    for m in c.silent:
        if isinstance(m, str):
            silent += [n for n in ctx.names("silent", [m]) if n not in silent]
        elif ctx.node("silent", m.node):
            if any(netaddr.IPAddress(g) == group for g in m.join):
                ctx.bad("silent", f"{m.node} joins {c.group}, the checked group, so it cannot be silent")
            other = [g for g in m.join if netaddr.IPAddress(g).version != group.version]
            if other:
                ctx.bad("silent", f"{m.node} joins {', '.join(other)}, not IPv{group.version} like {c.group}")
            silent.append(m.node)
            joins[m.node] = list(m.join)
    _disjoint(ctx, members, silent)
    for n in c.leave:
        if n not in members:
            ctx.bad("leave", f"{n} is not a member, so it cannot leave the group")
    if not ctx.ok:
        return None
    out_senders = []
    for s in senders:
        p = ctx.part(s, "from")
        p["interface"] = ctx.iface_address(s, c.from_interface, "from_interface") if c.from_interface else None
        out_senders.append(p)
    out_members = []
    for n in members:
        p = ctx.part(n, "members")
        p["interface"] = ctx.iface_address(n, member_if[n], "members") if member_if.get(n) else None
        out_members.append(p)
    if ctx.family != group.version:
        ctx.bad("group", f"{c.group} is not an IPv{ctx.family} group (family: ipv{ctx.family})")
        return None
    hops = "hop limit" if ctx.family == 6 else "TTL"
    out_silent = [dict(ctx.part(n, "silent"), join=joins.get(n, [])) for n in silent]
    wired = {}
    if c.wire == "clean":
        wired = _wires(ctx, silent)
        if wired is None:
            return None
        for p in out_silent:
            p["wire"] = wired[p["node"]]
    out = {"description": f"UDP {_few(senders)} -> group {_hostport(c.group, c.port)} {hops} {c.ttl}, "
                          f"members {_few(members)}"
                          + (f", not {_few(silent)}" if silent else "") + (f"; {_few(c.leave)} leave" if c.leave else "")
                          + ("; acks" if c.ack else "") + ("; silent wires clean" if wired else ""),
           "group": c.group, "port": c.port, "ttl": c.ttl, "senders": out_senders, "members": out_members,
           "silent": out_silent, "leave": list(c.leave), "ack": c.ack}
    if wired:
        out["wire"] = "clean"
    return out


def _wires(ctx, silent) -> dict[str, list[str]] | None:
    """For ``wire: clean``: {silent node: the interfaces whose wire is captured (all but
    lo)}; None, reported under ``wire``, when there is no silent node or a bridge a silent
    node is on cannot keep its wire clean (no IGMP/MLD snooping, or no querier: a Linux
    bridge floods every multicast to every port while no querier is on the segment)."""
    proto = "MLD" if ctx.family == 6 else "IGMP"
    if not silent:
        ctx.bad("wire", "wire: clean checks the wires of the silent nodes; name them under silent")
        return None
    out, told = {}, set()
    for n in silent:
        ifaces = ctx.nodes[n]["interfaces"]
        out[n] = [i["ifname"] for i in ifaces]
        for seg in dict.fromkeys(i["segment"] for i in ifaces):
            for b in sorted(b for b, s in ctx.x.seg_of_bridge.items() if s == seg):
                br = ctx.lab.bridges[b]
                if b in told or (br.igmp_snooping and br.querier):
                    continue
                told.add(b)
                if not br.igmp_snooping:
                    ctx.bad("wire", f"bridge {b} (silent node {n} is on it) does no {proto} snooping "
                                    f"(igmp_snooping: false), so it floods every multicast to every port; "
                                    f"wire: clean needs igmp_snooping: true and querier: true on bridges.{b}")
                else:
                    ctx.bad("wire", f"bridge {b} (silent node {n} is on it) has no querier, and a bridge without "
                                    f"one floods every multicast to every port; set querier: true on bridges.{b} "
                                    f"so its {proto} snooping forwards the group to its members only")
    return out if not told else None


def _anycast(ctx, c):
    service = netaddr.IPAddress(c.address)
    if service.version != ctx.family:
        ctx.bad("address", f"{c.address} is not an IPv{ctx.family} address (family: ipv{ctx.family})")
    for n in c.servers:
        held = [netaddr.IPAddress(a.split("/")[0]) for a in ctx.lab.nodes[n].anycast or []] \
            if n in ctx.lab.nodes else []
        if ctx.node("servers", n) and service not in held:
            ctx.bad("servers", f"server {n} does not hold {c.address}; add it to the node's anycast: list")
    for client, server in c.clients.items():
        ctx.node("clients", client)
        if server not in c.servers:
            ctx.bad("clients", f"{client} is expected to reach {server}, which is not one of the servers")
    if not ctx.ok:
        return None
    clients = []
    for client, server in sorted(c.clients.items()):
        p = ctx.part(client, "clients")
        p["expect"] = server
        clients.append(p)
    return {"description": f"{'/'.join(p.upper() for p in c.proto)} anycast {_hostport(c.address, c.port)} on "
                           f"{_few(c.servers)}: " + ", ".join(f"{a}->{b}" for a, b in sorted(c.clients.items())),
            "address": c.address, "port": c.port, "protos": list(c.proto),
            "servers": [ctx.part(n, "servers") for n in c.servers], "clients": clients}


def _relay(ctx, c):
    if not (ctx.node("from", c.from_) & ctx.node("via", c.via)):
        return None
    to, silent = ctx.names("to", c.to), ctx.names("silent", c.silent)
    to = [n for n in to if n != c.via]
    _disjoint(ctx, to, silent)
    relay = ctx.part(c.via, "via")
    out = ALL_NODES6 if ctx.family == 6 else LIMITED_BROADCAST
    return {"description": f"UDP {c.from_} -> {c.via}:{c.port}, "
                           + (f"resent to {out}" if ctx.family == 6 else "rebroadcast")
                           + f" on :{c.out_port} to {_few(to)}",
            "sender": ctx.part(c.from_, "from"), "relay": relay, "address": relay["address"], "port": c.port,
            "out_address": out, "out_port": c.out_port,
            "receivers": [ctx.part(n, "to") for n in to], "silent": [ctx.part(n, "silent") for n in silent]}


def _iperf3(ctx, c):
    if not (ctx.node("client", c.client) & ctx.node("server", c.server)):
        return None
    server = ctx.part(c.server, "server")
    if server["address"] is None:
        return None
    lengths = f", lengths {'/'.join(map(str, c.lengths))} B" if c.lengths else ""
    return {"description": f"iperf3 {c.proto.upper()} {c.client} -> {c.server} {server['address']}, "
                           f"{c.duration} s x {c.parallel}{lengths}",
            "client": ctx.part(c.client, "client"), "server": server, "address": server["address"],
            "proto": c.proto, "duration": c.duration, "parallel": c.parallel, "lengths": list(c.lengths),
            "repeats": c.repeats, "bitrate": int(c.bitrate) if c.bitrate else None, "min_bps": c.min, "port": c.port}


def _disjoint(ctx, receivers, silent):
    both = sorted(set(receivers) & set(silent))
    if both:
        ctx.bad("silent", f"{', '.join(both)} cannot both receive and stay silent")


def _hostport(address: str, port: int) -> str:
    """``address:port``, an IPv6 address in brackets."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def _few(names, n: int = 3) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (f" +{len(names) - n}" if len(names) > n else "")
