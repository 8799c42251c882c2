#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: ping
short_description: Ping many addresses from many lab nodes at once and compare with what is expected
description:
  - Sends ICMP (IPv4) or ICMPv6 echo requests to every target of every source at once, from
    one process and one event loop (like C(fping), across network namespaces), and reports,
    per source and target, whether it answered and the average round-trip time.
  - O(sources) pings from named network namespaces (C(/run/netns/NAME); docker nodes of a
    topo lab are linked there too), so one call on the build host checks every pair of a
    lab. O(targets) pings from wherever the module runs (the build host, or a node reached
    through the C(topo.lab.netns) connection or any other connection into it).
  - Needs root (or CAP_NET_RAW) for raw ICMP sockets; no ping program is used.
  - A target with O(targets[].expect=fail) passes when it does NOT answer (a pair that
    must not reach). The task fails when any target's outcome differs from its expectation,
    or a target could not be checked (its source's namespace does not exist, or the kernel
    kept refusing the requests for lack of room in its neighbour table), so a plain
    C(ansible-playbook) run fails too; the C(topo.lab.verify_ping) role ignores that failure
    so the lab's other checks still run, and C(topo) reads every result.
  - This is a check, not a change - it always reports C(changed=false) and runs in check mode.
author: topo developers
requirements: [root or CAP_NET_RAW]
attributes:
  check_mode: {support: full}
  diff_mode: {support: none}
  idempotent: {support: full}
options:
  targets:
    description: What to ping from the namespace the module runs in.
    type: list
    elements: dict
    default: []
    suboptions: &target
      address: {description: IPv4 or IPv6 address (no length)., type: str, required: true}
      node: {description: Name of the node that owns the address (for the report)., type: str, default: ""}
      expect: {description: C(pass) if it must answer, C(fail) if it must not., type: str, choices: [pass, fail], default: pass}
  sources:
    description:
      - Pings from named network namespaces, one entry per source node. Every target of every
        source is pinged at once.
    type: list
    elements: dict
    default: []
    suboptions:
      node: {description: Name of the source node (the C(from) of its results)., type: str, required: true}
      netns: {description: Its network namespace (under C(/run/netns))., type: str, required: true}
      targets:
        description: What to ping from it, as O(targets).
        type: list
        elements: dict
        default: []
        suboptions: *target
  count: {description: Echo requests per target; one answer is enough to pass., type: int, default: 3}
  interval: {description: Seconds between the requests to one target., type: float, default: 0.2}
  timeout: {description: Seconds to wait for answers after a target's last request (as C(ping -W))., type: float, default: 2}
  parallel:
    description: Ignored (every target is pinged at once); kept so that older playbooks still run.
    type: int
    default: 16
"""

EXAMPLES = r"""
- name: Everyone on the LAN answers, the other lab does not
  topo.lab.ping:
    targets:
      - {address: 172.16.0.2, node: h2}
      - {address: "2001:db8:1::2", node: h2}
      - {address: 172.17.0.2, node: other, expect: fail}

- name: Every pair of a lab, from the build host
  topo.lab.ping:
    sources:
      - node: h1
        netns: topo-lan-h1
        targets: [{address: 172.16.0.2, node: h2}]
      - node: h2
        netns: topo-lan-h2
        targets: [{address: 172.16.0.1, node: h1}]
"""

RETURN = r"""
results:
  description:
    - One entry per target, sources in the order given, then their targets in order.
    - C(from) (the source node) only with O(sources); C(msg) only when the target could not be checked (why).
  returned: always
  type: list
  elements: dict
  sample: [{from: h1, address: 172.16.0.2, node: h2, expect: pass, observed: pass, ok: true, rtt_ms: 0.051, received: 3, sent: 3}]
failed_targets:
  description: Entries of RV(results) whose outcome differs from the expectation.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._icmp import probe

TARGET = dict(
    address=dict(type="str", required=True),
    node=dict(type="str", default=""),
    expect=dict(type="str", choices=["pass", "fail"], default="pass"),
)


def entry(source, target, outcome):
    """The result entry of one target: what was expected, what was observed. A target that
    could not be checked (``outcome["error"]``: its source could not ping at all, or the
    kernel kept refusing the requests) fails, also when it must not answer."""
    observed = "pass" if outcome["received"] > 0 else "fail"
    out = {} if source is None else {"from": source}
    out.update(address=target["address"], node=target["node"], expect=target["expect"],
               observed=observed, ok=observed == target["expect"] and not outcome["error"],
               rtt_ms=outcome["rtt_ms"], sent=outcome["sent"], received=outcome["received"])
    if outcome["error"]:
        out["msg"] = outcome["error"]
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            targets=dict(type="list", elements="dict", default=[], options=TARGET),
            sources=dict(type="list", elements="dict", default=[], options=dict(
                node=dict(type="str", required=True),
                netns=dict(type="str", required=True),
                targets=dict(type="list", elements="dict", default=[], options=TARGET),
            )),
            count=dict(type="int", default=3),
            interval=dict(type="float", default=0.2),
            timeout=dict(type="float", default=2),
            parallel=dict(type="int", default=16),
        ),
        supports_check_mode=True,
    )
    p = module.params
    sources = [(None, None, p["targets"])] if p["targets"] else []
    sources += [(s["node"], s["netns"], s["targets"]) for s in p["sources"] if s["targets"]]
    try:
        outcomes = probe([(netns, [t["address"] for t in targets]) for _node, netns, targets in sources],
                         count=p["count"], interval=p["interval"], timeout=p["timeout"])
    except OSError as exc:
        module.fail_json(msg="cannot ping: %s (raw ICMP sockets need root or CAP_NET_RAW)" % exc,
                         results=[], failed_targets=[])
    results = [entry(node, t, o) for (node, _netns, targets), got in zip(sources, outcomes)
               for t, o in zip(targets, got)]
    failed = [r for r in results if not r["ok"]]
    # Ansible echoes the arguments back in every result (``invocation``): with every pair of a
    # 50-node lab that doubles a 400 kB result that Ansible and topo's event log then copy and
    # serialise; the results already name each source and target.
    invocation = {"module_args": dict(
        {k: v for k, v in p.items() if k != "sources"},
        sources="%d sources, %d targets (see results)" % (len(p["sources"]), sum(len(s["targets"]) for s in p["sources"])))}
    if failed:
        module.fail_json(
            msg="%d of %d ping checks failed: %s" % (len(failed), len(results), ", ".join(
                "%s%s (%s) expected %s, observed %s%s" % (
                    r["from"] + " -> " if "from" in r else "", r["node"], r["address"], r["expect"],
                    r["observed"], " (%s)" % r["msg"] if "msg" in r else "") for r in failed[:20])
                + (", ..." if len(failed) > 20 else "")),
            results=results, failed_targets=failed, invocation=invocation)
    module.exit_json(changed=False, results=results, failed_targets=[], invocation=invocation)


if __name__ == "__main__":
    main()
