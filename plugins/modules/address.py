#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: address
short_description: Converge the IPv4 and IPv6 addresses of a topo lab's interfaces, in one call
description:
  - Receives, for every interface of the lab that carries addresses, the exact list it
    must carry (IPv4 and IPv6 mixed), and makes the kernel match it - adding what is missing
    and removing any other IPv4 or IPv6 address on that interface (an address with the wrong
    prefix length counts as wrong). The loopback's C(127.0.0.1/8) and C(::1/128) are never
    touched.
  - The kernel's own IPv6 addresses are neither compared nor removed - the link-local
    address (C(fe80::/10)) every interface with IPv6 gets, and addresses without the
    C(permanent) flag (stateless autoconfiguration from router advertisements, privacy
    addresses). Declaring a link-local address fails the task.
  - IPv6 addresses are added with the C(nodad) flag (IFA_F_NODAD, as C(ip addr add ... nodad)),
    so they are usable at once, without waiting for duplicate address detection. A declared
    IPv6 address present without it (tentative, failed or passed DAD, for example added by
    hand) is a difference, fixed by removing and re-adding it.
  - An interface whose IPv6 is disabled (C(disable_ipv6) 1, as Docker leaves a container's
    interfaces) gets it enabled before an IPv6 address is added.
  - Addresses with a prefix shorter than /31 get their subnet's broadcast address, as
    C(ip addr add ... brd +) does, so directed broadcasts work; a wrong or missing
    broadcast is a difference too, fixed by removing and re-adding the address.
  - Removing a subnet's primary address makes the kernel drop that subnet's secondary
    addresses; wanted ones are re-added and reported, in check mode as well.
  - In check mode, an interface that does not exist yet (because an earlier module would
    make it) is reported as getting all its addresses.
author: topo developers
extends_documentation_fragment: [topo.lab.netlink]
options:
  lab: {description: Lab name., type: str, required: true}
  interfaces:
    description: Interfaces and the addresses each must hold.
    type: list
    elements: dict
    default: []
    suboptions:
      netns: {description: Namespace of the interface., type: str, required: true}
      ifname: {description: Interface name., type: str, required: true}
      addresses:
        description: IPv4 and IPv6 addresses with prefix length (C(a.b.c.d/len), C(2001:db8::1/64)).
        type: list
        elements: str
        default: []
"""

EXAMPLES = r"""
- name: Addresses of lab demo
  topo.lab.address:
    lab: demo
    interfaces:
      - {netns: topo-demo-h1, ifname: eth0, addresses: [172.16.0.1/24, "2001:db8:1::1/64"]}
      - {netns: topo-demo-r1, ifname: lo, addresses: [10.0.0.1/32, "2001:db8::1/128"]}
"""

RETURN = r"""
changes:
  description: One entry per address added or removed.
  returned: always
  type: list
  elements: dict
  sample: [{action: create, resource: address, name: "topo-demo-h1/eth0", detail: "172.16.0.1/24"}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._resources import LAB, run
from ansible_collections.topo.lab.plugins.module_utils._resources.address import SPEC, Addresses


def main():
    module = AnsibleModule(
        argument_spec=dict(lab=LAB, interfaces=SPEC),
        supports_check_mode=True,
    )
    run(module, [(Addresses, module.params["interfaces"], [])])


if __name__ == "__main__":
    main()
