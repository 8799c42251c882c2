#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: container
short_description: Converge the Docker containers of a topo lab's docker nodes, in one call
description:
  - Receives every container the lab declares (one per C(kind=docker) node) and makes Docker
    match, with the Docker SDK. Each container is started with no Docker network
    (C(network_mode=none)), capabilities C(NET_ADMIN) and C(NET_RAW) (never privileged),
    Docker's init as PID 1, hostname = node name, and labels C(topo.lab), C(topo.node) and
    C(topo.spec) (the declared settings).
  - Its network namespace is then named C(/run/netns/<name>) (a bind mount, as
    C(ip netns attach) does) with the lab's marker on C(lo), so M(topo.lab.lab) and the
    per-resource modules wire it exactly like a namespace node.
  - A missing container is created; one whose image ID or declared settings (image, cmd,
    env, binds) differ is removed and created again (a C(fix), "recreated"); a stopped one
    is started; a running one whose namespace is not the one named is named again. A
    correct, running container is left alone (changed=false).
  - A container with a declared name that does not carry this lab's C(topo.lab) label is
    refused, never adopted or removed.
  - With O(prune=true), containers labelled with this lab and not declared are removed;
    O(state=absent) removes all of them, found by label alone (no topology needed).
  - Creating and starting run 8 at a time (on the 2-core reference machine, 50 containers
    took 12.1 s one by one and 7.6 s eight at a time).
requirements: [docker (the Docker SDK for Python) on the build host, a running dockerd]
author: topo developers
options:
  lab: {description: Lab name (the C(topo.lab) label)., type: str, required: true}
  containers:
    description: The lab's containers.
    type: list
    elements: dict
    default: []
    suboptions:
      name: {description: Container name and namespace name (C(topo-<lab>-<node>))., type: str, required: true}
      node: {description: Node name (hostname and C(topo.node) label)., type: str, required: true}
      image: {description: Image (C(repo:tag)); must be in the local image store., type: str, required: true}
      cmd: {description: Command (argv); the image's when omitted., type: list, elements: str}
      env: {description: Environment variables., type: dict, default: {}}
      binds: {description: "Bind mounts, C(host-path:container-path[:ro])", type: list, elements: str, default: []}
      sysctls:
        description: Network sysctls the container is created with (M(topo.lab.netns) keeps them in place afterwards).
        type: dict
        default: {}
  state:
    description: C(present) converges to the list; C(absent) removes every container of the lab.
    type: str
    choices: [present, absent]
    default: present
  prune: {description: With C(present), remove the lab's containers that are not declared., type: bool, default: true}
notes:
  - Supports check mode and diff.
  - Without declared containers and with no dockerd answering, there is nothing of the lab
    Docker could be running, and the module changes nothing.
"""

EXAMPLES = r"""
- name: Two docker nodes
  topo.lab.container:
    lab: demo
    containers:
      - {name: topo-demo-h1, node: h1, image: "topo-node:latest"}
      - {name: topo-demo-h2, node: h2, image: "topo-node:latest", env: {ROLE: server}}

- name: Remove every container of lab demo
  topo.lab.container:
    lab: demo
    state: absent
"""

RETURN = r"""
changes:
  description: One entry per container created, fixed (recreated, started, namespace named again) or removed.
  returned: always
  type: list
  elements: dict
  sample: [{action: fix, resource: container, name: topo-demo-h1, detail: "started (was exited)"}]
containers:
  description: Names of the declared containers.
  returned: when state is present and a dockerd answered
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._resources import LAB, PRUNE, STATE, run
from ansible_collections.topo.lab.plugins.module_utils._resources.container import SPEC, Containers


def main():
    module = AnsibleModule(
        argument_spec=dict(lab=LAB, containers=SPEC, state=STATE, prune=PRUNE),
        supports_check_mode=True,
    )
    run(module, [(Containers, module.params["containers"], [])])


if __name__ == "__main__":
    main()
