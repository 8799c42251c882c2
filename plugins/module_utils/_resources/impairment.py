# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the ``impair`` kind - egress impairments (delay, jitter, loss: netem; rate: tbf) of
the lab's interfaces. The shapes, their kernel encoding and read-back are in
:mod:`.._qdisc`; topo's root qdisc always has handle ``7470:``."""

from __future__ import annotations

from ansible_collections.topo.lab.plugins.module_utils._netns import NetlinkError, NetnsError, NotOwned, ours, translate
from ansible_collections.topo.lab.plugins.module_utils._resources import Kind
from ansible_collections.topo.lab.plugins.module_utils._resources.links import in_scope, label

#: The ``impairments`` option of topo.lab.impair (and topo.lab.lab).
SPEC = dict(type="list", elements="dict", default=[], options=dict(
    netns=dict(type="str", required=True),
    ifname=dict(type="str", required=True),
    delay=dict(type="float"),
    jitter=dict(type="float"),
    loss=dict(type="float"),
    rate=dict(type="int"),
))


def _qdisc():
    """:mod:`.._qdisc`, imported on first use: it imports pyroute2's tc message classes (about
    0.07 s on the project's 2-core reference machine), which a run that finds no impairment
    declared and no netem or tbf qdisc on the lab's links never needs."""
    from ansible_collections.topo.lab.plugins.module_utils import _qdisc as qdisc
    return qdisc


class Impairments(Kind):
    """Egress impairments of the listed interfaces; topo's qdisc is removed from the lab's
    other interfaces in the scope (prune, after the listed ones).

    Items: [{netns, ifname, delay: ms, jitter: ms, loss: percent (0-100), rate: bit/s}],
    each value None or 0 when unset; an item with nothing set removes topo's qdisc from that
    interface. Interfaces must carry this lab's marker (NotOwned otherwise); a root qdisc that
    is not topo's (handle other than 7470:) is replaced on a listed interface and left alone
    on any other. ValueError for an interface listed twice or a value the kernel cannot
    hold; NetnsError for a missing interface (outside check mode).
    """

    resource = "impair"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.qdiscs = {}

    def roots(self, ns):
        """{ifindex: (root, child)} qdisc messages of namespace ``ns``, dumped once."""
        if ns not in self.qdiscs:
            self.qdiscs[ns] = _qdisc().read_roots(self.ctx.socks.get(ns)) if self.ctx.tables.links(ns) else {}
        return self.qdiscs[ns]

    def declare(self, items):
        declared = set()
        for item in items:
            key = (item["netns"], item["ifname"])
            if key in declared:
                raise ValueError("impairment of %s is declared twice" % label(item))
            declared.add(key)
        return declared

    def converge(self, items, changes):
        lab, check, tables = self.ctx.lab, self.ctx.check, self.ctx.tables
        q = _qdisc() if items else None
        for item in items:
            ns, name = item["netns"], label(item)
            link = tables.get(ns, item["ifname"])
            want = q.wanted(item, link["mtu"] if link else 1500)
            if link is None:
                if not check:
                    raise NetnsError("interface %s does not exist" % name)
                if want:
                    changes.add("create", name, q.describe(want), after=q.describe(want))
                continue
            if not ours(link, lab):
                raise NotOwned("%s exists but was not made by topo for lab %s (alias %r); impairments "
                               "go only on the lab's own interfaces" % (name, lab, link["alias"]))
            root, child = self.roots(ns).get(link["index"], (None, None))
            have = q.decode(root, child)
            diff = q.differences(have or {}, want)
            if not diff:
                continue
            if have is None:
                foreign = root is not None and root["handle"] not in (0, q.HANDLE)
                detail = q.describe(want) + ("; replaces %s %x:" % (root.get_attr("TCA_KIND"), root["handle"] >> 16)
                                           if foreign else "")
                changes.add("create", name, detail, after=q.describe(want))
            elif want:
                changes.add("fix", name, q.describe_diff(diff), before=q.describe(have), after=q.describe(want))
            else:
                changes.add("remove", name, q.describe(have), before=q.describe(have))
            if not check:
                self._apply(ns, link, root, have, want, name)

    def owned(self, scope):
        lab = self.ctx.lab
        # the link dump names each root qdisc: no qdisc dump where none is topo's
        for key, name, link in in_scope(self.ctx.tables, scope,
                                        lambda link: link.get("qdisc") in ("netem", "tbf")):
            root, child = self.roots(key[0]).get(link["index"], (None, None))
            have = _qdisc().decode(root, child)
            if have is not None and ours(link, lab):
                yield key, name, (link, root, have)

    def removal(self, found):
        have, q = found[2], _qdisc()
        return "no longer declared: %s" % q.describe(have), q.describe(have)

    def remove(self, key, found):
        link, root, have = found
        self._apply(key[0], link, root, have, {}, "%s/%s" % key)

    def _apply(self, ns, link, root, have, want, name):
        try:
            _qdisc().apply(self.ctx.socks.get(ns), link["index"], root.get_attr("TCA_KIND") if have is not None else None,
                  have or {}, want)
        except NetlinkError as exc:
            raise translate(exc, "impairment of %s" % name)
