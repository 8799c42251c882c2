# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the ``link`` kind - the administrative state (up or down) of the lab's
interfaces, set at runtime (``topo link``, and the ``during:`` of a check). Nothing is
created or pruned: only the up flag of an existing interface of the lab is compared and set.
Setting one end of a veth down takes the link down both ways (its peer loses carrier)."""

from __future__ import annotations

from collections import Counter

from ansible_collections.topo.lab.plugins.module_utils._netns import NetlinkError, NetnsError, NotOwned, ours, translate
from ansible_collections.topo.lab.plugins.module_utils._resources import Kind
from ansible_collections.topo.lab.plugins.module_utils._resources.links import label

#: The ``links`` option of topo.lab.link.
SPEC = dict(type="list", elements="dict", default=[], options=dict(
    netns=dict(type="str", required=True),
    ifname=dict(type="str", required=True),
    state=dict(type="str", choices=["up", "down"], required=True),
))


class LinkStates(Kind):
    """The up/down state of the listed interfaces.

    Items: [{netns, ifname, state: up|down}]. Each interface must exist (NetnsError naming
    it) and carry this lab's marker (NotOwned otherwise); ValueError for an interface listed
    twice. A difference is one ``fix`` change ``netns/ifname`` with detail ``up -> down``.
    """

    resource = "link"

    def declare(self, items):
        keys = [(item["netns"], item["ifname"]) for item in items]
        twice = sorted(key for key, n in Counter(keys).items() if n > 1)
        if twice:
            raise ValueError("the state of %s/%s is given twice" % twice[0])
        return set(keys)

    def converge(self, items, changes):
        lab, tables = self.ctx.lab, self.ctx.tables
        for item in items:
            name = label(item)
            link = tables.get(item["netns"], item["ifname"])
            if link is None:
                raise NetnsError("interface %s does not exist; apply the lab first" % name)
            if not ours(link, lab):
                raise NotOwned("%s exists but was not made by topo for lab %s (alias %r); topo sets the state "
                               "only of the lab's own interfaces" % (name, lab, link["alias"]))
            want = item["state"] == "up"
            if link["up"] == want:
                continue
            have = "up" if link["up"] else "down"
            changes.add("fix", name, "%s -> %s" % (have, item["state"]), before=have, after=item["state"])
            if not self.ctx.check:
                try:
                    self.ctx.socks.get(item["netns"]).link("set", index=link["index"], state=item["state"])
                except NetlinkError as exc:
                    raise translate(exc, "set %s %s" % (name, item["state"]))
                tables.refresh(item["netns"], item["ifname"])
