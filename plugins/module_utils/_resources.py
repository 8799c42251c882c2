# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: how each resource type of a lab converges, shared by the per-resource modules
(``netns``, ``bridge``, ``veth``, ``address``, ``route``) and by ``lab``, which runs them
all in one process.

Every ``converge_*`` function has the same contract: it receives the lab name, the whole
desired list of its resource type, the shared :class:`~._netns.Sockets` pool and the
check flag; it reads the kernel, compares every attribute, changes only the difference
(nothing in check mode) and returns a :class:`~._netns.Changes`. Objects that exist under a
declared name without this lab's marker are refused (:class:`~._netns.NotOwned`), never
adopted or removed. ``SPECS`` holds the argument specs, so the modules cannot drift apart.
"""

from __future__ import annotations

import ipaddress
import os
import socket

from ansible_collections.topo.lab.plugins.module_utils._netns import (
    GRE_KEY, GROUP, MARKER, ROUTE_PROTO, Changes, NetlinkError, NetnsError, NotOwned, conf_write, create_namespace,
    delete_namespace, if_marker, link_summary, links_by_name, list_namespaces,
    namespace_exists, namespace_fd, ns_marker, ours, sysctl_read, sysctl_write,
    translate,
)

IFA_F_SECONDARY = 0x01
MAIN_TABLE = 254
#: Addresses topo never removes.
KEEP_ADDRESSES = {("lo", "127.0.0.1/8")}

_END = dict(
    netns=dict(type="str", required=True),
    ifname=dict(type="str", required=True),
    mtu=dict(type="int", default=1500),
    mac=dict(type="str"),
    master=dict(type="str"),
)

SPECS = {
    "namespaces": dict(type="list", elements="dict", default=[], options=dict(
        name=dict(type="str", required=True),
        node=dict(type="str", required=True),
        sysctls=dict(type="dict", default={}),
        kind=dict(type="str", default="netns", choices=["netns", "docker"]),
    )),
    "bridges": dict(type="list", elements="dict", default=[], options=dict(
        netns=dict(type="str", required=True),
        name=dict(type="str", required=True),
        mtu=dict(type="int"),
        mcast_snooping=dict(type="bool", default=True),
        mcast_querier=dict(type="bool", default=False),
    )),
    "veths": dict(type="list", elements="dict", default=[], options=dict(
        a=dict(type="dict", required=True, options=_END),
        b=dict(type="dict", required=True, options=_END),
    )),
    "tunnels": dict(type="list", elements="dict", default=[], options=dict(
        kind=dict(type="str", required=True, choices=["vxlan", "gre", "gretap"]),
        netns=dict(type="str", required=True),
        ifname=dict(type="str", required=True),
        local=dict(type="str", required=True),
        remote=dict(type="str", required=True),
        mtu=dict(type="int"),
        master=dict(type="str"),
        ttl=dict(type="int"),
        vni=dict(type="int"),
        dstport=dict(type="int", default=4789),
        srcport=dict(type="list", elements="int"),
        learning=dict(type="bool", default=True),
        key=dict(type="int"),
    )),
    "impairments": dict(type="list", elements="dict", default=[], options=dict(
        netns=dict(type="str", required=True),
        ifname=dict(type="str", required=True),
        delay=dict(type="float"),
        jitter=dict(type="float"),
        loss=dict(type="float"),
        rate=dict(type="int"),
    )),
    "features": dict(type="list", elements="str", default=[]),
    "interfaces": dict(type="list", elements="dict", default=[], options=dict(
        netns=dict(type="str", required=True),
        ifname=dict(type="str", required=True),
        addresses=dict(type="list", elements="str", default=[]),
    )),
    "routes": dict(type="list", elements="dict", default=[], options=dict(
        netns=dict(type="str", required=True),
        routes=dict(type="list", elements="dict", default=[], options=dict(
            dst=dict(type="str", required=True),
            gateway=dict(type="str", required=True),
        )),
    )),
    "lab": dict(type="str", required=True),
    "prune": dict(type="bool", default=True),
    "scope": dict(type="list", elements="str", default=[]),
}


class Tables(object):
    """Link tables per namespace, read once and kept current as ends are made or removed."""

    def __init__(self, socks):
        self.socks = socks
        self._tables = {}

    def links(self, ns):
        if ns not in self._tables:
            self._tables[ns] = links_by_name(self.socks.get(ns)) if namespace_exists(ns) else {}
        return self._tables[ns]

    def get(self, ns, ifname):
        return self.links(ns).get(ifname)

    def refresh(self, ns, ifname):
        """Re-read one interface without re-dumping its namespace."""
        table = self.links(ns)
        try:
            msg = self.socks.get(ns).link("get", ifname=ifname)[0]
        except NetlinkError:
            table.pop(ifname, None)
            return None
        table[ifname] = link_summary(msg)
        return table[ifname]

    def invalidate(self):
        """Forget every table: a removed veth end takes its peer, in any namespace, with it."""
        self._tables = {}

    def forget(self, ns):
        """Forget one namespace's table (the namespace is being removed)."""
        self._tables.pop(ns, None)


