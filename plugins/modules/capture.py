#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: capture
short_description: Capture packets on a lab interface while traffic runs, and summarise them
description:
  - Runs on the build host (localhost, as root). Starts C(tcpdump) inside the network
    namespace O(netns) on O(interface), waits until it listens, runs the O(traffic) commands
    one after the other (or waits O(duration) seconds when there are none), waits O(settle)
    seconds and stops tcpdump. The tcpdump process is stopped whatever happens.
  - The pcap is kept at O(path) and summarised with scapy, one row per packet, tunnels
    opened up (VXLAN, GRE, gretap - over an IPv4 or an IPv6 underlay), so a task can assert
    what crosses a link.
  - "IPv4 and IPv6 alike: a row's C(protocol) is the innermost protocol - C(UDP), C(TCP),
    C(ICMP), C(ICMPv6) (echo, neighbour discovery, errors), C(MLD) (multicast listener
    queries, reports and dones, v1 and v2), C(IGMP), C(ARP). An ICMP or ICMPv6 error's
    quoted packet is not an inner packet. MLD travels after a hop-by-hop header, which
    BPF's C(icmp6) does not look through: filter MLD with C(ip6 dst ff02::16) (MLDv2
    reports) or C(ip6 multicast)."
  - With O(expect), the task fails unless at least O(expect.min_packets) packets match;
    the message lists the layer stacks that were seen.
  - This is an observation, not a change - it always reports C(changed=false). In check
    mode it captures nothing and reports C(skipped=true).
author: topo developers
requirements: [tcpdump and iproute2 on the build host, scapy >= 2.5 in its Python]
attributes:
  check_mode: {support: full}
  diff_mode: {support: none}
  idempotent: {support: full}
options:
  netns: {description: Namespace to capture in., type: str, required: true}
  interface: {description: Interface inside O(netns) (C(any) for all)., type: str, required: true}
  filter: {description: BPF filter expression (tcpdump syntax)., type: str}
  ssh:
    description:
      - O(netns) is on this remote build host, reached over SSH from where the module runs
        (the controller, for a lab with a remote build host) - the host's C(name) and
        inventory SSH settings (C(ansible_host), C(ansible_user), C(ansible_port),
        C(ansible_ssh_private_key_file), C(ansible_ssh_common_args)). tcpdump runs there and
        its pcap streams back to O(path) here; its interface is not looked up beforehand.
    type: dict
  count: {description: Stop after this many packets., type: int, default: 1000}
  snaplen: {description: Bytes kept of each packet., type: int, default: 262144}
  path: {description: Where the pcap is written; the parent directory is created., type: path, required: true}
  traffic:
    description: Commands run one after the other while the capture runs (argv, no shell).
      A non-zero exit is reported, not a failure.
    type: list
    elements: dict
    default: []
    suboptions:
      argv: {description: The command and its arguments., type: list, elements: str, required: true}
      netns: {description: "Namespace to run it in; the capture's O(netns) (and O(ssh)) when omitted.", type: str}
      ssh: {description: "The remote build host of this command's namespace, as O(ssh).", type: dict}
      timeout: {description: Seconds before the command is killed., type: float, default: 60}
  duration: {description: Seconds to capture when there is no O(traffic)., type: float, default: 3}
  settle: {description: Seconds to keep capturing after the traffic., type: float, default: 0.5}
  listen_timeout: {description: Seconds to wait for tcpdump to start listening., type: float, default: 10}
  max_rows: {description: Rows returned in RV(rows); RV(total) counts them all., type: int, default: 200}
  expect:
    description: What must have been captured; the task fails otherwise.
    type: dict
    suboptions:
      layers: {description: Layer names that must appear in this order (not necessarily adjacent)., type: list, elements: str}
      vni: {description: VXLAN VNI., type: int}
      gre_key: {description: GRE key., type: int}
      inner_src: {description: Innermost source IP address of an encapsulated packet., type: str}
      inner_dst: {description: Innermost destination IP address of an encapsulated packet., type: str}
      min_packets: {description: Matching packets needed., type: int, default: 1}
