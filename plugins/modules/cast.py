#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
---
module: cast
short_description: Run one unicast, broadcast, multicast, anycast or relay check between lab nodes
description:
  - Runs on the build host (localhost, as root). Starts a small agent (Python standard library
    only, shipped as C(python3 -c)) in every node that takes part - through C(ip netns exec) for
    a namespace node, C(docker exec -i) for a docker node - waits until every one is listening,
    sends the payloads and compares what each node received with what it should have.
  - Listeners that must get nothing (O(check.silent)) listen on the same port as the receivers,
    so a datagram that leaks to them is seen. Every UDP listener sets C(IP_MULTICAST_ALL=0),
    so it only gets the groups it joined itself.
  - Payloads are compared byte for byte (length and SHA-256). C(bytes) payloads are drawn at
    run time from C(os.urandom).
  - "Timing: receivers listen until everything expected of a round arrived plus 0.3 s (so a
    stray copy to a silent node is still seen), or until O(check.timeout) seconds after the
    senders finished. A round in which nothing may arrive (a unicast with C(expect: fail))
    listens the whole O(check.timeout)."
  - With O(check.capture), tcpdump runs on that node's interface for the duration of the check;
    the pcap is kept at O(capture_dir)/<check name>.pcap and summarised (RV(capture)).
  - The task fails when the check does not pass; the result still carries every key, and
    RV(msg) says why, node by node. A check that cannot run (a node whose agent does not
    start, e.g. python3 missing in a container; a malformed check) fails the same way.
  - "O(check) is validated against the spec of its C(type) (Ansible's argument spec
    validator; the fields are in the notes), then value ranges and fields that must agree;
    a malformed check fails with RV(msg) C(<type> check <name>: <what is wrong, naming the field>)."
  - This is an observation, not a change - it always reports C(changed=false), also in
    check mode, where it runs too (it changes nothing in the lab).
author: topo developers
requirements:
  - iproute2 on the build host; the docker CLI for docker nodes; tcpdump and scapy for captures
  - python3 (3.7 or newer, standard library only) inside every node that takes part
attributes:
  check_mode: {support: full}
  diff_mode: {support: none}
  idempotent: {support: full}