# --------------------------------------------------------------------------- namespaces

def read_marker(socks, name):
    """The alias of lo in namespace ``name``, or None when unreadable."""
    try:
        return socks.get(name).get_links(1)[0].get_attr("IFLA_IFALIAS")
    except (NetnsError, OSError, NetlinkError):
        return None


def owned_namespaces(tables, lab):
    """{namespace: lo} (lo's link summary) of every namespace whose lo carries ``lab``'s marker.

    Reads each namespace's whole link table into ``tables``, which the bridge, veth and
    address passes of the same run need anyway.
    """
    prefix = "%s%s:" % (MARKER, lab)
    owned = {}
    for name in list_namespaces():
        if not namespace_exists(name):
            continue
        try:
            lo = tables.links(name).get("lo")
        except (NetnsError, OSError, NetlinkError):
            continue
        if lo and lo["alias"] and lo["alias"].startswith(prefix):
            owned[name] = lo
    return owned


def converge_namespaces(socks, lab, namespaces, check, state="present", prune=True, tables=None):
    """Namespaces with lo up, the lab's marker and their sysctls; prune or remove the lab's others.
    A ``kind: docker`` namespace is not made here but by the container pass, which names the
    container's own namespace; here it gets its sysctls like any other.
    ``tables``: a :class:`Tables` shared with the other resources of one run."""
    changes = Changes("netns")
    tables = tables or Tables(socks)
    prefix = "%s%s:" % (MARKER, lab)
    owned = dict((name, lo["alias"][len(prefix):]) for name, lo in owned_namespaces(tables, lab).items())
    lo_up = dict((name, tables.get(name, "lo")["up"]) for name in owned)
    declared = set()
    for ns in namespaces if state == "present" else []:
        name = ns["name"]
        declared.add(name)
        marker = ns_marker(lab, ns["node"])
        sysctls = dict((k, str(v)) for k, v in (ns.get("sysctls") or {}).items())
        if not namespace_exists(name) and ns.get("kind") == "docker":
            # The container pass names a docker node's namespace; in check mode it has
            # already reported the container it would make.
            if check:
                continue
            raise NetnsError("namespace %s of docker node %s is not named; the container pass "
                             "(topo.lab.container) must run first" % (name, ns["node"]))
        if not namespace_exists(name):
            changes.add("create", name, "node=%s" % ns["node"], after="node=%s %s" % (ns["node"], sysctls))
            if not check:
                create_namespace(name, marker)
                for key, value in sorted(sysctls.items()):
                    sysctl_write(name, key, value)
            continue
        if name not in owned:
            raise NotOwned("namespace %s exists but was not made by topo for lab %s (lo alias %r); "
                           "remove or rename it" % (name, lab, read_marker(socks, name)))
        ipr = socks.get(name)
        if owned[name] != ns["node"]:
            changes.add("fix", name, "marker node %s -> %s" % (owned[name], ns["node"]))
            if not check:
                ipr.link("set", index=1, ifalias=marker)
        if not lo_up[name]:
            changes.add("fix", name, "lo down -> up", before="lo down", after="lo up")
            if not check:
                ipr.link("set", index=1, state="up")
        for key, value in sorted(sysctls.items()):
            current = sysctl_read(name, key)
            if current != value:
                changes.add("fix", name, "%s %s -> %s" % (key, current, value),
                            before="%s=%s" % (key, current), after="%s=%s" % (key, value))
                if not check:
                    sysctl_write(name, key, value)
    if state == "absent" or prune:
        for name in sorted(set(owned) - declared):
            changes.add("remove", name, "node=%s" % owned[name], before="node=%s" % owned[name])
            if not check:
                socks.forget(name)
                tables.forget(name)
                delete_namespace(name)
    changes.extra["owned"] = sorted(owned)
    return changes


