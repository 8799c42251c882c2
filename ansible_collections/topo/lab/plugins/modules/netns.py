#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: netns
short_description: Converge the named network namespaces of a topo lab, in one call
description:
  - Receives the whole list of namespaces a lab declares and makes the kernel match it.
  - A namespace is created with C(lo) up and the ownership marker C(topo:<lab>:<node>) as
    the alias of C(lo), written before the namespace becomes visible under C(/run/netns),
    so a namespace that carries no marker was not made by topo and is never touched.
  - Each declared sysctl (for example C(net.ipv4.ip_forward)) is read inside the namespace
    and written only when it differs.
  - With O(prune=true), namespaces marked as this lab's but no longer declared are removed,
    with every interface in them.
  - With O(state=absent), every namespace marked as this lab's is removed, whatever the list
    says; this is how C(topo destroy) works with the topology file gone.
author: topo developers
extends_documentation_fragment: [topo.lab.netlink]
options:
  lab:
    description: Lab name; part of every marker.
    type: str
    required: true
  namespaces:
    description: The namespaces the lab declares.
    type: list
    elements: dict
    default: []
    suboptions:
      name: {description: Namespace name (a file under C(/run/netns)), type: str, required: true}
      node: {description: Node or bridge the namespace holds, type: str, required: true}
      sysctls:
        description: Sysctls to hold inside the namespace, dotted keys to values.
        type: dict
        default: {}
  state:
    description: C(present) converges to the list; C(absent) removes all of the lab's namespaces.
    type: str
    choices: [present, absent]
    default: present
  prune:
    description: With C(present), remove the lab's namespaces that are not in the list.
    type: bool
    default: true
"""

EXAMPLES = r"""
- name: Namespaces of lab demo
  topo.lab.netns:
    lab: demo
    namespaces:
      - {name: topo-demo-h1, node: h1}
      - {name: topo-demo-r1, node: r1, sysctls: {net.ipv4.ip_forward: "1"}}

- name: Remove everything lab demo owns
  topo.lab.netns:
    lab: demo
    state: absent
"""

RETURN = r"""
changes:
  description: One entry per namespace created, fixed or removed.
  returned: always
  type: list
  elements: dict
  sample: [{action: create, resource: netns, name: topo-demo-h1, detail: "node=h1"}]
owned:
  description: Names of the lab's namespaces found before the change.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._netns import (
    run,
    Changes, NetnsError, NotOwned, MARKER, create_namespace, delete_namespace,
    list_namespaces, namespace_exists, ns_marker, sysctl_read,
    sysctl_write,
)


def read_marker(socks, name):
    """The alias of lo in namespace ``name``, or None when unreadable."""
    try:
        lo = socks.get(name).get_links(1)[0]
    except (NetnsError, OSError):
        return None
    return lo.get_attr("IFLA_IFALIAS")


def owned_namespaces(socks, lab):
    """{namespace: node} of every namespace whose lo carries lab's marker."""
    prefix = "%s%s:" % (MARKER, lab)
    owned = {}
    for name in list_namespaces():
        if not namespace_exists(name):
            continue
        alias = read_marker(socks, name)
        if alias and alias.startswith(prefix):
            owned[name] = alias[len(prefix):]
    return owned


def converge(module, socks):
    p = module.params
    lab = p["lab"]
    check = module.check_mode
    changes = Changes("netns")
    owned = owned_namespaces(socks, lab)
    declared = {}
    if p["state"] == "present":
        for ns in p["namespaces"]:
            declared[ns["name"]] = ns
            marker = ns_marker(lab, ns["node"])
            sysctls = {k: str(v) for k, v in (ns.get("sysctls") or {}).items()}
            if not namespace_exists(ns["name"]):
                changes.add("create", ns["name"], "node=%s" % ns["node"],
                            after="node=%s %s" % (ns["node"], sysctls or ""))
                if not check:
                    create_namespace(ns["name"], marker)
                    for key, value in sorted(sysctls.items()):
                        sysctl_write(ns["name"], key, value)
                continue
            if ns["name"] not in owned:
                raise NotOwned("namespace %s exists but was not made by topo for lab %s "
                               "(lo alias %r); remove or rename it"
                               % (ns["name"], lab, read_marker(socks, ns["name"])))
            if owned[ns["name"]] != ns["node"]:
                changes.add("fix", ns["name"], "marker node %s -> %s" % (owned[ns["name"]], ns["node"]))
                if not check:
                    socks.get(ns["name"]).link("set", index=1, ifalias=marker)
            lo = socks.get(ns["name"]).get_links(1)[0]
            if not lo["flags"] & 1:
                changes.add("fix", ns["name"], "lo down -> up", before="lo down", after="lo up")
                if not check:
                    socks.get(ns["name"]).link("set", index=1, state="up")
            for key, value in sorted(sysctls.items()):
                current = sysctl_read(ns["name"], key)
                if current != value:
                    changes.add("fix", ns["name"], "%s %s -> %s" % (key, current, value),
                                before="%s=%s" % (key, current), after="%s=%s" % (key, value))
                    if not check:
                        sysctl_write(ns["name"], key, value)
    if p["state"] == "absent" or p["prune"]:
        for name in sorted(owned):
            if name in declared:
                continue
            changes.add("remove", name, "node=%s" % owned[name], before="node=%s" % owned[name])
            if not check:
                socks.forget(name)
                delete_namespace(name)
    return changes.result(owned=sorted(owned))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            lab=dict(type="str", required=True),
            namespaces=dict(type="list", elements="dict", default=[], options=dict(
                name=dict(type="str", required=True),
                node=dict(type="str", required=True),
                sysctls=dict(type="dict", default={}),
            )),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            prune=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    run(module, converge)


if __name__ == "__main__":
    main()
