#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: tunnel
short_description: Converge the VXLAN, GRE, gretap, ip6gre and ip6gretap tunnel ends of a topo lab, in one call
description:
  - Receives every tunnel end the lab declares (one device per end, in that end's
    namespace). Before touching anything it checks that the running kernel can make each
    kind used, and fails naming the kernel option and module when it cannot.
  - Every attribute is compared with the kernel's. What the kernel fixes when a tunnel is
    made - kind, local and remote underlay address, VNI, UDP destination port, source port
    range, learning, GRE key, TTL - cannot be changed in place, so a device that differs in
    any is removed and made again (reported as a C(fix), "recreated"). MTU, bridge
    membership (master), administrative state and the ownership alias are set in place.
  - A multi-host lab joins its build hosts with VXLAN devices whose UDP socket lives in the
    build host's namespace while the device lives in a node's (O(tunnels[].underlay_netns));
    the device is made from that namespace directly in O(tunnels[].netns) (one netlink
    request with IFLA_NET_NS_FD; the kernel keeps the socket where the request came from and
    reports it as the device's link-netns). Where the socket lives is compared like the
    underlay addresses (a device whose socket is elsewhere is made again). The all-zero FDB
    entries of O(tunnels[].fdb) (head-end replication) are compared and set in place.
  - A device under a declared name that does not carry this lab's alias is refused, never
    adopted or removed.
  - With O(prune=true), tunnel devices carrying this lab's alias in O(namespaces) that are no
    longer declared are removed.
  - The underlay is IPv4 or IPv6, told by O(tunnels[].local) and O(tunnels[].remote), which
    must be of one family - VXLAN over either; C(gre) and C(gretap) over IPv4, C(ip6gre) and
    C(ip6gretap) over IPv6 (the kernel's C(ip6_gre) module, CONFIG_IPV6_GRE). A kind given
    the other family fails the task naming the kind to use.
  - Overheads topo's expansion subtracts from the underlay MTU when O(tunnels[].mtu) is
    derived - VXLAN 50 bytes (outer IPv4 20, UDP 8, VXLAN 8, inner Ethernet 14), 70 over
    IPv6 (outer IPv6 40); GRE 24 (IPv4 20, GRE 4), gretap 38 (GRE 24 plus inner Ethernet 14);
    plus 4 with a GRE key (RFC 2890). An ip6gre device the kernel makes also carries the
    tunnel encapsulation limit option (RFC 2473, 8 bytes), so its own overhead is 52 bytes
    (IPv6 40, GRE 4, option 8), ip6gretap's 66.
author: topo developers
extends_documentation_fragment: [topo.lab.netlink]
options:
  lab: {description: Lab name; devices carry the alias C(topo:<lab>)., type: str, required: true}
  tunnels:
    description: Tunnel ends.
    type: list
    elements: dict
    default: []
    suboptions:
      kind: {description: Tunnel type., type: str, required: true, choices: [vxlan, gre, gretap, ip6gre, ip6gretap]}
      netns: {description: Namespace of this end (where its underlay routes are)., type: str, required: true}
      ifname: {description: Device name (at most 15 characters)., type: str, required: true}
      local: {description: Underlay address (IPv4 or IPv6) this end sends from., type: str, required: true}
      remote:
        description:
          - "Underlay address of the other end (the family of O(tunnels[].local)); required for
            gre, gretap, ip6gre and ip6gretap. A vxlan without one floods to the addresses of
            O(tunnels[].fdb)."
        type: str
      mtu: {description: MTU in bytes; 1500 when omitted., type: int}
      master: {description: "Bridge in the same namespace to enslave the device to (vxlan and gretap).", type: str}
      ttl: {description: "Outer TTL; omitted or 0 inherits the inner packet's.", type: int}
      vni: {description: VXLAN network identifier, 0-16777215 (vxlan)., type: int}
      dstport: {description: VXLAN UDP destination port (IANA's is 4789)., type: int, default: 4789}
      srcport: {description: "VXLAN UDP source port range, [low, high]; the kernel's default when omitted.", type: list, elements: int}
      learning: {description: VXLAN learns remote MACs from received frames., type: bool, default: true}
      key: {description: "GRE key, 0-4294967295 (gre, gretap, ip6gre, ip6gretap).", type: int}
      underlay_netns:
        description:
          - "Namespace the device is made in, where its UDP socket stays: C(/) is the namespace
            the module runs in (the build host's own), any other value a namespace under
            /run/netns. The device itself is made in O(tunnels[].netns). Omitted (or equal to
            O(tunnels[].netns)): the device and its socket are both in O(tunnels[].netns)."
        type: str
      fdb:
        description:
          - "Underlay addresses (vxlan): each gets an all-zero FDB entry
            (C(00:00:00:00:00:00 dst ADDRESS)), so broadcast, multicast and unknown unicast
            are sent to every one of them (head-end replication). Entries not listed are removed."
        type: list
        elements: str
        default: []
      mac: {description: "MAC address of the device (lower case), set after it is made.", type: str}
  features:
    description: Kernel features to check before anything is built (the lab's tunnel kinds).
    type: list
    elements: str
    default: []
  namespaces:
    description: Namespaces in which undeclared tunnel devices of this lab are pruned.
    type: list
    elements: str
    default: []
  prune: {description: Remove undeclared tunnel devices of this lab., type: bool, default: true}
"""

EXAMPLES = r"""
- name: GRE between two routers, VXLAN VNI 42 into a bridge
  topo.lab.tunnel:
    lab: demo
    tunnels:
      - {kind: gre, netns: topo-demo-leaf1, ifname: gre1, local: 10.1.0.1, remote: 10.1.0.9, mtu: 1476}
      - {kind: gre, netns: topo-demo-leaf2, ifname: gre1, local: 10.1.0.9, remote: 10.1.0.1, mtu: 1476}
      - {kind: vxlan, netns: topo-demo-t1, ifname: vxlan42, vni: 42, local: 10.1.0.17, remote: 10.1.0.21,
         mtu: 1450, master: tbr1}
      - {kind: vxlan, netns: topo-demo-t2, ifname: vxlan43, vni: 43, local: "2001:db8:2::1", remote: "2001:db8:2::2",
         mtu: 1430}
    namespaces: [topo-demo-leaf1, topo-demo-leaf2, topo-demo-t1]

- name: On build host hostA, a cross-host link's end and a cross-host bridge's flooding VXLAN
  topo.lab.tunnel:
    lab: demo
    tunnels:
      - {kind: vxlan, netns: topo-demo-h1, ifname: eth0, vni: 10000, local: 198.18.0.1, remote: 198.18.0.2,
         mtu: 1450, underlay_netns: /}
      - {kind: vxlan, netns: topo-demo-lan, ifname: vxlan10001, vni: 10001, local: 198.18.0.1, mtu: 1450,
         master: lan, underlay_netns: /, fdb: [198.18.0.2, 198.18.0.3]}
    namespaces: [topo-demo-h1, topo-demo-lan]
"""

RETURN = r"""
changes:
  description: One entry per tunnel end created, fixed (or recreated) or removed.
  returned: always
  type: list
  elements: dict
  sample: [{action: fix, resource: tunnel, name: "topo-demo-t1/vxlan42", detail: "recreated: vni 43 -> 42"}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._resources import LAB, PRUNE, SCOPE, run
from ansible_collections.topo.lab.plugins.module_utils._resources.tunnel import FEATURES, SPEC, Tunnels


def main():
    module = AnsibleModule(
        argument_spec=dict(lab=LAB, tunnels=SPEC, features=FEATURES, namespaces=SCOPE, prune=PRUNE),
        supports_check_mode=True,
    )
    p = module.params
    run(module, [(Tunnels, p["tunnels"], p["namespaces"])],
        features=sorted(set(p["features"]) | set(t["kind"] for t in p["tunnels"])))


if __name__ == "__main__":
    main()