# --------------------------------------------------------------------------- bridges

def converge_bridges(socks, lab, bridges, scope, check, prune=True, tables=None):
    """Bridges with every attribute compared; prune the lab's undeclared bridges in ``scope``.
    ``tables``: a :class:`Tables` shared with the other resources of one run."""
    changes = Changes("bridge")
    tables = tables or Tables(socks)
    declared = set()
    for br in bridges:
        ns, name = br["netns"], br["name"]
        declared.add((ns, name))
        label = "%s/%s" % (ns, name)
        want = {"up": True, "mcast_snooping": int(br["mcast_snooping"]),
                "mcast_querier": int(br["mcast_querier"]), "alias": if_marker(lab)}
        if br.get("mtu"):
            want["mtu"] = br["mtu"]
        have = tables.get(ns, name)
        try:
            if have is not None and not ours(have, lab):
                raise NotOwned("%s exists (a %s) but was not made by topo for lab %s; remove or rename it"
                               % (label, have["kind"] or "device", lab))
            if have is not None and have["kind"] != "bridge":
                changes.add("remove", label, "is a %s, not a bridge" % have["kind"])
                if not check:
                    socks.get(ns).link("del", index=have["index"])
                    tables.invalidate()
                have = None
            if have is None:
                changes.add("create", label, "", after=str(want))
                if not check:
                    ipr = socks.get(ns)
                    kw = {"mtu": want["mtu"]} if "mtu" in want else {}
                    ipr.link("add", ifname=name, kind="bridge", state="up", group=GROUP,
                             br_mcast_snooping=want["mcast_snooping"],
                             br_mcast_querier=want["mcast_querier"], **kw)
                    ipr.link("set", ifname=name, ifalias=if_marker(lab))
                    tables.refresh(ns, name)
                continue
            diff = dict((k, (have.get(k), v)) for k, v in want.items() if have.get(k) != v)
            if not diff:
                continue
            changes.add("fix", label, _detail(diff), before=str(dict((k, a) for k, (a, b) in diff.items())),
                        after=str(dict((k, b) for k, (a, b) in diff.items())))
            if check:
                continue
            ipr = socks.get(ns)
            kw = {}
            if "up" in diff:
                kw["state"] = "up"
            if "mtu" in diff:
                kw["mtu"] = want["mtu"]
            if "alias" in diff:
                kw["ifalias"] = want["alias"]
            if kw:
                ipr.link("set", index=have["index"], **kw)
            br_kw = dict(("br_" + k, want[k]) for k in ("mcast_snooping", "mcast_querier") if k in diff)
            if br_kw:
                ipr.link("set", index=have["index"], kind="bridge", **br_kw)
            tables.refresh(ns, name)
        except NetlinkError as exc:
            raise translate(exc, "bridge %s" % label, kind="bridge")
    if prune:
        for ns in sorted(set(scope)):
            for name, have in sorted(tables.links(ns).items()):
                if (ns, name) in declared or have["kind"] != "bridge" or not ours(have, lab):
                    continue
                label = "%s/%s" % (ns, name)
                changes.add("remove", label, "no longer declared", before="bridge")
                if not check:
                    try:
                        socks.get(ns).link("del", index=have["index"])
                    except NetlinkError as exc:
                        raise translate(exc, "remove bridge %s" % label)
                    tables.invalidate()
    return changes


def _detail(diff):
    return ", ".join("%s %s -> %s" % (k, a, b) for k, (a, b) in sorted(diff.items()))


# --------------------------------------------------------------------------- veths

def _label(end):
    return "%s/%s" % (end["netns"], end["ifname"])


class _Peers(object):
    """The namespace id under which namespace A sees namespace B (IFLA_LINK_NETNSID), cached."""

    def __init__(self, socks):
        self.socks = socks
        self.ids = {}

    def nsid(self, seen_from, other):
        key = (seen_from, other)
        if key not in self.ids:
            fd = namespace_fd(other)
            try:
                nsid = self.socks.get(seen_from).get_netnsid(fd=fd).get("nsid")
            finally:
                os.close(fd)
            self.ids[key] = None if nsid in (None, -1, 4294967295) else nsid
        return self.ids[key]


