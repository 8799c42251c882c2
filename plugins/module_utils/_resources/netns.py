# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the ``netns`` kind - named network namespaces with lo up, the lab's marker on lo
and their sysctls - and the one scan of lab markers (:func:`marked_namespaces`), which the
front end's ``labs_in_kernel`` uses too.

A namespace's marker is the alias of its ``lo``: ``topo:<lab>:<node>``
(:func:`~.._netns.ns_marker`), written before the namespace is named, so a namespace
without it was not made by topo and is never touched.
"""

from __future__ import annotations

from ansible_collections.topo.lab.plugins.module_utils._netns import (
    MARKER, NetlinkError, NetnsError, NotOwned, create_namespace, delete_namespace, list_namespaces, lo_alias,
    namespace_exists, ns_marker, sysctl_read, sysctl_write,
)
from ansible_collections.topo.lab.plugins.module_utils._resources import Kind
from ansible_collections.topo.lab.plugins.module_utils._resources.links import delete, peer_of

#: The ``namespaces`` option of topo.lab.netns (and topo.lab.lab).
SPEC = dict(type="list", elements="dict", default=[], options=dict(
    name=dict(type="str", required=True),
    node=dict(type="str", required=True),
    sysctls=dict(type="dict", default={}),
    kind=dict(type="str", default="netns", choices=["netns", "docker"]),
))


def parse_marker(alias):
    """``(lab, node)`` of a namespace marker ``topo:<lab>:<node>``; None for any other alias
    (None included)."""
    if not alias or not alias.startswith(MARKER):
        return None
    parts = alias.split(":")
    return (parts[1], parts[2]) if len(parts) == 3 else None


def read_marker(name):
    """The alias of lo in namespace ``name`` (str or None), or None when unreadable
    (:func:`~.._netns.lo_alias`: one request, no ``IPRoute`` socket)."""
    try:
        return lo_alias(name)
    except (NetnsError, OSError, NetlinkError):
        return None


def marked_namespaces(lo_alias, exists=namespace_exists):
    """The lab-marker scan: {namespace: (lab, node)} of every namespace named under
    /run/netns (and ``exists``) whose lo carries a topo marker.

    ``lo_alias(name)`` returns lo's alias (str or None); a namespace it cannot read
    (NetnsError, OSError, NetlinkError: it went away meanwhile) is skipped.
    """
    out = {}
    for name in list_namespaces():
        if not exists(name):
            continue
        try:
            marker = parse_marker(lo_alias(name))
        except (NetnsError, OSError, NetlinkError):
            continue
        if marker is not None:
            out[name] = marker
    return out


def labs_in_kernel():
    """Names of the labs that own at least one namespace, sorted (reads only each lo)."""
    return sorted(set(lab for lab, _ in marked_namespaces(read_marker).values()))


def owned_namespaces(tables, lab, dump=True):
    """{namespace: node} of every namespace whose lo carries ``lab``'s marker.

    Every namespace's marker is read. With ``dump``, those named ``topo-<lab>-...`` (the
    names topo gives; the marker still decides) are read by dumping their whole link table
    into ``tables`` (a :class:`~.links.Tables`), which the bridge, veth and address passes of
    the same run need anyway; any other namespace, and every one without ``dump`` (a run
    that only removes), by reading lo alone (:func:`read_marker`).
    """
    prefix = "topo-%s-" % lab

    def alias(name):
        if dump and name.startswith(prefix):
            lo = tables.get(name, "lo")
            return lo["alias"] if lo else None
        return lo_alias(name)
    return dict((name, node) for name, (owner, node) in marked_namespaces(alias, tables.exists).items()
                if owner == lab)


class Namespaces(Kind):
    """Namespaces with lo up, the lab's marker and their sysctls; the lab's undeclared ones
    are pruned (whatever the scope: every namespace is scanned for the marker).

    Items: [{name, node, sysctls: {dotted key: value}, kind: netns|docker}]. A ``docker``
    namespace is not made here but by the container pass, which names the container's own
    namespace (NetnsError when it has not); here it gets its sysctls like any other.
    The result's extra key ``owned`` lists the lab's namespaces found before the change.
    """

    resource = "netns"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.nodes = {}
        self.declared = set()

    def declare(self, items):
        # With nothing declared (destroy) every owned namespace goes: read only markers.
        self.nodes = owned_namespaces(self.ctx.tables, self.ctx.lab, dump=bool(items))
        self.declared = set(ns["name"] for ns in items)
        return self.declared

    def converge(self, items, changes):
        ctx, lab, check = self.ctx, self.ctx.lab, self.ctx.check
        changes.extra["owned"] = sorted(self.nodes)
        for ns in items:
            name = ns["name"]
            marker = ns_marker(lab, ns["node"])
            sysctls = dict((k, str(v)) for k, v in (ns.get("sysctls") or {}).items())
            exists = ctx.exists(name)
            if not exists and ns.get("kind") == "docker":
                # The container pass names a docker node's namespace; in check mode it has
                # already reported the container it would make.
                if check:
                    continue
                raise NetnsError("namespace %s of docker node %s is not named; the container pass "
                                 "(topo.lab.container) must run first" % (name, ns["node"]))
            if not exists:
                changes.add("create", name, "node=%s" % ns["node"], after="node=%s %s" % (ns["node"], sysctls))
                if not check:
                    create_namespace(name, marker, ctx.socks)
                    ctx.created.add(name)
                    for key, value in sorted(sysctls.items()):
                        sysctl_write(name, key, value)
                continue
            if name not in self.nodes:
                raise NotOwned("namespace %s exists but was not made by topo for lab %s (lo alias %r); "
                               "remove or rename it" % (name, lab, read_marker(name)))
            if self.nodes[name] != ns["node"]:
                changes.add("fix", name, "marker node %s -> %s" % (self.nodes[name], ns["node"]))
                if not check:
                    ctx.socks.get(name).link("set", index=1, ifalias=marker)
            if not ctx.tables.get(name, "lo")["up"]:  # declared ones only: destroy dumps no table
                changes.add("fix", name, "lo down -> up", before="lo down", after="lo up")
                if not check:
                    ctx.socks.get(name).link("set", index=1, state="up")
            for key, value in sorted(sysctls.items()):
                current = sysctl_read(name, key)
                if current != value:
                    changes.add("fix", name, "%s %s -> %s" % (key, current, value),
                                before="%s=%s" % (key, current), after="%s=%s" % (key, value))
                    if not check:
                        sysctl_write(name, key, value)

    def owned(self, scope):
        for name in sorted(self.nodes):
            yield name, name, self.nodes[name]

    def removal(self, node):
        return "node=%s" % node, "node=%s" % node

    def _kept_peers(self, name):
        """``(ifname, link, (namespace, ifname))`` of each veth of namespace ``name`` whose
        peer is in a namespace that stays declared."""
        tables = self.ctx.tables
        if not self.declared:  # destroy: every namespace goes, no peer stays
            return
        for ifname, link in sorted(tables.links(name).items()):
            peer = peer_of(tables, self.ctx.peers, name, link)
            if peer is not None and peer[0] in self.declared:
                yield ifname, link, peer

    def forecast(self, name, node):
        # its links go with it, and the peers of its veths in the namespaces that stay
        for _, _, peer in list(self._kept_peers(name)):
            self.ctx.tables.drop(*peer)
        self.ctx.fresh.add(name)
        self.ctx.tables.forget(name)

    def remove(self, name, node):
        # The kernel frees an unnamed namespace - and its veths - in its own time, so a peer
        # in a namespace that stays could still be there when the veth pass prunes (and be
        # listed, or not, by chance): such veths are deleted first, which takes the peer at once.
        for ifname, link, peer in list(self._kept_peers(name)):
            delete(self.ctx.tables, name, link, "remove veth %s/%s" % (name, ifname))
            self.ctx.tables.drop(*peer)
        self.ctx.socks.forget(name)
        self.ctx.tables.forget(name)
        delete_namespace(name)
