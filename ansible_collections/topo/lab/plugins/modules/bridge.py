#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: bridge
short_description: Converge the Linux bridges of a topo lab, in one call
description:
  - Receives every bridge the lab declares and makes each namespace match it.
  - Every attribute is compared, not only existence - kind, administrative state, MTU (when
    declared), IGMP snooping and querier - and only what differs is changed.
  - A bridge topo makes carries the alias C(topo:<lab>). An interface with the declared name
    that is not a bridge is replaced when it is topo's and refused when it is not.
  - With O(prune=true), bridges with this lab's alias in O(namespaces) that are no longer
    declared are removed.
author: topo developers
extends_documentation_fragment: [topo.lab.netlink]
options:
  lab: {description: Lab name; bridges carry the alias C(topo:<lab>)., type: str, required: true}
  bridges:
    description: The bridges the lab declares.
    type: list
    elements: dict
    default: []
    suboptions:
      netns: {description: Namespace the bridge lives in., type: str, required: true}
      name: {description: Interface name (at most 15 characters)., type: str, required: true}
      mtu: {description: MTU in bytes; left to the kernel when omitted., type: int}
      mcast_snooping: {description: IGMP snooping (kernel default on)., type: bool, default: true}
      mcast_querier: {description: Act as IGMP querier., type: bool, default: false}
  namespaces:
    description: Namespaces in which undeclared bridges of this lab are pruned.
    type: list
    elements: str
    default: []
  prune: {description: Remove undeclared bridges of this lab., type: bool, default: true}
"""

EXAMPLES = r"""
- name: Bridges of lab demo
  topo.lab.bridge:
    lab: demo
    bridges:
      - {netns: topo-demo-lan, name: br0, mcast_querier: true}
    namespaces: [topo-demo-lan]
"""

RETURN = r"""
changes:
  description: One entry per bridge created, fixed or removed.
  returned: always
  type: list
  elements: dict
  sample: [{action: fix, resource: bridge, name: "topo-demo-lan/br0", detail: "mcast_querier 0 -> 1"}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._netns import (
    run,
    Changes, NetlinkError, NotOwned, if_marker, links_by_name,
    namespace_exists, owns_interface, translate,
)


def wanted_attrs(br):
    """The attributes compared for one declared bridge, as {name: value}."""
    want = {"up": True, "mcast_snooping": int(br["mcast_snooping"]),
            "mcast_querier": int(br["mcast_querier"])}
    if br.get("mtu"):
        want["mtu"] = br["mtu"]
    return want


def create(ipr, lab, br):
    ipr.link("add", ifname=br["name"], kind="bridge",
             br_mcast_snooping=int(br["mcast_snooping"]),
             br_mcast_querier=int(br["mcast_querier"]))
    idx = ipr.link_lookup(ifname=br["name"])[0]
    kw = {"state": "up", "ifalias": if_marker(lab)}
    if br.get("mtu"):
        kw["mtu"] = br["mtu"]
    ipr.link("set", index=idx, **kw)


def converge(module, socks):
    p = module.params
    lab, check = p["lab"], module.check_mode
    changes = Changes("bridge")
    declared = set()
    current = {}

    def links(ns):
        if ns not in current:
            current[ns] = links_by_name(socks.get(ns)) if namespace_exists(ns) else {}
        return current[ns]

    for br in p["bridges"]:
        ns, name = br["netns"], br["name"]
        declared.add((ns, name))
        label = "%s/%s" % (ns, name)
        want = wanted_attrs(br)
        have = links(ns).get(name)
        try:
            if have is not None and have["kind"] != "bridge":
                if not owns_interface(have["alias"], lab):
                    raise NotOwned("%s exists as a %s not made by topo; rename it or the bridge"
                                   % (label, have["kind"] or "device"))
                changes.add("remove", label, "is a %s, not a bridge" % have["kind"])
                if not check:
                    socks.get(ns).link("del", index=have["index"])
                have = None
            if have is None:
                changes.add("create", label, "", after=str(want))
                if not check:
                    create(socks.get(ns), lab, br)
                continue
            diff = {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}
            if not owns_interface(have["alias"], lab):
                diff["alias"] = (have["alias"], if_marker(lab))
            if not diff:
                continue
            detail = ", ".join("%s %s -> %s" % (k, a, b) for k, (a, b) in sorted(diff.items()))
            changes.add("fix", label, detail,
                        before=str({k: a for k, (a, b) in diff.items()}),
                        after=str({k: b for k, (a, b) in diff.items()}))
            if check:
                continue
            ipr = socks.get(ns)
            kw = {}
            if "up" in diff:
                kw["state"] = "up"
            if "mtu" in diff:
                kw["mtu"] = want["mtu"]
            if "alias" in diff:
                kw["ifalias"] = if_marker(lab)
            if kw:
                ipr.link("set", index=have["index"], **kw)
            br_kw = {"br_" + k: want[k] for k in ("mcast_snooping", "mcast_querier") if k in diff}
            if br_kw:
                ipr.link("set", index=have["index"], kind="bridge", **br_kw)
        except NetlinkError as exc:
            raise translate(exc, "bridge %s" % label, kind="bridge")

    if p["prune"]:
        for ns in sorted(set(p["namespaces"])):
            for name, have in sorted(links(ns).items()):
                if (ns, name) in declared or have["kind"] != "bridge":
                    continue
                if not owns_interface(have["alias"], lab):
                    continue
                label = "%s/%s" % (ns, name)
                changes.add("remove", label, "no longer declared", before="bridge")
                if not check:
                    try:
                        socks.get(ns).link("del", index=have["index"])
                    except NetlinkError as exc:
                        raise translate(exc, "remove bridge %s" % label)
    return changes.result()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            lab=dict(type="str", required=True),
            bridges=dict(type="list", elements="dict", default=[], options=dict(
                netns=dict(type="str", required=True),
                name=dict(type="str", required=True),
                mtu=dict(type="int"),
                mcast_snooping=dict(type="bool", default=True),
                mcast_querier=dict(type="bool", default=False),
            )),
            namespaces=dict(type="list", elements="str", default=[]),
            prune=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    run(module, converge)


if __name__ == "__main__":
    main()