def _paired(peers, a, b, ha, hb):
    """True when the two existing ends are veths and each other's peer, namespaces included.

    An ifindex alone proves nothing (every fresh namespace numbers its first device 2), so
    each end's IFLA_LINK_NETNSID must name the other end's namespace, or be absent when
    both ends share one.
    """
    if ha is None or hb is None or ha["kind"] != "veth" or hb["kind"] != "veth":
        return False
    if ha["peer"] != hb["index"] or hb["peer"] != ha["index"]:
        return False
    if a["netns"] == b["netns"]:
        return ha["peer_netnsid"] is None and hb["peer_netnsid"] is None
    return (ha["peer_netnsid"] is not None
            and ha["peer_netnsid"] == peers.nsid(a["netns"], b["netns"])
            and hb["peer_netnsid"] == peers.nsid(b["netns"], a["netns"]))


def _wanted_end(tables, end, lab):
    """{attribute: value} of one end; master as the bridge's ifindex (its name while the
    bridge does not exist yet, in check mode, which never equals an ifindex)."""
    want = {"mtu": end["mtu"], "up": True, "alias": if_marker(lab), "master": None}
    if end.get("mac"):
        want["mac"] = end["mac"].lower()
    if end.get("master"):
        br = tables.get(end["netns"], end["master"])
        want["master"] = br["index"] if br else end["master"]
    return want


def _create_pair(tables, lab, pair):
    """Make a pair in one message: the end with a master (the bridge port) is created in its
    namespace with MTU, MAC, master and up; its peer goes straight into the other namespace
    with MTU and MAC. Then two sets: the alias of both, and up for the peer."""
    a, b = pair["a"], pair["b"]
    first, second = (b, a) if b.get("master") and not a.get("master") else (a, b)
    socks = tables.socks
    kw = {"ifname": first["ifname"], "kind": "veth", "mtu": first["mtu"], "state": "up", "group": GROUP}
    if first.get("mac"):
        kw["address"] = first["mac"]
    if first.get("master"):
        br = tables.get(first["netns"], first["master"])
        if br is None:
            raise NetnsError("bridge %s for %s does not exist" % (first["master"], _label(first)))
        kw["master"] = br["index"]
    peer = {"ifname": second["ifname"], "mtu": second["mtu"], "group": GROUP}
    if second.get("mac"):
        peer["address"] = second["mac"]
    fd = None
    if second["netns"] != first["netns"]:
        fd = namespace_fd(second["netns"])
        peer["net_ns_fd"] = fd
    try:
        socks.get(first["netns"]).link("add", peer=peer, **kw)
    finally:
        if fd is not None:
            os.close(fd)
    socks.get(first["netns"]).link("set", ifname=first["ifname"], ifalias=if_marker(lab))
    socks.get(second["netns"]).link("set", ifname=second["ifname"], ifalias=if_marker(lab), state="up")
    if second.get("master"):
        tables.refresh(second["netns"], second["ifname"])
        _fix_end(tables, second, lab)


def _fix_end(tables, end, lab):
    have = tables.get(end["netns"], end["ifname"])
    want = _wanted_end(tables, end, lab)
    diff = dict((k, (have.get(k), v)) for k, v in want.items() if have.get(k) != v)
    if not diff:
        return diff
    kw = {}
    for key, attr in (("mtu", "mtu"), ("mac", "address"), ("alias", "ifalias")):
        if key in diff:
            kw[attr] = want[key]
    if "master" in diff:
        if want["master"] is not None and not isinstance(want["master"], int):
            raise NetnsError("bridge %s for %s does not exist" % (want["master"], _label(end)))
        kw["master"] = want["master"] or 0
    ipr = tables.socks.get(end["netns"])
    if kw:
        ipr.link("set", index=have["index"], **kw)
    if "up" in diff:
        ipr.link("set", index=have["index"], state="up")
    return diff


def _converge_end(changes, tables, end, have, lab, check):
    """Compare an existing device ``have`` with ``end`` (MTU, MAC, master, up, alias): record
    one ``fix`` with every difference, and set them unless ``check``."""
    want = _wanted_end(tables, end, lab)
    diff = dict((k, (have.get(k), v)) for k, v in want.items() if have.get(k) != v)
    if not diff:
        return
    if "master" in diff:
        diff["master"] = (_master_name(tables, end["netns"], diff["master"][0]), end.get("master"))
    changes.add("fix", _label(end), _detail(diff), before=str(dict((k, x) for k, (x, y) in diff.items())),
                after=str(dict((k, y) for k, (x, y) in diff.items())))
    if not check:
        _fix_end(tables, end, lab)
        tables.refresh(end["netns"], end["ifname"])