notes:
  - "A participant (P below) is a dict C({node, netns, container, address}): C(container) null
    runs the agent with C(ip netns exec netns), else with C(docker exec -i container);
    C(address) is the node's first IPv4 address, the address it sends from (its first IPv6
    address on an IPv6 check). A participant (or C(capture)) with C(ssh) lives on a remote
    build host - C(ssh) is that host's C(name) and inventory SSH settings (C(ansible_host),
    C(ansible_user), C(ansible_port), C(ansible_ssh_private_key_file),
    C(ansible_ssh_common_args)) - and its agent (or tcpdump, whose pcap comes back over SSH)
    runs there through C(ssh HOST -- ip netns exec NETNS ...); topo runs the module on the
    controller then, so one check may span several build hosts."
  - "IPv6: a check with C(family: 6) runs over IPv6 (absent or 4 - IPv4). Every address of
    it is then IPv6 (no length), a multicast C(group) is in ff00::/8 and C(ttl) is the hop
    limit (IPV6_MULTICAST_HOPS). Members join with IPV6_JOIN_GROUP (the kernel sends an MLD
    report; C(leave) drops it with IPV6_LEAVE_GROUP, an MLD done) on the interface that has
    their C(interface) address (its index, looked up in the node), and senders send out of
    that interface (IPV6_MULTICAST_IF: a link-scope group such as ff02::/16 needs one).
    Listeners set C(IPV6_MULTICAST_ALL=0) and C(IPV6_V6ONLY). Broadcast is IPv4-only: a
    broadcast check with C(family: 6) fails with C(broadcast is IPv4-only; use multicast to
    ff02::1). An address of the other family fails the check naming the field."
  - "A payload is C({text: str}) (UTF-8), C({json: value}) (C(json.dumps) with the compact
    separators comma and colon and sorted keys, UTF-8) or C({bytes: N}) (N random bytes)."
  - "unicast: C(proto) udp|tcp, C(sender) P, C(receiver) P, C(address), C(port), C(payloads),
    C(expect) pass|fail. TCP sends every payload over one connection; pass means they arrived
    intact and in order. With C(expect: fail) the receiver must get nothing."
  - "broadcast: C(sender) P, C(address) (255.255.255.255 or a subnet broadcast), C(port),
    C(payloads), C(receivers) [P], C(silent) [P]. The sender binds its address, so a limited
    broadcast leaves by the interface that has it."
  - "multicast: C(group), C(port), C(ttl), C(senders) [P + interface], C(members) [P + interface],
    C(silent) [P + optional join, optional wire (interface names)], C(leave) [member names],
    C(ack) bool, C(wire) (null or clean), C(settle) (seconds, default 12), C(payloads). Members
    join on C(interface) (null - their address); senders send with IP_MULTICAST_TTL=ttl and
    IP_MULTICAST_IF=interface. A silent node joins the other groups in its C(join) list (it
    is a member of those) and must still get nothing of this one. With C(leave), round 2
    follows after the leavers dropped the group: they must get nothing, the others all of it.
    With C(ack), every member acks each datagram to its source; each sender must count
    members x payloads acks per round."
  - "multicast wires: when C(capture) is on a silent node's interface, the result also says
    what reached that node's wire (figures C(wire), details C(wire)): a datagram of the group
    on a non-member's wire is not delivered (the node did not join, its kernel drops it); it
    got there because the bridge flooded it (no IGMP/MLD snooping, or no querier yet).
    With C(wire=clean), every interface in each silent node's C(wire) list is captured
    (tcpdump, C(udp and dst host GROUP and dst port PORT), C(<name>-wire-<node>-<if>.pcap)),
    and a datagram of the group on any of them fails the check naming the node. The bridges
    the silent nodes are on must snoop and have a querier (topo's front end refuses the
    check otherwise); a Linux bridge counts its own querier only
    C(mcast_query_response_interval) (10 s by default) after it was switched on and floods
    until then, so while a wire is not clean the whole check runs again (agents and
    captures anew, 1 s apart), each new attempt starting within C(settle) seconds (default
    12) of the first; the last attempt is judged."
  - "anycast: C(address) (on every server), C(port), C(protos) [tcp, udp], C(servers) [P],
    C(clients) [P + expect (a server's node name)], optional C(payloads) (the requests). Each
    server answers every request with its node name - over UDP each payload is a request,
    over TCP the connection is; every answer must come from the expected server."
  - "relay: C(sender) P, C(relay) P, C(address) (the relay's), C(port), C(out_address),
    C(out_port), C(payloads), C(receivers) [P], C(silent) [P]. The relay resends each datagram
    it gets on address:port, the same bytes, to out_address:out_port with SO_BROADCAST; a
    limited broadcast leaves by the interface that has the relay's address. Over IPv6 the
    relay resends to a unicast address or to a group (C(ff02::1), all nodes - what topo's
    front end uses), out of the interface that has the relay's address; the listeners then
    join that group (a listener gets only the groups it joined)."
options:
  check:
    description:
      - One expanded check; the shapes are in the notes. Common keys C(type)
        (unicast, broadcast, multicast, anycast, relay), C(name) (the pcap's file name),
        C(description), C(timeout) (seconds receivers listen, float, default 2), C(family)
        (4 or 6; absent - 4, see the notes) and optional
        C(capture) C({node, interface, netns, container, filter}).
    type: dict
    required: true
  capture_dir:
    description:
      - Directory for the pcap of a check with C(capture) (created when missing). When
        omitted, a new temporary directory is used.
    type: path
"""

EXAMPLES = r"""
- name: Every member of 224.1.1.1 hears both sources, the others nothing
  topo.lab.cast:
    capture_dir: "{{ lab_dir }}/captures"
    check:
      type: multicast
      name: cluster-a-multicast
      description: members hear both sources, h5 hears nothing
      timeout: 2
      group: 224.1.1.1
      port: 5007
      ttl: 1
      ack: true
      leave: [a-h3]
      payloads: [{text: "Hello, Cluster A!"}, {json: {sensor: temp, value: 22.29}}, {bytes: 16}]
      senders:
        - {node: a-h1, netns: topo-demo-a-h1, container: null, address: 192.18.0.11, interface: null}
      members:
        - {node: a-h2, netns: topo-demo-a-h2, container: null, address: 192.18.0.12, interface: null}
        - {node: a-h3, netns: topo-demo-a-h3, container: topo-demo-a-h3, address: 192.18.0.13, interface: null}
      silent:
        - {node: a-h5, netns: topo-demo-a-h5, container: null, address: 192.18.0.15}
      capture: {node: a-h2, interface: eth0, netns: topo-demo-a-h2, container: null, filter: udp port 5007}

- name: Over IPv6 with MLD - h2 joins ff0e::5 on eth0, h4 joined only ff0e::6 gets nothing
  topo.lab.cast:
    check:
      type: multicast
      name: hello-ff0e-5
      family: 6
      group: ff0e::5
      port: 50001
      ttl: 1
      payloads: [{text: "Hello, World!"}]
      senders:
        - {node: h1, netns: topo-m6-h1, container: null, address: "2001:db8:1::1", interface: "2001:db8:1::1"}
      members:
        - {node: h2, netns: topo-m6-h2, container: null, address: "2001:db8:1::2", interface: "2001:db8:1::2"}
      silent:
        - {node: h4, netns: topo-m6-h4, container: null, address: "2001:db8:1::4", join: ["ff0e::6"]}

- name: Members only - no datagram of 224.1.1.5 may reach h4's wire (bridge with querier)
  topo.lab.cast:
    check:
      type: multicast
      name: clean-224-1-1-5
      group: 224.1.1.5
      port: 50001
      wire: clean
      payloads: [{text: "Hello, members only!"}]
      senders:
        - {node: h1, netns: topo-mc-h1, container: null, address: 172.16.0.1, interface: null}
      members:
        - {node: h2, netns: topo-mc-h2, container: null, address: 172.16.0.2, interface: null}
      silent:
        - {node: h4, netns: topo-mc-h4, container: null, address: 172.16.0.4, wire: [eth0]}

- name: The nearest anycast server answers
  topo.lab.cast:
    check:
      type: anycast
      name: dns-anycast
      description: each site reaches its own resolver
      timeout: 1
      address: 10.255.0.1
      port: 5353
      protos: [tcp, udp]
      servers:
        - {node: s1, netns: topo-demo-s1, container: null, address: 10.0.1.10}
        - {node: s2, netns: topo-demo-s2, container: null, address: 10.0.2.10}
      clients:
        - {node: c1, netns: topo-demo-c1, container: null, address: 10.0.1.1, expect: s1}
        - {node: c2, netns: topo-demo-c2, container: null, address: 10.0.2.1, expect: s2}
"""

RETURN = r"""
ok: {description: Whether the check passed., returned: always, type: bool, sample: true}
type: {description: The check's type., returned: always, type: str, sample: multicast}
name: {description: The check's name., returned: always, type: str, sample: cluster-a-multicast}
description: {description: The check's description., returned: always, type: str}
expected:
  description: One line - what should happen.
  returned: always
  type: str
  sample: 2 members get 3 payloads from each of 1 sender (224.1.1.1:5007, ttl 1); a-h3 leave after round 1 and get nothing in round 2; 1 silent node get nothing; 9 acks
observed:
  description: One line - what happened.
  returned: always
  type: str
  sample: "round 1: 2 of 2 members got every payload; round 2: 1 of 1 members got every payload; leavers got nothing in round 2; no silent node got anything; acks 9 of 9"
figures:
  description:
    - Type-specific numbers. Every type with payloads has C(payloads) [{kind, length, sha256}]
      (the bytes actually sent).
    - "unicast: C(proto), C(sent), C(received) (datagrams or connections), C(intact), C(bytes)."
    - "broadcast: C(received) {node: datagrams}, C(expected_per_receiver)."
    - "multicast: C(acks) {sender: acks counted}, C(expected_acks) {sender: n},
      C(received) {node: datagrams}, C(received_by_round) {round: {node: datagrams}}, C(rounds);
      when a silent node's wire was captured also C(group) and C(wire) {silent node: datagrams
      of the group on its wire}, and with C(wire=clean) C(wire_attempts), C(wire_waited) and
      C(wire_settle) (seconds)."
    - "anycast: C(answers) {client: {proto: answering server or null}}, C(expected)
      {client: server}, C(served) {server: {proto: requests}}."
    - "relay: C(relay_received), C(relayed), C(received) {node: datagrams},
      C(expected_per_receiver)."
  returned: always (empty when the check could not run)
  type: dict
  sample: {acks: {a-h1: 9}, expected_acks: {a-h1: 9}, received: {a-h2: 6, a-h3: 3, a-h5: 0},
           received_by_round: {"1": {a-h2: 3, a-h3: 3, a-h5: 0}, "2": {a-h2: 3, a-h3: 0, a-h5: 0}},
           rounds: 2, payloads: [{kind: text, length: 17, sha256: "5c1f..."}]}
details:
  description:
    - "Per node, per role label (receiver, silent, member, sender, relay, server, client/tcp,
      client/udp): what the node's agent reported, with C(expect) (what was expected of it),
      C(ok) and C(problems)."
    - "A multicast silent node whose wire was captured adds C(wire) {interfaces, datagrams
      (on its wire), delivered (to its sockets), why}."
    - "Listeners report C(received) (the first 20 of C(count) records: round, src, sport, dst,
      length, sha256, preview - the payload as text when short UTF-8); senders C(sent),
      C(replies), C(acks), C(acks_from); everyone C(errors)."
  returned: always
  type: dict
  sample: {a-h5: {silent: {role: recv, count: 0, received: [], errors: [], expect: nothing, ok: true, problems: []}}}
capture:
  description: The capture, when the check has one - pcap path, packets captured and the first 50
    summary rows (see M(topo.lab.capture)); C(error) when it could not be read.
  returned: when the check has a capture
  type: dict
  sample: {path: /lab/captures/cluster-a-multicast.pcap, node: a-h2, interface: eth0, filter: udp port 5007,
           total: 6, rows: [{time: 0.0, src: 192.18.0.11, dst: 224.1.1.1, protocol: UDP, length: 59,
                             kind: multicast, vni: null, gre_key: null, layers: [Ether, IP, UDP]}]}
msg:
  description: Why the check failed, node by node.
  returned: failure
  type: str
  sample: "a-h5 (silent) got 3 datagrams (from 192.18.0.11)"
"""

import signal
import sys

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.topo.lab.plugins.module_utils._checks import cast as runner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            check=dict(type="dict", required=True),
            capture_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    # a terminated module still stops its agents and tcpdump (run_check's finally)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    check = module.params["check"]
    def need(program, opt_dirs, missing):
        """The path of ``program`` on the build host, or the check fails saying ``missing``."""
        path = module.get_bin_path(program, opt_dirs=opt_dirs)
        if path is None:
            module.fail_json(**dict(runner.base_result(check), msg=missing))
        return path

    bins = {"ip": module.get_bin_path("ip", opt_dirs=["/usr/sbin", "/sbin", "/usr/bin"]) or "ip"}
    if any(p.get("container") and not p.get("ssh") for p in _participants(check)):  # docker here
        bins["docker"] = need("docker", ["/usr/bin", "/usr/local/bin"],
                              "the check has docker nodes and the docker CLI is not installed on the build host")
    if isinstance(check.get("capture"), dict) and not check["capture"].get("ssh"):
        bins["tcpdump"] = need("tcpdump", ["/usr/sbin", "/usr/bin"], "tcpdump is not installed on the build host "
                               "(Debian/Ubuntu: apt-get install tcpdump)")
    result = runner.run_check(check, module.params["capture_dir"], **bins)
    if result["ok"]:
        module.exit_json(**result)
    module.fail_json(**result)


def _participants(check):
    """Every participant dict of the check (for the binaries it needs)."""
    out = []
    for key, value in check.items():
        if isinstance(value, dict) and ("netns" in value or "container" in value):
            out.append(value)
        elif isinstance(value, list):
            out += [v for v in value if isinstance(v, dict) and ("netns" in v or "container" in v)]
    return out


if __name__ == "__main__":
    main()
