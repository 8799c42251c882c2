#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: veth
short_description: Converge the veth pairs of a topo lab, in one call
description:
  - Receives every veth pair the lab declares. Each pair is made in one netlink message
    with its peer placed directly in the other namespace, so no end ever appears in the
    root namespace and an interrupted create leaves no half pair behind.
  - A pair is correct only when both ends exist, are veths and are each other's peer;
    otherwise whatever exists of it is removed and the pair is made again.
  - On a correct pair every attribute of both ends is compared - MTU, MAC (when declared),
    bridge membership (master), administrative state, ownership alias - and only the
    difference is set.
  - With O(prune=true), veths carrying this lab's alias in O(namespaces) that no declared pair
    uses are removed (removing one end removes its peer).
author: topo developers
extends_documentation_fragment: [topo.lab.netlink]
options:
  lab: {description: Lab name; ends carry the alias C(topo:<lab>)., type: str, required: true}
  veths:
    description: The pairs; each has two ends, C(a) and C(b).
    type: list
    elements: dict
    default: []
    suboptions:
      a:
        description: First end.
        type: dict
        required: true
        options: &end
          netns: {description: Namespace of this end., type: str, required: true}
          ifname: {description: Interface name (at most 15 characters)., type: str, required: true}
          mtu: {description: MTU in bytes., type: int, default: 1500}
          mac: {description: MAC address; kernel-chosen when omitted., type: str}
          master: {description: Name of a bridge in the same namespace to enslave this end to., type: str}
      b:
        description: Second end.
        type: dict
        required: true
        options: *end
  namespaces:
    description: Namespaces in which undeclared veths of this lab are pruned.
    type: list
    elements: str
    default: []
  prune: {description: Remove undeclared veths of this lab., type: bool, default: true}
"""

EXAMPLES = r"""
- name: A host on a LAN bridge and a point-to-point link
  topo.lab.veth:
    lab: demo
    veths:
      - a: {netns: topo-demo-h1, ifname: eth0}
        b: {netns: topo-demo-lan, ifname: h1-eth0, master: br0}
      - a: {netns: topo-demo-r1, ifname: eth1, mtu: 9000}
        b: {netns: topo-demo-r2, ifname: eth1, mtu: 9000}
    namespaces: [topo-demo-h1, topo-demo-lan, topo-demo-r1, topo-demo-r2]
"""

RETURN = r"""
changes:
  description: One entry per pair created or removed, or end fixed.
  returned: always
  type: list
  elements: dict
  sample: [{action: fix, resource: veth, name: "topo-demo-h1/eth0", detail: "mtu 1400 -> 1500"}]
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._netns import (
    run,
    Changes, NetlinkError, NetnsError, NotOwned, if_marker, link_summary, links_by_name,
    namespace_exists, namespace_fd, owns_interface, translate,
)


def label(end):
    return "%s/%s" % (end["netns"], end["ifname"])


class State(object):
    """Cached link tables per namespace, dropped after any deletion."""

    def __init__(self, socks):
        self.socks = socks
        self.tables = {}

    def links(self, ns):
        if ns not in self.tables:
            self.tables[ns] = links_by_name(self.socks.get(ns)) if namespace_exists(ns) else {}
        return self.tables[ns]

    def get(self, end):
        return self.links(end["netns"]).get(end["ifname"])

    def refresh(self, end):
        """Re-read one end (after it was made or changed) without re-dumping its namespace."""
        table = self.links(end["netns"])
        try:
            msg = self.socks.get(end["netns"]).link("get", ifname=end["ifname"])[0]
        except NetlinkError:
            table.pop(end["ifname"], None)
            return None
        table[end["ifname"]] = link_summary(msg)
        return table[end["ifname"]]

    def invalidate(self):
        """Forget every table: a deleted end may take a peer in any namespace with it."""
        self.tables = {}


def wanted(state, end, lab):
    """{attribute: desired value} for one end; master is resolved to an ifindex.

    A master bridge that does not exist yet (check mode on a new lab) is left as its
    name, which never equals an ifindex, so the end shows as needing a fix.
    """
    want = {"mtu": end["mtu"], "up": True, "alias": if_marker(lab)}
    if end.get("mac"):
        want["mac"] = end["mac"].lower()
    master = None
    if end.get("master"):
        br = state.links(end["netns"]).get(end["master"])
        master = br["index"] if br else end["master"]
    want["master"] = master
    return want