def converge_veths(socks, lab, veths, scope, check, prune=True, tables=None):
    """veth pairs, each checked end to end (peer and namespace), attributes compared; prune
    the lab's undeclared veths in ``scope`` first. ``tables`` as for converge_bridges."""
    changes = Changes("veth")
    tables = tables or Tables(socks)
    peers = _Peers(socks)
    declared = set()
    for pair in veths:
        for end in (pair["a"], pair["b"]):
            declared.add((end["netns"], end["ifname"]))
    if prune:
        for ns in sorted(set(scope)):
            for name, have in sorted(tables.links(ns).items()):
                if (ns, name) in declared or have["kind"] != "veth" or not ours(have, lab):
                    continue
                changes.add("remove", "%s/%s" % (ns, name), "no longer declared", before="veth")
                if not check:
                    try:
                        socks.get(ns).link("del", index=have["index"])
                    except NetlinkError as exc:
                        raise translate(exc, "remove veth %s/%s" % (ns, name))
                    tables.invalidate()
    for pair in veths:
        a, b = pair["a"], pair["b"]
        name = "%s <-> %s" % (_label(a), _label(b))
        try:
            ha, hb = tables.get(a["netns"], a["ifname"]), tables.get(b["netns"], b["ifname"])
            if _paired(peers, a, b, ha, hb):
                for end, have in ((a, ha), (b, hb)):
                    _converge_end(changes, tables, end, have, lab, check)
                continue
            found = []
            for end, have in ((a, ha), (b, hb)):
                if have is None:
                    continue
                if not ours(have, lab):
                    raise NotOwned("%s exists (a %s) but was not made by topo for lab %s; remove or "
                                   "rename it" % (_label(end), have["kind"] or "device", lab))
                found.append(_label(end))
                if not check:
                    socks.get(end["netns"]).link("del", index=have["index"])
                    tables.invalidate()
            changes.add("create", name, "replaces %s" % ", ".join(found) if found else "",
                        after="mtu=%s" % a["mtu"])
            if not check:
                _create_pair(tables, lab, pair)
                tables.refresh(a["netns"], a["ifname"])
                tables.refresh(b["netns"], b["ifname"])
        except NetlinkError as exc:
            raise translate(exc, "veth %s" % name, kind="veth")
    return changes


def _master_name(tables, ns, index):
    if index is None:
        return None
    for name, link in tables.links(ns).items():
        if link["index"] == index:
            return name
    return index


# --------------------------------------------------------------------------- tunnels

TUNNEL_KINDS = ("vxlan", "gre", "gretap")


def _tunnel_identity(t):
    """The attributes fixed at creation: a tunnel that differs in any is made anew."""
    ident = {"kind": t["kind"], "local": t["local"], "remote": t["remote"], "ttl": t.get("ttl") or 0}
    if t["kind"] == "vxlan":
        ident.update(vni=t["vni"], dstport=t.get("dstport") or 4789, learning=bool(t.get("learning", True)),
                     srcport=list(t.get("srcport") or [0, 0]))
    else:
        ident["key"] = t.get("key")
    return ident


def _create_tunnel(tables, lab, t):
    ipr = tables.socks.get(t["netns"])
    kw = {"ifname": t["ifname"], "kind": t["kind"], "mtu": t["mtu"], "group": GROUP}
    ttl = t.get("ttl") or 0
    if t["kind"] == "vxlan":
        kw.update(vxlan_id=t["vni"], vxlan_local=t["local"], vxlan_group=t["remote"],
                  vxlan_port=t.get("dstport") or 4789, vxlan_learning=int(bool(t.get("learning", True))),
                  vxlan_ttl=ttl)
        if t.get("srcport"):
            kw["vxlan_port_range"] = {"low": t["srcport"][0], "high": t["srcport"][1]}
    else:
        kw.update(gre_local=t["local"], gre_remote=t["remote"], gre_ttl=ttl)
        if t.get("key") is not None:
            kw.update(gre_iflags=GRE_KEY, gre_oflags=GRE_KEY, gre_ikey=t["key"], gre_okey=t["key"])
    ipr.link("add", **kw)
    tables.refresh(t["netns"], t["ifname"])
    _fix_end(tables, t, lab)


