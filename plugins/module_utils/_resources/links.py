# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: links as every link kind (bridge, veth, tunnel, impairment) reads and sets them.

* :class:`Tables` - one link dump per namespace, shared by every pass of a run and kept
  current as links are made or removed (a 1000-node no-op re-apply dumps each namespace once);
* :func:`in_scope` - the lab's links of one kind in a prune scope, for :meth:`Kind.owned`;
* the attributes every end topo makes carries (MTU, MAC, master, up, the lab's alias),
  compared and set in place by :func:`converge_end` (veth ends and tunnel devices).

A link is a :func:`~.._netns.link_summary` dict (index, ifname, kind, alias, mtu, master,
up, peer, peer_netnsid, mac, group, qdisc, and per-kind keys).
"""

from __future__ import annotations

import os

from ansible_collections.topo.lab.plugins.module_utils._netns import (
    NetlinkError, NetnsError, if_marker, link_get, link_reading, links_by_name, namespace_exists, namespace_fd, netnsid,
    translate,
)


class Tables(object):
    """Link tables per namespace, read once and kept current as ends are made or removed.

    ``socks``: a :class:`~.._netns.Sockets`; ``exists(ns)``: whether a namespace exists
    (a :class:`~.Context` passes its own, which hides the namespaces the container pass will
    make anew). A missing namespace has an empty table.
    """

    def __init__(self, socks, exists=namespace_exists):
        self.socks = socks
        self.exists = exists
        self._tables = {}
        self._lost = {}

    def drop(self, ns, ifname):
        """Forget link ``ifname`` of ``ns`` without a new dump: it was deleted, or - in check
        mode - apply would delete it (to make it again, or to prune it), so the later passes
        of the run see it missing and predict what apply makes anew on it (addresses,
        impairment, bridge membership), and its routes count as lost (:meth:`routes_lost`,
        which only check mode reads). Returns the link (None if unknown)."""
        link = self.links(ns).pop(ifname, None)
        if link is not None:
            self.lose_routes(ns, link["index"])
        return link

    def lose_routes(self, ns, index, version=None):
        """Check mode: the routes through the link with ifindex ``index`` of ``ns`` go when
        apply runs - those of IP ``version`` (4 or 6), or of both when None (the link is
        deleted). The kernel flushes a device's IPv4 routes when its last IPv4 address goes,
        and all its routes with the device."""
        self._lost.setdefault(ns, set()).add((index, version))

    def routes_lost(self, ns, index, version):
        """True when :meth:`lose_routes` said the IPv``version`` routes through ifindex
        ``index`` of ``ns`` go."""
        lost = self._lost.get(ns, ())
        return (index, None) in lost or (index, version) in lost

    def links(self, ns):
        """{ifname: link} of namespace ``ns`` (dumped on first use)."""
        if ns not in self._tables:
            self._tables[ns] = links_by_name(self.socks.raw(ns)) if self.exists(ns) else {}
        return self._tables[ns]

    def get(self, ns, ifname):
        """The link ``ifname`` of namespace ``ns``, or None."""
        return self.links(ns).get(ifname)

    def refresh(self, ns, ifname):
        """Re-read one interface without re-dumping its namespace (one request, read by
        :func:`~.._netns.link_reading`)."""
        table = self.links(ns)
        try:
            data = link_get(self.socks.raw(ns), ifname, raw=True)
        except NetlinkError:
            table.pop(ifname, None)
            return None
        table[ifname] = link_reading(data)
        return table[ifname]

    def read(self):
        """Names of the namespaces whose table has been read (and not forgotten)."""
        return list(self._tables)

    def invalidate(self):
        """Forget every table: a removed veth end takes its peer, in any namespace, with it."""
        self._tables = {}

    def forget(self, ns):
        """Forget one namespace's table (the namespace is being removed)."""
        self._tables.pop(ns, None)


class Peers(object):
    """The namespace id under which namespace A sees namespace B (IFLA_LINK_NETNSID), cached.
    ``socks``: a :class:`~.._netns.Sockets`."""

    def __init__(self, socks):
        self.socks = socks
        self.ids = {}

    def nsid(self, seen_from, other):
        """The id (int) under which ``seen_from`` sees namespace ``other``; None for none."""
        key = (seen_from, other)
        if key not in self.ids:
            fd = namespace_fd(other)
            try:
                self.ids[key] = netnsid(self.socks.raw(seen_from), fd)
            finally:
                os.close(fd)
        return self.ids[key]


def peer_of(tables, peers, ns, link):
    """``(namespace, ifname)`` of the other end of the veth ``link`` of ``ns``, looked for in
    the namespaces ``tables`` has read (every lab namespace, in a lab run: the namespace
    pass reads them all); None when it is not a veth or its peer is not there. An ifindex
    alone proves nothing (fresh namespaces number alike): the peer must point back, and
    sit in the namespace ``link``'s IFLA_LINK_NETNSID names (``peers``: :class:`Peers`)."""
    if link.get("kind") != "veth" or link.get("peer") is None:
        return None
    nsid = link.get("peer_netnsid")
    for other in ([ns] if nsid is None else sorted(set(tables.read()) - {ns})):
        for name, end in sorted(tables.links(other).items()):
            if end["kind"] == "veth" and end["index"] == link["peer"] and end["peer"] == link["index"] \
                    and (nsid is None or peers.nsid(ns, other) == nsid):
                return other, name
    return None


def drop_link(tables, peers, ns, ifname):
    """Check mode: apply would delete link ``ifname`` of ``ns`` - and with a veth, its peer:
    both are forgotten (:meth:`Tables.drop`), so the later passes predict what goes with
    them. The one place a kind says "this link goes" in check mode."""
    link = tables.get(ns, ifname)
    if link is None:
        return
    peer = peer_of(tables, peers, ns, link)
    tables.drop(ns, ifname)
    if peer is not None:
        tables.drop(*peer)


def label(item):
    """``netns/ifname`` of a declared end, tunnel or impairment: the name its changes carry."""
    return "%s/%s" % (item["netns"], item["ifname"])


def detail(diff):
    """``key have -> want, ...`` of a {key: (have, want)} difference, keys sorted."""
    return ", ".join("%s %s -> %s" % (k, a, b) for k, (a, b) in sorted(diff.items()))


def differences(have, want):
    """{key: (have[key], want[key])} of every key of ``want`` whose value ``have`` lacks."""
    return dict((k, (have.get(k), v)) for k, v in want.items() if have.get(k) != v)


def in_scope(tables, scope, keep):
    """Yield ``((ns, ifname), "ns/ifname", link)`` for every link of the namespaces in
    ``scope`` (sorted, each table read when reached, so a removal that invalidated the
    tables is seen by the next namespace) for which ``keep(link)`` is true."""
    for ns in sorted(set(scope)):
        for name, link in sorted(tables.links(ns).items()):
            # a removal meanwhile (a veth's peer, in apply or check mode) took it
            if keep(link) and name in tables.links(ns):
                yield (ns, name), "%s/%s" % (ns, name), link


def delete(tables, ns, link, what):
    """Delete ``link`` (a link summary) in namespace ``ns``; NetnsError naming ``what``."""
    try:
        tables.socks.get(ns).link("del", index=link["index"])
    except NetlinkError as exc:
        raise translate(exc, what)


def record_fix(changes, name, diff, prefix=""):
    """Record one ``fix`` of ``name`` for a {key: (have, want)} ``diff``: the detail lists
    every difference (after ``prefix``), the diff lines the old and new values."""
    changes.add("fix", name, prefix + detail(diff), before=str(dict((k, a) for k, (a, b) in diff.items())),
                after=str(dict((k, b) for k, (a, b) in diff.items())))


def wanted_end(tables, end, lab):
    """{attribute: value} of one declared end (a veth end or a tunnel: netns, ifname, mtu,
    optional mac and master): mtu, up, alias (the lab's marker), mac when declared, and
    master as the bridge's ifindex (its name while the bridge does not exist yet, in check
    mode, which never equals an ifindex; None for no bridge)."""
    want = {"mtu": end["mtu"], "up": True, "alias": if_marker(lab), "master": None}
    if end.get("mac"):
        want["mac"] = end["mac"].lower()
    if end.get("master"):
        br = tables.get(end["netns"], end["master"])
        want["master"] = br["index"] if br else end["master"]
    return want


def fix_end(tables, end, lab):
    """Set what differs between the existing device of ``end`` and :func:`wanted_end`, in
    at most two messages; returns the {key: (have, want)} difference. NetnsError when the
    declared bridge does not exist; NetlinkError from the kernel."""
    have = tables.get(end["netns"], end["ifname"])
    want = wanted_end(tables, end, lab)
    diff = differences(have, want)
    if not diff:
        return diff
    kw = {}
    for key, attr in (("mtu", "mtu"), ("mac", "address"), ("alias", "ifalias")):
        if key in diff:
            kw[attr] = want[key]
    if "master" in diff:
        if want["master"] is not None and not isinstance(want["master"], int):
            raise NetnsError("bridge %s for %s does not exist" % (want["master"], label(end)))
        kw["master"] = want["master"] or 0
    ipr = tables.socks.get(end["netns"])
    if kw:
        ipr.link("set", index=have["index"], **kw)
    if "up" in diff:
        ipr.link("set", index=have["index"], state="up")
    return diff


def converge_end(changes, tables, end, have, lab, check, extra=None):
    """Compare an existing device ``have`` with ``end`` (MTU, MAC, master, up, alias): record
    one ``fix`` with every difference (master by bridge name), and set them unless ``check``.
    ``extra``: more {key: (have, want)} differences the caller sets itself, in the same fix."""
    diff = differences(have, wanted_end(tables, end, lab))
    diff.update(extra or {})
    if not diff:
        return
    if "master" in diff:
        diff["master"] = (_master_name(tables, end["netns"], diff["master"][0]), end.get("master"))
    record_fix(changes, label(end), diff)
    if not check:
        fix_end(tables, end, lab)
        tables.refresh(end["netns"], end["ifname"])


def _master_name(tables, ns, index):
    """The name of the link with ifindex ``index`` in ``ns`` (``index`` itself if none; None for None)."""
    if index is None:
        return None
    for name, link in tables.links(ns).items():
        if link["index"] == index:
            return name
    return index
