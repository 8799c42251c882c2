#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: exec
short_description: Run the nodes' exec commands inside the lab nodes that this apply created
description:
  - Runs on the build host (as root), after M(topo.lab.lab). For every node of O(nodes) whose
    namespace or container O(changes) (the C(changes) M(topo.lab.lab) returned) says was
    created - a namespace created, a container created, recreated or started again, all of
    which give the node a fresh network namespace - it runs the node's O(nodes[].commands)
    inside it, in order, each to its end.
  - Idempotency - a node that was not created by this apply is left alone, so applying an
    unchanged lab again runs nothing and reports C(changed=false). Commands are not
    re-run when only their text changed; destroy and apply the lab to run them again.
  - What a command changes that topo also declares (a veth's MTU or MAC, a bridge port, an
    address topo assigned) is put back by the next apply, as any drift is; commands are for
    what topo leaves alone - addresses on interfaces without one (a lab with
    C(autoaddress) false), routes, devices of their own such as a VXLAN made with C(ip link add).
  - A command is an argv list, never a shell string - C(ip netns exec NETNS argv) for a
    namespace node (the build host's programs), C(docker exec CONTAINER argv) for a
    docker node (the image's programs). A shell runs only when the command itself is
    C([sh, -c, "..."]).
  - The module fails at the first command that exits non-zero or outlives O(timeout),
    naming the node, the command, its exit status and the last lines of its output; the
    commands after it do not run.
  - In check mode nothing runs; each command that would run is reported as a change.
author: topo developers
requirements:
  - iproute2 (C(ip)) on the build host; the docker CLI for docker nodes
options:
  nodes:
    description: Nodes with commands.
    type: list
    elements: dict
    default: []
    suboptions:
      node: {description: The node's name (for messages and changes)., type: str, required: true}
      netns: {description: Its namespace (docker nodes - also its container's name)., type: str, required: true}
      kind: {description: C(netns) or C(docker)., type: str, choices: [netns, docker], default: netns}
      commands:
        description: The commands, each an argv list.
        type: list
        elements: list
        required: true
  changes:
    description:
      - The C(changes) of the M(topo.lab.lab) run just before, whose C(netns) and
        C(container) entries tell which nodes are new.
    type: list
    elements: dict
    default: []
  timeout:
    description: Seconds each command may run before it is killed and the module fails.
    type: float
    default: 120
"""

EXAMPLES = r"""
- name: Build the lab
  topo.lab.lab: {lab: demo, namespaces: [{name: topo-demo-h1, node: h1}]}
  register: built

- name: Address h1 as its exec commands say, once, when it is new
  topo.lab.exec:
    nodes:
      - {node: h1, netns: topo-demo-h1, kind: netns,
         commands: [[ip, addr, add, 192.168.1.1/24, dev, eth1]]}
    changes: "{{ built.changes }}"
"""

RETURN = r"""
changes:
  description: One C(create) per command run (or that would run, in check mode) - resource
    C(exec), name the node, detail the command.
  returned: always
  type: list
  elements: dict
ran:
  description: The commands run - node, argv, rc, stdout and stderr (their last lines).
  returned: always
  type: list
  elements: dict
fresh:
  description: The nodes this apply created, whose commands ran (or would run).
  returned: always
  type: list
  elements: str
"""

import shlex

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils import _process

#: The container change that leaves its network namespace as it was (only its name is new).
RENAMED_ONLY = "namespace named again"


def fresh_namespaces(changes):
    """Namespace names that the lab run made anew: created namespaces, and containers
    created, recreated or started again (each starts with an empty network namespace)."""
    out = set()
    for c in changes:
        if c.get("resource") == "netns" and c.get("action") == "create":
            out.add(c.get("name"))
        elif c.get("resource") == "container" and c.get("action") in ("create", "fix") \
                and not str(c.get("detail", "")).startswith(RENAMED_ONLY):
            out.add(c.get("name"))
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            nodes=dict(type="list", elements="dict", default=[], options=dict(
                node=dict(type="str", required=True),
                netns=dict(type="str", required=True),
                kind=dict(type="str", choices=["netns", "docker"], default="netns"),
                commands=dict(type="list", elements="list", required=True),
            )),
            changes=dict(type="list", elements="dict", default=[]),
            timeout=dict(type="float", default=120.0),
        ),
        supports_check_mode=True,
    )
    p = module.params
    fresh = fresh_namespaces(p["changes"])
    todo = [n for n in p["nodes"] if n["netns"] in fresh]
    ip, docker = _process.which("ip") or "ip", _process.which("docker") or "docker"
    changes, ran = [], []
    for node in todo:
        place = _process.place_of(node["netns"], node["kind"])
        place["node"] = node["node"]
        for argv in node["commands"]:
            argv = [str(a) for a in argv]
            changes.append({"action": "create", "resource": "exec", "name": node["node"],
                            "detail": shlex.join(argv)})
            if module.check_mode:
                continue
            res = _process.run(place, argv, p["timeout"], ip=ip, docker=docker)
            ran.append(dict(res, node=node["node"], argv=argv))
            if res["timed_out"] or res["rc"] != 0:
                why = ("did not end within %g s" % p["timeout"]) if res["timed_out"] else "exited %s" % res["rc"]
                module.fail_json(msg="exec in %s: %s %s: %s" % (
                    _process.where(place), shlex.join(argv), why,
                    _process.tail(res.get("stderr") or res.get("stdout") or "(no output)", 5, " | ")),
                    changes=changes, ran=ran, fresh=sorted(n["node"] for n in todo))
    module.exit_json(changed=bool(changes), changes=changes, ran=ran, fresh=sorted(n["node"] for n in todo))


if __name__ == "__main__":
    main()