def converge_tunnels(socks, lab, tunnels, scope, check, prune=True, tables=None):
    """VXLAN, GRE and gretap devices, one per tunnel end.

    Every attribute is compared. What the kernel fixes at creation (kind, local and remote
    address, VNI, UDP ports, learning, GRE key, TTL) differs: the device is removed and
    made again. MTU, bridge (master), up and the marker are fixed in place. The lab's
    undeclared tunnel devices in ``scope`` are pruned first. ``tables`` as for
    converge_bridges; bridges must exist before (converge_bridges runs first).
    """
    changes = Changes("tunnel")
    tables = tables or Tables(socks)
    declared = set((t["netns"], t["ifname"]) for t in tunnels)
    if prune:
        for ns in sorted(set(scope)):
            for name, have in sorted(tables.links(ns).items()):
                if ((ns, name) in declared or have["kind"] not in TUNNEL_KINDS
                        or not ours(have, lab)):
                    continue
                changes.add("remove", "%s/%s" % (ns, name), "%s no longer declared" % have["kind"],
                            before=have["kind"])
                if not check:
                    try:
                        socks.get(ns).link("del", index=have["index"])
                    except NetlinkError as exc:
                        raise translate(exc, "remove %s %s/%s" % (have["kind"], ns, name))
                    tables.forget(ns)
    for t in tunnels:
        label = _label(t)
        t = dict(t, mtu=t.get("mtu") or 1500)
        try:
            have = tables.get(t["netns"], t["ifname"])
            if have is not None and not ours(have, lab):
                raise NotOwned("%s exists (a %s) but was not made by topo for lab %s; remove or rename it"
                               % (label, have["kind"] or "device", lab))
            want = _tunnel_identity(t)
            if have is not None:
                diff = dict((k, (have.get(k), v)) for k, v in want.items() if have.get(k) != v)
                if not diff:
                    _converge_end(changes, tables, t, have, lab, check)
                    continue
                changes.add("fix", label, "recreated: " + _detail(diff),
                            before=str(dict((k, a) for k, (a, b) in diff.items())),
                            after=str(dict((k, b) for k, (a, b) in diff.items())))
                if not check:
                    socks.get(t["netns"]).link("del", index=have["index"])
                    tables.forget(t["netns"])
                    _create_tunnel(tables, lab, t)
                continue
            changes.add("create", label, "%s %s -> %s" % (t["kind"], t["local"], t["remote"]),
                        after=str(want))
            if not check:
                _create_tunnel(tables, lab, t)
        except NetlinkError as exc:
            raise translate(exc, "%s %s" % (t["kind"], label), kind=t["kind"])
    return changes


# --------------------------------------------------------------------------- addresses

def _addresses(ipr):
    """{ifindex: [(cidr, broadcast, secondary)]} of IPv4 addresses, in kernel order."""
    out = {}
    for m in ipr.get_addr(family=socket.AF_INET):
        cidr = "%s/%d" % (m.get_attr("IFA_ADDRESS"), m["prefixlen"])
        out.setdefault(m["index"], []).append(
            (cidr, m.get_attr("IFA_BROADCAST"), bool(m["flags"] & IFA_F_SECONDARY)))
    return out


def _broadcast(cidr):
    net = ipaddress.ip_interface(cidr).network
    return str(net.broadcast_address) if net.prefixlen < 31 else None