"""

EXAMPLES = r"""
- name: Pings between h1 and h2 cross the underlay in VXLAN 42
  topo.lab.capture:
    netns: topo-demo-r1
    interface: eth1
    filter: udp port 4789
    path: "{{ lab_dir }}/captures/r1-eth1.pcap"
    traffic:
      - {netns: topo-demo-h1, argv: [ping, -c, 3, -i, 0.2, -W, 1, 10.0.0.2]}
    expect: {layers: [VXLAN, ICMP], vni: 42, inner_dst: 10.0.0.2, min_packets: 3}
"""

RETURN = r"""
rows:
  description: The first O(max_rows) packets, summarised (times in seconds since the first packet).
  returned: success, and failure of O(expect)
  type: list
  elements: dict
  sample: [{time: 0.0, src: 198.18.0.1, dst: 198.18.0.2, protocol: ICMP, length: 148,
            kind: unicast, vni: 42, gre_key: null, inner_src: 198.18.1.1, inner_dst: 198.18.1.2,
            layers: [Ether, IP, UDP, VXLAN, Ether, IP, ICMP]}]
total: {description: Packets captured., returned: success, type: int, sample: 8}
matched: {description: Packets matching O(expect)., returned: when O(expect) is given, type: int, sample: 6}
path: {description: The pcap file., returned: always, type: str}
traffic:
  description: One entry per O(traffic) command.
  returned: success
  type: list
  elements: dict
  sample: [{netns: topo-demo-h1, argv: [ping, "-c", "3", 10.0.0.2], rc: 0, timed_out: false,
            stdout: "3 packets transmitted, 3 received, ...", stderr: ""}]
tcpdump:
  description: The capture process - pid, exit status and the last lines of its stderr.
  returned: success
  type: dict
  sample: {pid: 4242, rc: 0, stderr: "8 packets captured"}