def set_end(ipr, index, want, diff, ifname):
    kw = {}
    for key in ("mtu", "mac", "alias"):
        if key in diff:
            kw[{"mac": "address", "alias": "ifalias"}.get(key, key)] = want[key]
    if "master" in diff:
        if want["master"] is not None and not isinstance(want["master"], int):
            raise NetnsError("bridge %s for %s does not exist" % (want["master"], ifname))
        kw["master"] = want["master"] or 0
    if kw:
        ipr.link("set", index=index, **kw)
    if "up" in diff:
        ipr.link("set", index=index, state="up")


def end_diff(have, want):
    return {k: (have.get(k), v) for k, v in want.items() if have.get(k) != v}


def create_pair(state, lab, pair):
    a, b = pair["a"], pair["b"]
    ipr_a = state.socks.get(a["netns"])
    peer = {"ifname": b["ifname"]}
    fd = None
    if b["netns"] != a["netns"]:
        fd = namespace_fd(b["netns"])
        peer["net_ns_fd"] = fd
    try:
        ipr_a.link("add", ifname=a["ifname"], kind="veth", peer=peer)
    finally:
        if fd is not None:
            os.close(fd)
    for end in (a, b):
        have = state.refresh(end)
        want = wanted(state, end, lab)
        set_end(state.socks.get(end["netns"]), have["index"], want, end_diff(have, want),
                end["ifname"])


def remove(state, end, have, lab, check):
    """Remove an existing end of a broken pair, refusing devices topo did not make."""
    if have["kind"] != "veth" and not owns_interface(have["alias"], lab):
        raise NotOwned("%s exists as a %s not made by topo; rename it or the link"
                       % (label(end), have["kind"] or "device"))
    if not check:
        state.socks.get(end["netns"]).link("del", index=have["index"])
        state.invalidate()


def converge(module, socks):
    p = module.params
    lab, check = p["lab"], module.check_mode
    changes = Changes("veth")
    state = State(socks)
    declared = set()
    for pair in p["veths"]:
        for end in (pair["a"], pair["b"]):
            declared.add((end["netns"], end["ifname"]))

    if p["prune"]:
        for ns in sorted(set(p["namespaces"])):
            for name, have in sorted(state.links(ns).items()):
                if (ns, name) in declared or have["kind"] != "veth":
                    continue
                if not owns_interface(have["alias"], lab):
                    continue
                changes.add("remove", "%s/%s" % (ns, name), "no longer declared", before="veth")
                if not check:
                    try:
                        socks.get(ns).link("del", index=have["index"])
                    except NetlinkError as exc:
                        raise translate(exc, "remove veth %s/%s" % (ns, name))
                    state.invalidate()

    for pair in p["veths"]:
        a, b = pair["a"], pair["b"]
        name = "%s <-> %s" % (label(a), label(b))
        try:
            ha, hb = state.get(a), state.get(b)
            paired = (ha is not None and hb is not None and ha["kind"] == "veth"
                      and hb["kind"] == "veth" and ha["peer"] == hb["index"]
                      and hb["peer"] == ha["index"])
            if not paired:
                found = [label(e) for e, h in ((a, ha), (b, hb)) if h is not None]
                for end, have in ((a, ha), (b, hb)):
                    if have is not None:
                        remove(state, end, have, lab, check)
                detail = "replaces %s" % ", ".join(found) if found else ""
                changes.add("create", name, detail, after="mtu=%s" % a["mtu"])
                if not check:
                    create_pair(state, lab, pair)
                continue
            for end, have in ((a, ha), (b, hb)):
                want = wanted(state, end, lab)
                diff = end_diff(have, want)
                if not diff:
                    continue
                detail = ", ".join("%s %s -> %s" % (k, x, y) for k, (x, y) in sorted(diff.items()))
                changes.add("fix", label(end), detail,
                            before=str({k: x for k, (x, y) in diff.items()}),
                            after=str({k: y for k, (x, y) in diff.items()}))
                if not check:
                    set_end(socks.get(end["netns"]), have["index"], want, diff, end["ifname"])
                    state.refresh(end)
        except NetlinkError as exc:
            raise translate(exc, "veth %s" % name, kind="veth")
    return changes.result()


def main():
    end = dict(
        netns=dict(type="str", required=True),
        ifname=dict(type="str", required=True),
        mtu=dict(type="int", default=1500),
        mac=dict(type="str"),
        master=dict(type="str"),
    )
    module = AnsibleModule(
        argument_spec=dict(
            lab=dict(type="str", required=True),
            veths=dict(type="list", elements="dict", default=[], options=dict(
                a=dict(type="dict", required=True, options=end),
                b=dict(type="dict", required=True, options=end),
            )),
            namespaces=dict(type="list", elements="str", default=[]),
            prune=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    run(module, converge)


if __name__ == "__main__":
    main()
