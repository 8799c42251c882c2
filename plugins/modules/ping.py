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
  - A target is sent at most O(count) echo requests, O(interval) seconds apart, and none
    more once it has answered (as C(fping) does), as one answer is enough to pass; a target
    that answers at once costs one request and its round-trip time is that answer's.
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
      - A source gives its targets either as O(sources[].targets) (reported in RV(results),
        one dict per target) or as columns, O(sources[].addresses) with O(sources[].nodes) and
        O(sources[].expect_fail) (reported in RV(source_results), columns again). The columns
        are what the C(topo.lab.verify_ping) role passes; for every pair of a 50-node lab they
        cost Ansible a fraction of 2,450 target dicts to validate, copy and return.
      - Like any list option, a column may also be given as one comma-separated string
        (C(10.0.0.2,10.0.0.3)); C(topo) writes its inventory so, as Ansible loads and templates
        one string much faster than a list of them.
    type: list
    elements: dict
    default: []
    suboptions:
      node: {description: Name of the source node (the C(from) of its results)., type: str, required: true}
      netns: {description: Its network namespace (under C(/run/netns))., type: str, required: true}
      targets:
        description: What to ping from it, as O(targets). Not with O(sources[].addresses).
        type: list
        elements: dict
        default: []
        suboptions: *target
      addresses:
        description: What to ping from it, IPv4 or IPv6 addresses (no length). Not with O(sources[].targets).
        type: list
        elements: str
        default: []
      nodes:
        description:
          - The node owning each of O(sources[].addresses), in the same order (for the report).
          - Empty (the default), or exactly one per address.
        type: list
        elements: str
        default: []
      expect_fail:
        description: Those of O(sources[].addresses) that must NOT answer; the others must answer.
        type: list
        elements: str
        default: []
  count:
    description: Echo requests per target at most; sending to a target stops at its first answer.
    type: int
    default: 3
  interval: {description: Seconds between the requests to a target that has not answered yet., type: float, default: 0.2}
  timeout: {description: Seconds to wait for an answer after a target's last request (as C(ping -W))., type: float, default: 2}
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

- name: The same in columns (what role verify_ping passes), h3 must not answer
  topo.lab.ping:
    sources:
      - {node: h1, netns: topo-lan-h1, addresses: "172.16.0.2,172.16.0.3", nodes: "h2,h3", expect_fail: 172.16.0.3}
      - {node: h2, netns: topo-lan-h2, addresses: [172.16.0.1], nodes: [h1]}
"""

RETURN = r"""
results:
  description:
    - One entry per target given as dicts (O(targets), then the O(sources[].targets) of each
      source in the order given), its targets in order.
    - C(from) (the source node) only with O(sources); C(msg) only when the target could not be
      checked (why). C(rtt_ms) is the round-trip time of its first answer (null without one);
      C(received) is 1 or 0.
  returned: always
  type: list
  elements: dict
  sample: [{from: h1, address: 172.16.0.2, node: h2, expect: pass, observed: pass, ok: true, rtt_ms: 0.051, sent: 1, received: 1}]
source_results:
  description:
    - One entry per source given with O(sources[].addresses), in the order given, its outcome
      in columns parallel to its addresses, each column one comma-separated string (one
      value where a list would cost Ansible, and anything that reads the result, a copy and
      a scrub per element; for every pair of a 50-node lab about 0.2 s of a verify).
      Target I of a source is the entry of RV(results) made of the I-th value of every
      column, C(observed) being C(pass) when C(received) is 1, C(ok) when that is what was
      expected and C(errors) has nothing for it.
    - C(from) the source node; C(addresses), C(nodes) (empty values when not given) and
      C(expect_fail) (addresses, in any order) as given; C(sent) and C(received) (0 or 1)
      echo requests; C(rtt_ms) the round-trip time of the first answer in milliseconds, an
      empty value without one; C(errors) a list of C([index, why]) of the targets that
      could not be checked.
  returned: always
  type: list
  elements: dict
  sample: [{from: h1, addresses: "172.16.0.2,172.16.0.3", nodes: "h2,h3", expect_fail: 172.16.0.3,
            sent: "1,3", received: "1,0", rtt_ms: "0.051,", errors: []}]
failed_targets:
  description: The targets whose outcome differs from the expectation, as entries of RV(results)
    (also those of sources given in columns).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._icmp import probe
from ansible_collections.topo.lab.plugins.module_utils._vocabulary import ping_entry as entry

TARGET = dict(
    address=dict(type="str", required=True),
    node=dict(type="str", default=""),
    expect=dict(type="str", choices=["pass", "fail"], default="pass"),
)


def columns(source, outcomes):
    """The RV(source_results) entry of a source given in columns (``source`` its parameters)
    and the entries (as :func:`entry`) of its targets that failed."""
    addresses, fail = source["addresses"], set(source["expect_fail"])
    nodes = source["nodes"] or [""] * len(addresses)
    out = {"from": source["node"], "addresses": ",".join(addresses), "nodes": ",".join(nodes),
           "expect_fail": ",".join(source["expect_fail"]),
           "sent": ",".join(str(o["sent"]) for o in outcomes),
           "received": ",".join(str(o["received"]) for o in outcomes),
           "rtt_ms": ",".join("" if o["rtt_ms"] is None else str(o["rtt_ms"]) for o in outcomes),
           "errors": [[i, o["error"]] for i, o in enumerate(outcomes) if o["error"]]}
    entries = (entry(source["node"], {"address": a, "node": n, "expect": "fail" if a in fail else "pass"}, o)
               for a, n, o in zip(addresses, nodes, outcomes))
    return out, [e for e in entries if not e["ok"]]


def plan_errors(sources):
    """What is wrong with the columns of ``sources`` (messages), [] when nothing."""
    errors = []
    for s in sources:
        if s["nodes"] and len(s["nodes"]) != len(s["addresses"]):
            errors.append("source %s: %d nodes for %d addresses (give one per address, or none)"
                          % (s["node"], len(s["nodes"]), len(s["addresses"])))
        unknown = sorted(set(s["expect_fail"]) - set(s["addresses"]))
        if unknown:
            errors.append("source %s: expect_fail names addresses it does not ping: %s"
                          % (s["node"], ", ".join(unknown)))
    return errors


def main():
    module = AnsibleModule(
        argument_spec=dict(
            targets=dict(type="list", elements="dict", default=[], options=TARGET),
            sources=dict(type="list", elements="dict", default=[], options=dict(
                node=dict(type="str", required=True),
                netns=dict(type="str", required=True),
                targets=dict(type="list", elements="dict", default=[], options=TARGET),
                addresses=dict(type="list", elements="str", default=[]),
                nodes=dict(type="list", elements="str", default=[]),
                expect_fail=dict(type="list", elements="str", default=[]),
            ), mutually_exclusive=[("targets", "addresses")]),
            count=dict(type="int", default=3),
            interval=dict(type="float", default=0.2),
            timeout=dict(type="float", default=2),
            parallel=dict(type="int", default=16),
        ),
        supports_check_mode=True,
    )
    p = module.params
    for s in p["sources"]:   # as a comma-separated string, no failures is "" (one empty address)
        s["expect_fail"] = [a for a in s["expect_fail"] if a]
    rows = [(None, None, p["targets"])] if p["targets"] else []
    rows += [(s["node"], s["netns"], s["targets"]) for s in p["sources"] if s["targets"]]
    cols = [s for s in p["sources"] if s["addresses"]]
    # Ansible echoes the arguments back in every result (``invocation``): with every pair of a
    # 50-node lab that would double the result that Ansible and topo's event log then copy
    # and serialise; the results already name each source and target.
    invocation = {"module_args": dict(
        {k: v for k, v in p.items() if k != "sources"},
        sources="%d sources, %d targets (see results)" % (
            len(p["sources"]), sum(len(s["targets"]) + len(s["addresses"]) for s in p["sources"])))}
    errors = plan_errors(cols)
    if errors:
        module.fail_json(msg="; ".join(errors), results=[], source_results=[], failed_targets=[],
                         invocation=invocation)
    try:
        outcomes = probe([(netns, [t["address"] for t in targets]) for _node, netns, targets in rows]
                         + [(s["netns"], s["addresses"]) for s in cols],
                         count=p["count"], interval=p["interval"], timeout=p["timeout"])
    except OSError as exc:
        module.fail_json(msg="cannot ping: %s (raw ICMP sockets need root or CAP_NET_RAW)" % exc,
                         results=[], source_results=[], failed_targets=[], invocation=invocation)
    results = [entry(node, t, o) for (node, _netns, targets), got in zip(rows, outcomes)
               for t, o in zip(targets, got)]
    failed = [r for r in results if not r["ok"]]
    source_results = []
    for s, got in zip(cols, outcomes[len(rows):]):
        out, bad = columns(s, got)
        source_results.append(out)
        failed += bad
    total = len(results) + sum(len(s["addresses"]) for s in cols)
    if failed:
        module.fail_json(
            msg="%d of %d ping checks failed: %s" % (len(failed), total, ", ".join(
                "%s%s (%s) expected %s, observed %s%s" % (
                    r["from"] + " -> " if "from" in r else "", r["node"], r["address"], r["expect"],
                    r["observed"], " (%s)" % r["msg"] if "msg" in r else "") for r in failed[:20])
                + (", ..." if len(failed) > 20 else "")),
            results=results, source_results=source_results, failed_targets=failed, invocation=invocation)
    module.exit_json(changed=False, results=results, source_results=source_results, failed_targets=[],
                     invocation=invocation)


if __name__ == "__main__":
    main()