def converge_addresses(socks, lab, interfaces, check, tables=None):
    """Exactly the declared IPv4 addresses (with broadcast) on each listed interface.

    Removing a subnet's primary address makes the kernel drop its secondaries too
    (promote_secondaries is 0 in a new namespace). When a wanted secondary would go that
    way, promote_secondaries is set on that interface first, so it is promoted and kept.
    """
    changes = Changes("address")
    tables = tables or Tables(socks)
    by_ns = {}
    for item in interfaces:
        by_ns.setdefault(item["netns"], []).append(item)
    for ns in sorted(by_ns):
        ipr = socks.get(ns) if namespace_exists(ns) else None
        have_all = _addresses(ipr) if ipr is not None else {}
        for item in by_ns[ns]:
            name = "%s/%s" % (ns, item["ifname"])
            want = [str(ipaddress.ip_interface(a)) for a in item["addresses"]]
            link = tables.get(ns, item["ifname"]) if ipr is not None else None
            index = link["index"] if link else None
            if index is None and not check:
                raise NetnsError("interface %s does not exist" % name)
            have = have_all.get(index, [])
            dropped_subnets = set()
            removals = []
            for cidr, brd, secondary in have:
                if (item["ifname"], cidr) in KEEP_ADDRESSES:
                    continue
                if cidr in want and brd == _broadcast(cidr):
                    continue
                removals.append(cidr)
                if not secondary:
                    dropped_subnets.add(ipaddress.ip_interface(cidr).network)
                if cidr in want:
                    changes.add("fix", name, "%s broadcast %s -> %s" % (cidr, brd, _broadcast(cidr)),
                                before="%s brd %s" % (cidr, brd), after="%s brd %s" % (cidr, _broadcast(cidr)))
                else:
                    changes.add("remove", name, cidr, before=cidr)
            present = set(c for c, _, _ in have) - set(removals)
            keep_secondaries = any(sec and c in present and ipaddress.ip_interface(c).network in dropped_subnets
                                   for c, _, sec in have)
            for cidr in want:
                if cidr not in present and cidr not in removals:
                    changes.add("create", name, cidr, after=cidr)
            if check:
                continue
            try:
                if keep_secondaries:
                    conf_write(ns, item["ifname"], "promote_secondaries", 1)
                for cidr in removals:
                    iface = ipaddress.ip_interface(cidr)
                    ipr.addr("del", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
                now = set(c for c, _, _ in _addresses(ipr).get(index, []))
                for cidr in want:
                    if cidr not in now:
                        iface = ipaddress.ip_interface(cidr)
                        kw = {"broadcast": _broadcast(cidr)} if _broadcast(cidr) else {}
                        ipr.addr("add", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen, **kw)
            except NetlinkError as exc:
                raise translate(exc, "addresses of %s" % name)
    return changes


# --------------------------------------------------------------------------- routes

def converge_routes(socks, lab, routes, scope, check):
    """Exactly the declared routes (protocol 116) in each namespace of ``routes`` and ``scope``.

    A route to a declared destination that exists with another protocol was not made by
    topo and is refused, never replaced.
    """
    changes = Changes("route")
    wanted = {}
    for item in routes:
        table = wanted.setdefault(item["netns"], {})
        for r in item["routes"]:
            table[str(ipaddress.ip_network(r["dst"]))] = str(ipaddress.ip_address(r["gateway"]))
    for ns in sorted(set(wanted) | set(scope)):
        want = wanted.get(ns, {})
        exists = namespace_exists(ns)
        if not exists and not check:
            if want:
                raise NetnsError("namespace %s does not exist" % ns)
            continue
        ipr = socks.get(ns) if exists else None
        ours, foreign = {}, {}
        for msg in ipr.get_routes(family=socket.AF_INET, table=MAIN_TABLE) if ipr is not None else []:
            dst = "%s/%d" % (msg.get_attr("RTA_DST") or "0.0.0.0", msg["dst_len"])
            (ours if msg["proto"] == ROUTE_PROTO else foreign)[dst] = (msg.get_attr("RTA_GATEWAY"), msg["proto"])
        for dst in sorted(want):
            if dst in foreign:
                raise NotOwned("route %s in %s exists (protocol %s) but was not made by topo; remove it "
                               "or the declared route" % (dst, ns, foreign[dst][1]))
        for dst in sorted(set(ours) - set(want)):
            gw = ours[dst][0]
            changes.add("remove", "%s %s" % (ns, dst), "via %s" % gw, before="via %s" % gw)
            if not check:
                try:
                    ipr.route("del", dst=dst, gateway=gw, proto=ROUTE_PROTO)
                except NetlinkError as exc:
                    raise translate(exc, "remove route %s in %s" % (dst, ns))
        for dst in sorted(want):
            gw, old = want[dst], ours.get(dst, (None, None))[0]
            if old == gw:
                continue
            action = "fix" if dst in ours else "create"
            changes.add(action, "%s %s" % (ns, dst), "via %s" % gw if action == "create" else "via %s -> %s" % (old, gw),
                        before=("via %s" % old) if dst in ours else None, after="via %s" % gw)
            if not check:
                try:
                    ipr.route("replace", dst=dst, gateway=gw, proto=ROUTE_PROTO)
                except NetlinkError as exc:
                    raise translate(exc, "route %s via %s in %s" % (dst, gw, ns))
    return changes
