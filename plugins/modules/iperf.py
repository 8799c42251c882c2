#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: iperf
short_description: Measure throughput between two lab nodes with iperf3, over a sweep of buffer lengths
description:
  - "Runs on the build host (localhost, as root) and runs one expanded C(iperf3) check of
    C(verify:) (the dict C(topo) writes into the inventory). Its fields are validated
    against O(check)'s spec, then value ranges (a positive duration, a port 1-65535, ...);
    a bad check fails with C(iperf3 check NAME: ...) naming the field."
  - The sweep runs O(check.repeats) times (3 by default), in rounds - every length once,
    then every length again - so a slow moment of the machine spreads over the lengths
    instead of sinking one. Each length's figures are the median of its runs, with their
    spread (the lowest and highest rate).
  - For each run of each length of O(check.lengths) (once, without C(-l), when it is empty) it starts a
    one-off server C(iperf3 -s -1 -J -p PORT [-6]) inside the server node, waits until it listens
    (C(ss -ltn) in the node's namespace), runs the client
    C(iperf3 -c ADDRESS -p PORT -J -t DURATION -P PARALLEL --connect-timeout MS [-l LENGTH] [-u] [-b BITRATE] [-6])
    inside the client node and reads the figures from the client's JSON output.
  - A program runs inside a namespace node with C(ip netns exec NETNS), inside a docker node
    with C(docker exec -i CONTAINER) (through C(sh), which reports the program's PID there).
    Every server is reaped; when the client failed, or the server does not exit after its
    test, the server is stopped by its PID (SIGTERM, then SIGKILL).
  - The check fails when a run does not run (iperf3 missing in a node, connection refused,
    no route, a timeout - the message carries iperf3's own error text), or when
    O(check.min_bps) is set and a run measured less (the message names the length and the
    figure; the minimum applies to each length's median). The sweep stops at the first run
    that does not run.
  - With O(check.capture), C(tcpdump) runs on that node's interface (in its named namespace,
    from the build host) for the whole sweep; the pcap is O(capture_dir)/<name>.pcap, at
    most 1000 packets of at most 256 bytes.
  - This is a check, not a change - it always reports C(changed=false), and runs in check
    mode too.
  - Units - bits per second for rates, bytes for lengths, seconds for durations. Rates
    in RV(expected), RV(observed) and RV(msg) are printed with SI prefixes and three
    significant digits (C(940 Mbit/s), C(18.9 Gbit/s)), as everywhere in topo.
author: topo developers
requirements:
  - iperf3 in both nodes (Debian/Ubuntu C(apt-get install iperf3); namespace nodes run the build host's)
  - iproute2 (C(ip), C(ss)) on the build host; the docker CLI for docker nodes
  - tcpdump on the build host and scapy >= 2.5 in its Python, for a capture
attributes:
  check_mode: {support: full}
  diff_mode: {support: none}
  idempotent: {support: full}
options:
  check:
    description: One expanded iperf3 check.
    type: dict
    required: true
    suboptions:
      type: {description: Check type., type: str, choices: [iperf3], default: iperf3}
      name: {description: "Unique name in the lab ([A-Za-z0-9_.-]); the capture's file name.", type: str, required: true}
      description: {description: One line for humans., type: str, default: ""}
      client:
        description: The node running the client.
        type: dict
        required: true
        suboptions:
          node: {description: Node name., type: str, required: true}
          netns: {description: Its network namespace (under /run/netns)., type: str}
          container: {description: Its container (docker nodes); programs then run with C(docker exec)., type: str}
          address: {description: Its first IPv4 address (IPv6 on an IPv6 check)., type: str}
      server:
        description: The node running the one-off server.
        type: dict
        required: true
        suboptions:
          node: {description: Node name., type: str, required: true}
          netns: {description: Its network namespace (under /run/netns)., type: str}
          container: {description: Its container (docker nodes); programs then run with C(docker exec)., type: str}
          address: {description: Its first IPv4 address (IPv6 on an IPv6 check)., type: str}
      address: {description: The address the client connects to (the server's)., type: str, required: true}
      family:
        description:
          - 6 - an IPv6 check - client and server run with C(-6), and O(check.address) and the
            participants' addresses must be IPv6; absent or 4 - IPv4 (addresses must be IPv4).
        type: int
        choices: [4, 6]
      proto: {description: Transport., type: str, choices: [tcp, udp], default: tcp}
      duration: {description: Seconds per run (C(iperf3 -t))., type: int, default: 3}
      parallel: {description: Parallel streams (C(iperf3 -P))., type: int, default: 1}
      lengths:
        description: Buffer lengths in bytes (C(iperf3 -l)), one run each per repeat; empty for iperf3's default.
        type: list
        elements: int
        default: []
      repeats:
        description:
          - How many times the sweep runs, 1 to 20; each length's figures are the median of its
            runs, and RV(figures.runs[].min_bps) and RV(figures.runs[].max_bps) their spread.
        type: int
        default: 3
      bitrate: {description: Target bits per second (C(iperf3 -b)); UDP's rate (iperf3's default 1 Mbit/s), a cap for TCP., type: float}
      min_bps: {description: Minimum bits per second every run must reach; none - any rate passes., type: float}
      port: {description: TCP/UDP port of the server (C(iperf3 -p))., type: int, default: 5201}
      timeout: {description: Seconds the client waits to connect (C(iperf3 --connect-timeout)); 5 when not set., type: float}
      capture:
        description: Capture on a node's interface while the check runs.
        type: dict
        suboptions:
          node: {description: Node name., type: str, required: true}
          interface: {description: Interface name in the node (C(any) for all)., type: str, required: true}
          netns: {description: The node's network namespace (docker nodes' are named too)., type: str}
          container: {description: The node's container, for docker nodes., type: str}
          filter: {description: BPF filter (tcpdump syntax); none - every packet., type: str}
  capture_dir:
    description: Directory for the pcap of a check with O(check.capture); created when missing.
      Required when the check has a capture.
    type: path
"""

EXAMPLES = r"""
- name: TCP throughput from h1 to h2 at 200 ... 6400 byte buffers, at least 100 Mbit/s each
  topo.lab.iperf:
    check:
      name: h1-h2-tcp
      description: iperf3 TCP h1 -> h2 198.18.0.2, 1 s x 1
      client: {node: h1, netns: topo-demo-h1, container: null, address: 198.18.0.1}
      server: {node: h2, netns: topo-demo-h2, container: null, address: 198.18.0.2}
      address: 198.18.0.2
      proto: tcp
      duration: 1
      parallel: 1
      lengths: [200, 400, 800, 1600, 3200, 6400]
      repeats: 3
      bitrate: null
      min_bps: 100000000
      port: 5201

- name: UDP at 10 Mbit/s from a docker node; jitter and loss in the figures
  topo.lab.iperf:
    check:
      name: d1-h2-udp
      client: {node: d1, netns: topo-demo-d1, container: topo-demo-d1, address: 198.18.0.3}
      server: {node: h2, netns: topo-demo-h2, address: 198.18.0.2}
      address: 198.18.0.2
      proto: udp
      duration: 1
      bitrate: 10000000
      capture: {node: h2, interface: eth0, netns: topo-demo-h2, filter: udp port 5201}
    capture_dir: "{{ lab_dir }}/captures"
"""

RETURN = r"""
ok: {description: Every run ran and reached O(check.min_bps)., returned: always, type: bool, sample: true}
type: {description: The check's type., returned: always, type: str, sample: iperf3}
name: {description: The check's name., returned: always, type: str, sample: h1-h2-tcp}
description: {description: The check's description., returned: always, type: str}
expected:
  description: One line - what should happen.
  returned: always
  type: str
  sample: ">= 100 Mbit/s at every length (200, 400, 800 B)"
observed:
  description: One line - what happened, per length, the median and its spread over the repeats (UDP adds loss and jitter).
  returned: always
  type: str
  sample: "200 B: 1.23 Gbit/s (1.2 Gbit/s..1.25 Gbit/s, 3 runs), 400 B: 2.34 Gbit/s (2.3 Gbit/s..2.4 Gbit/s, 3 runs)"
figures:
  description:
    - The measurements, all from iperf3's JSON output (C(iperf3 -J), iperf 3.12 keys) of the client.
    - C(runs[].bits_per_second) is what arrived - C(end.sum_received.bits_per_second)
      (UDP - C(end.sum) when there is no C(sum_received); the client's C(end.sum.bits_per_second)
      is the rate it sent).
    - C(runs[].retransmits) (TCP) is C(end.sum_sent.retransmits); C(jitter_ms), C(lost_packets),
      C(packets), C(lost_percent) (UDP) are C(end.sum)'s (the server's counts); the others are null.
    - C(runs[].length) is the buffer length in bytes (C(start.test_start.blksize) for iperf3's default).
    - One entry of C(runs) per length - each figure is the median over that length's repeats
      (Python's statistics.median - the mean of the two middle ones for an even count);
      C(runs[].median_bps) is C(runs[].bits_per_second), C(runs[].min_bps) and C(runs[].max_bps)
      the lowest and highest rate of its runs, C(runs[].repeats) how many ran, C(runs[].samples_bps)
      each run's rate in the order they ran.
    - C(min_bps) and C(median_bps) are the lowest and the median of the runs' bits_per_second
      (null without runs); C(threshold_bps) is O(check.min_bps); C(repeats) is O(check.repeats).
  returned: always
  type: dict
  sample:
    runs:
      - {length: 200, bits_per_second: 1234567890.0, retransmits: 0, jitter_ms: null,
         lost_percent: null, lost_packets: null, packets: null, median_bps: 1234567890.0,
         min_bps: 1200000000.0, max_bps: 1250000000.0, repeats: 3,
         samples_bps: [1234567890.0, 1200000000.0, 1250000000.0]}
    min_bps: 1234567890.0
    median_bps: 1234567890.0
    threshold_bps: 100000000.0
    repeats: 3
details:
  description:
    - Per node (by name), what it ran - C(role) (client, server, or client and server), C(netns),
      C(container), C(address), and C(runs) (one entry per run, in the order they ran, each with its
      C(length) and C(repeat) (1, 2, ...) - the client's C(argv), C(rc),
      C(error); the server's C(pid) (the host's, or the container's for a docker node), C(rc),
      C(stopped) (it had to be stopped), the C(bits_per_second) it measured itself, C(error)).
  returned: always
  type: dict
  sample:
    h1: {role: client, netns: topo-demo-h1, container: null, address: 198.18.0.1,
         runs: [{length: 200, argv: "iperf3 -c 198.18.0.2 -p 5201 -J -t 1 -P 1 --connect-timeout 5000 -l 200", rc: 0}]}
    h2: {role: server, netns: topo-demo-h2, container: null, address: 198.18.0.2,
         runs: [{length: 200, pid: 4242, rc: 0, stopped: false, bits_per_second: 1230000000.0}]}
capture:
  description: The capture - the pcap's C(path), C(total) packets, the first 50 C(rows) (see M(topo.lab.capture)).
  returned: when the check has a capture
  type: dict
msg: {description: Why the check failed., returned: failure, type: str,
      sample: "iperf3 TCP h1 -> h2 198.18.0.2:5201: below the minimum 1 Gbit/s: 200 B: 812 Mbit/s"}
"""

import signal
import sys

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._checks import iperf3, specs

#: The check's fields: the iperf3 spec of module_utils/_checks/specs.py.
CHECK = specs.SPECS["iperf3"]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            check=dict(type="dict", required=True, options=CHECK),
            capture_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    check = module.params["check"]
    wrong = specs.rules("iperf3", check)
    if wrong:
        module.fail_json(msg="iperf3 check %s: %s" % (check["name"], "; ".join(wrong)),
                         ok=False, type="iperf3", name=check["name"],
                         description=check["description"])
    # a terminated module still reaps its iperf3 servers and tcpdump (the finally blocks)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    result = iperf3.run_check(check, module.params["capture_dir"])
    if result["failed"]:
        module.fail_json(changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
