#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: impair
short_description: Converge the link impairments (delay, jitter, loss, rate) of a topo lab, in one call
description:
  - Receives every impaired interface of the lab and sets the egress queueing of each to match
    it. Only egress is shaped; a link impaired in both directions is listed once per end (so a
    ping's round trip gains twice the delay).
  - Delay, jitter and loss are emulated by a C(netem) root qdisc; a rate by C(tbf). With both,
    the tbf is netem's child (C(7471:) in class C(7470:1)), which keeps the rate's queue bounded
    at 50 ms instead of netem's 1000 packets.
  - The tbf bucket (burst) is 10 ms of the rate and at least two frames of the interface's MTU;
    its queue holds at most 50 ms of traffic. netem's queue limit is sized to hold the delay at
    the declared rate (10 Gbit/s when none), at least 1000 packets, so delay does not turn into
    loss on a fast link.
  - topo's root qdisc always has handle C(7470:). The current qdiscs are read back and every
    value compared, with the kernel's rounding (64 ns ticks) tolerated; only a difference is
    changed, in place when the qdisc kind stays the same.
  - An item with nothing set removes topo's qdisc from that interface. Another root qdisc (a
    handle other than C(7470:)) is replaced on a listed interface and never touched elsewhere.
  - Interfaces must carry this lab's alias C(topo:<lab>); any other interface is refused.
  - With O(prune=true), topo's qdiscs on the lab's interfaces in O(namespaces) that are not listed
    are removed.
  - A kernel without netem (CONFIG_NET_SCH_NETEM) or tbf (CONFIG_NET_SCH_TBF) fails the task
    with a message naming the module to load.
author: topo developers
extends_documentation_fragment: [topo.lab.netlink]
options:
  lab: {description: Lab name; impaired interfaces must carry the alias C(topo:<lab>)., type: str, required: true}
  impairments:
    description: One item per impaired interface. A value that is omitted, null or 0 is unset.
    type: list
    elements: dict
    default: []
    suboptions:
      netns: {description: Namespace of the interface., type: str, required: true}
      ifname: {description: Interface whose egress is impaired., type: str, required: true}
      delay: {description: Added one-way delay in milliseconds (netem)., type: float}
      jitter: {description: Random variation of the delay in milliseconds (netem; reorders packets)., type: float}
      loss: {description: Random loss in percent, 0 to 100 (netem)., type: float}
      rate: {description: Rate limit in bits per second, as tc counts them (Ethernet frames) (tbf)., type: int}
  namespaces:
    description:
      - Namespaces in which topo's qdiscs on unlisted interfaces of this lab are pruned.
      - C(scope) is the name this option had before every module called it O(namespaces).
    type: list
    elements: str
    default: []
    aliases: [scope]
  prune: {description: Remove topo's qdiscs from unlisted interfaces in O(namespaces)., type: bool, default: true}
"""

EXAMPLES = r"""
- name: A slow, lossy WAN link (both ends) and a rate-limited access port
  topo.lab.impair:
    lab: demo
    impairments:
      - {netns: topo-demo-r1, ifname: eth1, delay: 20, jitter: 2, loss: 0.5, rate: 10000000}
      - {netns: topo-demo-r2, ifname: eth1, delay: 20, jitter: 2, loss: 0.5, rate: 10000000}
      - {netns: topo-demo-h1, ifname: eth0, rate: 1000000}
    namespaces: [topo-demo-r1, topo-demo-r2, topo-demo-h1]
"""

RETURN = r"""
changes:
  description: One entry per interface whose impairment was created, fixed or removed.
  returned: always
  type: list
  elements: dict
  sample: [{action: fix, resource: impair, name: "topo-demo-r1/eth1", detail: "delay 10.0 -> 20.0 ms"}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._resources import LAB, PRUNE, SCOPE, run
from ansible_collections.topo.lab.plugins.module_utils._resources.impairment import SPEC, Impairments


def main():
    module = AnsibleModule(
        argument_spec=dict(lab=LAB, impairments=SPEC, namespaces=dict(SCOPE, aliases=["scope"]), prune=PRUNE),
        supports_check_mode=True,
    )
    run(module, [(Impairments, module.params["impairments"], module.params["namespaces"])])


if __name__ == "__main__":
    main()