elapsed: {description: Seconds from starting tcpdump to its exit., returned: success, type: float}
"""

import os
import signal
import socket
import sys
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils import _pcap, _process
from ansible_collections.topo.lab.plugins.module_utils._checks import specs
from ansible_collections.topo.lab.plugins.module_utils._netns import (
    NetnsError, entered, namespace_exists)


def run_traffic(ip, item, default_netns, default_ssh=None):
    """Run one traffic command inside its namespace (:func:`_process.run`; on its remote
    build host with ``ssh``, the capture's own for the capture's namespace); its result
    entry ``{netns, argv, rc, timed_out, stdout, stderr}`` (output tails)."""
    netns = item["netns"] or default_netns
    place = {"netns": netns, "ssh": item.get("ssh") if item["netns"] else default_ssh}
    res = {"netns": netns, "argv": item["argv"]}
    res.update(_process.run(place, item["argv"], item["timeout"], ip=ip))
    return res


def capture(p, tcpdump, ip):
    """Run tcpdump as the params ``p`` say (:class:`_process.Tcpdump`), around the
    traffic; returns (traffic results, tcpdump's {pid, rc, stderr}, elapsed seconds).
    CaptureError when tcpdump does not listen."""
    dump = _process.Tcpdump({"netns": p["netns"], "ssh": p["ssh"]}, p["interface"], p["path"], p["filter"],
                            p["snaplen"], p["count"], tcpdump=tcpdump, ip=ip)
    started = time.monotonic()
    traffic = []
    try:
        dump.start(p["listen_timeout"])
        for item in p["traffic"]:
            traffic.append(run_traffic(ip, item, p["netns"], p["ssh"]))
        time.sleep(p["settle"] if p["traffic"] else p["duration"])
    finally:
        dump.stop()
    return traffic, dump.info(), round(time.monotonic() - started, 3)


def describe(expect):
    """'layers VXLAN > ICMP, vni 43' for the failure message."""
    parts = ["layers " + " > ".join(expect["layers"])] if expect.get("layers") else []
    parts += ["%s %s" % (k, expect[k]) for k in ("vni", "gre_key", "inner_src", "inner_dst")
              if expect.get(k) is not None]
    return ", ".join(parts) or "any packet"


def seen(rows):
    """'6 x Ether/IP/UDP/VXLAN/Ether/IP/ICMP (vni 42), 2 x Ether/ARP': the stacks seen."""
    counts = {}
    for r in rows:
        key = "/".join(r["layers"]) + "".join(
            " (%s %s)" % (k, r[k]) for k in ("vni", "gre_key") if r[k] is not None)
        counts[key] = counts.get(key, 0) + 1
    return ", ".join("%d x %s" % (n, k) for k, n in
                     sorted(counts.items(), key=lambda kv: -kv[1])) or "no packets"


def main():
    module = AnsibleModule(
        argument_spec=specs.SPECS["capture"],
        supports_check_mode=True,
    )
    p = module.params
    # a terminated module still stops tcpdump (the finally in capture())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    if module.check_mode:
        module.exit_json(changed=False, skipped=True, path=p["path"],
                         msg="check mode: nothing captured")
    wrong = specs.rules("capture", p)
    if wrong:
        module.fail_json(msg="; ".join(wrong))
    tcpdump = "tcpdump" if p["ssh"] else module.get_bin_path("tcpdump", opt_dirs=["/usr/sbin", "/usr/bin"])
    if tcpdump is None:
        module.fail_json(msg="tcpdump is not installed on the build host "
                             "(Debian/Ubuntu: apt-get install tcpdump)")
    ip = module.get_bin_path("ip", required=True, opt_dirs=["/usr/sbin", "/sbin", "/usr/bin"])
    places = [(p["netns"], p["ssh"])] + [(t["netns"], t["ssh"]) for t in p["traffic"] if t["netns"]]
    missing = [ns for ns, ssh in places if not (_process.netns_exists(ns, {"ssh": ssh}) if ssh
                                                 else namespace_exists(ns))]
    if missing:
        module.fail_json(msg="namespace %s does not exist" % ", ".join(sorted(set(missing))))
    if p["interface"] != "any" and not p["ssh"]:
        try:
            with entered(p["netns"]):
                socket.if_nametoindex(p["interface"])
        except (OSError, NetnsError):
            module.fail_json(msg="interface %s does not exist in namespace %s"
                                 % (p["interface"], p["netns"]))
    p["path"] = os.path.abspath(p["path"])
    os.makedirs(os.path.dirname(p["path"]), exist_ok=True)

    try:
        traffic, proc, elapsed = capture(p, tcpdump, ip)
        rows = _pcap.summarize(p["path"])
    except Exception as exc:  # CaptureError, a missing scapy, an unreadable pcap
        module.fail_json(msg="capture on %s/%s failed: %s" % (p["netns"], p["interface"], exc),
                         path=p["path"])
    result = dict(changed=False, path=p["path"], rows=rows[:max(p["max_rows"], 0)],
                  total=len(rows), traffic=traffic, tcpdump=proc, elapsed=elapsed)
    expect = p["expect"]
    if expect is not None:
        crit = dict((k, v) for k, v in expect.items() if k != "min_packets")
        result["matched"] = len(_pcap.matches(rows, **crit))
        if result["matched"] < expect["min_packets"]:
            failed_cmds = ["%s (rc %s%s)" % (" ".join(t["argv"]), t["rc"],
                                             ", timed out" if t["timed_out"] else "")
                           for t in traffic if t["rc"] != 0]
            module.fail_json(
                msg="expected at least %d packet(s) with %s on %s/%s, %d matched; seen: %s%s"
                    % (expect["min_packets"], describe(expect), p["netns"], p["interface"],
                       result["matched"], seen(rows),
                       "; traffic failed: " + ", ".join(failed_cmds) if failed_cmds else ""),
                **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
