# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the multicast check: senders send to a group; members get every payload of every sender,
silent nodes nothing; optionally leavers drop the group for a second round, and members
ack every datagram.

The check (see .specs): ``group``, ``port``, ``ttl``, ``senders``, ``members``, ``silent``
(with ``join``: other groups they are members of), ``leave``, ``ack``, ``payloads``.
Figures: ``acks`` {sender: counted}, ``expected_acks`` {sender: n}, ``received`` {node:
datagrams}, ``received_by_round`` {"1": {node: datagrams}, ...}, ``rounds``,
``payloads``.

What reached the silent nodes' *wires* (:func:`judge_wire`, called by .cast once the
captures are read): a silent node's wire is seen when the check's ``capture`` is on one
of its interfaces, and with ``wire: clean`` on every interface of every silent node
(``silent[].wire``, one tcpdump each, filtered to the group and port). Figures then add
``wire`` {node: datagrams of the group on its wire} and ``group``, and with ``wire: clean``,
``wire_attempts``, ``wire_waited`` and ``wire_settle`` (the bound; seconds); each silent node's ``details`` entry adds
``wire`` {interfaces, datagrams, delivered, why}.

Why a datagram can be on a non-member's wire and still not be delivered: the node did not
join the group, so its kernel drops the datagram (no socket of it asked for the group;
every listener sets IP_MULTICAST_ALL=0). It got onto the wire because the bridge floods:
a bridge without IGMP/MLD snooping sends every multicast out of every port, and a
snooping Linux bridge does so too while no querier is on the segment.
"""

from __future__ import absolute_import, division, print_function

import time

from ansible_collections.topo.lab.plugins.module_utils._checks.agents import (
    GAP, JOIN_SETTLE, address_of, life)
from ansible_collections.topo.lab.plugins.module_utils._checks.payloads import b64, public
from ansible_collections.topo.lab.plugins.module_utils._checks.verdicts import (
    Verdict, errors_of, joined, listener_problems, missing, names, plural, records_of,
    hostport, same_address, silent_problems, who_get)

__metaclass__ = type

#: How long (seconds) a ``wire: clean`` check waits for a bridge's querier to take over,
#: by default: a new attempt starts while this long has not passed since the first one. The kernel counts the bridge's own querier only once
#: ``mcast_query_response_interval`` has passed since ``mcast_querier`` was switched on
#: (net/bridge/br_multicast.c: br_multicast_set_querier sets the delay,
#: __br_multicast_querier_exists waits for it; the default is 10 s, ``ip -d link show``
#: prints mcast_query_response_intvl 1000, in centiseconds), and floods every multicast
#: until then; topo leaves that timer at its default. Measured on Debian 12 (6.1): a new
#: bridge with a querier flooded a non-member for 9-10 s, then never. 2 s of margin.
WIRE_SETTLE = 12.0
#: Seconds between two attempts of a ``wire: clean`` check whose wires were not clean yet.
WIRE_RETRY = 1.0


def wire_filter(check):
    """The tcpdump filter of a wire capture: UDP datagrams to the group and port."""
    return "udp and dst host %s and dst port %d" % (check["group"], check["port"])


def wire_places(check):
    """[(silent participant, interface)]: the wires a ``wire: clean`` check captures."""
    if check.get("wire") != "clean":
        return []
    return [(p, i) for p in check.get("silent") or [] for i in p.get("wire") or []]


def group_rows(rows, group):
    """The capture rows (``_pcap.summarize``) of UDP datagrams to ``group``."""
    return [r for r in rows if r.get("dst") and "UDP" in (r.get("layers") or [])
            and same_address(r["dst"], group)]


def judge_wire(check, result, seen, attempts=1, waited=0.0):
    """Add what reached the silent nodes' wires to ``result`` (the module result, after the
    run): ``seen`` is {silent node: {"interfaces": [captured], "datagrams": n}} for the
    silent nodes whose wire was captured. Returns the problems (with ``wire: clean``:
    each silent node whose wire carried a datagram of the group)."""
    if not seen:
        return []
    clean = check.get("wire") == "clean"
    group = hostport(check["group"], check["port"])
    figures, details = result["figures"], result["details"]
    received = figures.get("received") or {}
    figures["wire"] = dict((n, s["datagrams"]) for n, s in sorted(seen.items()))
    figures["group"] = check["group"]
    if clean:
        figures.update(wire_attempts=attempts, wire_waited=round(waited, 1),
                       wire_settle=check.get("settle", WIRE_SETTLE))
    probs, dirty = [], []
    for node, s in sorted(seen.items()):
        n, got = s["datagrams"], received.get(node, 0)
        why = ""
        if n and not got:
            why = ("not delivered: %s did not join %s, so its kernel dropped %s (the bridge "
                   "flooded %s onto its wire)" % (node, check["group"], "it" if n == 1 else "them",
                                                 "it" if n == 1 else "them"))
        entry = details.setdefault(node, {}).get("silent")
        if entry is not None:
            entry["wire"] = {"interfaces": s["interfaces"], "datagrams": n, "delivered": got, "why": why}
        if clean and s.get("errors"):
            probs.append("%s (silent) its wire could not be read: %s" % (node, "; ".join(s["errors"])))
        if n:
            dirty.append("%s %s" % (node, plural(n, "datagram")))
            if clean:
                probs.append("%s (silent) %s to %s reached its wire (%s)%s: the bridge flooded %s" % (
                    node, plural(n, "datagram"), group, ", ".join(s["interfaces"]),
                    " after %d attempts over %.0f s" % (attempts, waited) if attempts > 1 else "",
                    "it" if n == 1 else "them"))
    if dirty:
        text = "on the silent nodes' wires: %s of the group (%s)" % (
            ", ".join(dirty), "a non-member's kernel drops what it did not join" if not probs
            else "must stay clean")
    else:
        text = "the silent nodes' wires stayed clean (%s)" % ", ".join(sorted(seen))
    result["observed"] = joined(result.get("observed"), text)
    return probs


def run(check, sess, payloads, timeout):
    """Run multicast check ``check`` (validated by .specs) with the agents of ``sess``.

    Members join, senders send to the group (round 1); with ``leave`` the leavers drop
    it and round 2 follows; with ``ack`` members ack every datagram to its sender.
    ``payloads`` are encoded (.payloads); ``timeout`` in seconds. Returns ``(Verdict,
    expected line, observed line, figures)``."""
    port, group, ttl = check["port"], check["group"], check.get("ttl", 1)
    ack = bool(check.get("ack"))
    leave = set(check.get("leave") or [])
    rounds = 2 if leave else 1
    lt = life(timeout, rounds)
    members = [sess.start(p, "member", {
        "role": "recv", "proto": "udp", "port": port, "bind": "", "ack": ack, "timeout": timeout,
        "groups": [{"group": group, "interface": p.get("interface") or p.get("address")}],
        "life": lt}) for p in check.get("members") or []]
    # a silent node may be a member of other groups (``join``): it joins them, and must
    # still get nothing of this one
    silent = [sess.start(p, "silent", {
        "role": "recv", "proto": "udp", "port": port, "bind": "", "timeout": timeout,
        "groups": [{"group": g, "interface": p.get("interface") or p.get("address")}
                   for g in p.get("join") or []],
        "life": lt}) for p in check.get("silent") or []]
    senders = []
    for p in check["senders"]:
        iface = p.get("interface") or p.get("address")
        senders.append(sess.start(p, "sender", {
            "role": "send", "proto": "udp", "mode": "multicast", "address": group, "port": port,
            "ttl": ttl, "interface": iface, "bind": iface, "payloads": b64(payloads),
            "timeout": timeout, "gap": GAP, "life": lt}))
    sess.all_ready()
    time.sleep(JOIN_SETTLE)
    listeners = members + silent
    per_member = len(senders) * len(payloads)
    expect_acks = dict((s, 0) for s in senders)
    receiving = {1: members, 2: [m for m in members if m.node not in leave]}
    for rnd in range(1, rounds + 1):
        if rnd == 2:
            sess.command([m for m in members if m.node in leave], "LEAVE", echo=("LEFT", None))
        if ack:
            for s in senders:
                expect_acks[s] += len(receiving[rnd]) * len(payloads)
        sess.round(rnd, listeners, senders, dict((m, per_member) for m in receiving[rnd]),
                   dict(expect_acks), timeout)
    sess.stop()

    v = Verdict()
    sender_src = [(s, address_of(p, "interface") or address_of(p)) for s, p in zip(senders, check["senders"])]
    for m in members:
        probs = []
        for rnd in range(1, rounds + 1):
            if m in receiving[rnd]:
                for s, src in sender_src:
                    probs += listener_problems(m, payloads, rnd, src, s.node)
            else:
                probs += ["left the group but " + p for p in silent_problems(m, rnd)]
        for e in errors_of(m):
            if not any(e in p for p in probs):
                probs.append("error: " + e)
        exp = "every payload of every sender" + (
            " in round 1, nothing in round 2 (leaves)" if m.node in leave else
            (" in both rounds" if rounds == 2 else ""))
        v.add(m, exp, probs)
    for a in silent:
        v.add(a, "nothing", silent_problems(a))
    acks = dict((s.node, (s.report or {}).get("acks", s.acks())) for s in senders)
    expected_acks = dict((s.node, n) for s, n in expect_acks.items())
    for s in senders:
        probs = []
        if acks[s.node] != expected_acks[s.node]:
            probs.append("counted %d acks, expected %d" % (acks[s.node], expected_acks[s.node]))
        if errors_of(s):
            probs.append("errors: " + "; ".join(errors_of(s)))
        v.add(s, "sends every payload%s" % (
            ", gets %d acks" % expected_acks[s.node] if ack else ""), probs)
    expected = joined(
        who_get(members, "member", "%s from each of %s (%s, %s %d)" % (
            plural(len(payloads), "payload"), plural(len(senders), "sender"),
            hostport(group, port), "hop limit" if check.get("family") == 6 else "ttl", ttl)),
        "%s %s the group after round 1 and %s nothing in round 2" % (
            ", ".join(sorted(leave)), "leaves" if len(leave) == 1 else "leave",
            "gets" if len(leave) == 1 else "get") if leave else "",
        who_get(silent, "silent node", "nothing"),
        "the senders count %s" % plural(sum(expected_acks.values()), "ack") if ack else "")
    parts = []
    for rnd in range(1, rounds + 1):
        full = [m for m in receiving[rnd]
                if not any(missing(records_of(m), payloads, rnd, src) for _, src in sender_src)]
        parts.append("round %d: %d of %d members got every payload" % (
            rnd, len(full), len(receiving[rnd])))
    if leave:
        loud = [m for m in members if m.node in leave and m.got(2)]
        parts.append("leavers got nothing in round 2" if not loud else
                     "%s got datagrams after leaving" % names(loud))
    loud = [a for a in silent if records_of(a)]
    parts.append("no silent node got anything" if not loud else "%s got datagrams" % names(loud))
    if ack:
        parts.append("acks %d of %d" % (sum(acks.values()), sum(expected_acks.values())))
    received = dict((a.node, len(records_of(a))) for a in listeners)
    by_round = dict((str(rnd), dict((a.node, sum(1 for r in records_of(a) if r.get("round") == rnd))
                                    for a in listeners)) for rnd in range(1, rounds + 1))
    figures = {"acks": acks, "expected_acks": expected_acks, "received": received,
               "received_by_round": by_round, "rounds": rounds, "payloads": public(payloads)}
    return v, expected, "; ".join(parts), figures
