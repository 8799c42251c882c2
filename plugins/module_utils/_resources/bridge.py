# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the ``bridge`` kind - Linux bridges, every attribute compared (kind, up, MTU when
declared, IGMP snooping and querier, the lab's alias)."""

from __future__ import annotations

from ansible_collections.topo.lab.plugins.module_utils._netns import (
    GROUP, NetlinkError, NotOwned, bridge_add, if_marker, link_set, ours, translate,
)
from ansible_collections.topo.lab.plugins.module_utils._resources import LinkKind
from ansible_collections.topo.lab.plugins.module_utils._resources.links import differences, record_fix

#: The ``bridges`` option of topo.lab.bridge (and topo.lab.lab).
SPEC = dict(type="list", elements="dict", default=[], options=dict(
    netns=dict(type="str", required=True),
    name=dict(type="str", required=True),
    mtu=dict(type="int"),
    mcast_snooping=dict(type="bool", default=True),
    mcast_querier=dict(type="bool", default=False),
))


class Bridges(LinkKind):
    """Bridges. Items: [{netns, name, mtu: bytes or None (the kernel's), mcast_snooping: bool,
    mcast_querier: bool}]. A device of the lab under a declared name that is not a bridge is
    replaced; one without the lab's marker is refused (NotOwned). The lab's undeclared
    bridges in the scope are pruned after the declared ones are converged."""

    resource = "bridge"
    link_kinds = ("bridge",)

    def declare(self, items):
        return set((br["netns"], br["name"]) for br in items)

    def converge(self, items, changes):
        ctx, lab, check, tables = self.ctx, self.ctx.lab, self.ctx.check, self.ctx.tables
        for br in items:
            ns, name = br["netns"], br["name"]
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
                    ctx.gone(ns, name)
                    if not check:
                        ctx.socks.get(ns).link("del", index=have["index"])
                        tables.invalidate()
                    have = None
                if have is None:
                    changes.add("create", label, "", after=str(want))
                    if not check:
                        sock = ctx.socks.raw(ns)
                        bridge_add(sock, {"ifname": name, "mtu": want.get("mtu"), "group": GROUP},
                                   want["mcast_snooping"], want["mcast_querier"])
                        link_set(sock, name, alias=if_marker(lab))
                        tables.refresh(ns, name)
                    continue
                diff = differences(have, want)
                if not diff:
                    continue
                record_fix(changes, label, diff)
                if check:
                    continue
                ipr = ctx.socks.get(ns)
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
