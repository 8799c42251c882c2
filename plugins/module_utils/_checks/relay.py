# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the relay check: a sender sends to a relay node, which resends every datagram to
``out_address:out_port`` (a broadcast, or over IPv6 a group such as ff02::1, which the
listeners join); every receiver gets every payload, every silent node nothing.

The check (see .specs): ``sender``, ``relay``, ``address`` (the relay's), ``port``,
``out_address``, ``out_port``, ``payloads``, ``receivers``, ``silent``. Figures:
``relay_received``, ``relayed``, ``received`` {node: datagrams}, ``expected_per_receiver``,
``payloads``.
"""

from __future__ import absolute_import, division, print_function

from ansible_collections.topo.lab.plugins.module_utils._checks.agents import address_of, life
from ansible_collections.topo.lab.plugins.module_utils._checks.payloads import b64, public
from ansible_collections.topo.lab.plugins.module_utils._checks.verdicts import (
    Verdict, errors_of, joined, judge_listeners, listener_problems, missing, names, plural,
    records_of, sender_notes, who_get)

__metaclass__ = type


def run(check, sess, payloads, timeout):
    """Run relay check ``check`` (validated by .specs) with the agents of ``sess``.

    One round: the sender sends to the relay, which resends every datagram to
    out_address:out_port; receivers there must get them all, silent nodes nothing.
    ``payloads`` are encoded (.payloads); ``timeout`` in seconds. Returns ``(Verdict,
    expected line, observed line, figures)``."""
    port, out_port = check["port"], check["out_port"]
    out = check["out_address"]
    # over IPv6 the relay resends to a group (ff02::1): the listeners join it
    recvs, silent = sess.listeners(check, out_port, timeout,
                                   group=out if ":" in out and out.lower().startswith("ff") else None)
    relay = sess.start(check["relay"], "relay", {
        "role": "relay", "address": check["address"], "port": port,
        "out_address": check["out_address"], "out_port": out_port, "timeout": timeout,
        "life": life(timeout)})
    send = sess.sender(check["sender"], "udp", "unicast", check["address"], port, b64(payloads),
                       timeout)
    sess.all_ready()
    want = dict((a, len(payloads)) for a in recvs)
    want[relay] = len(payloads)
    sess.round(1, recvs + silent + [relay], [send], want, {}, timeout)
    sess.stop()

    v = Verdict()
    probs = listener_problems(relay, payloads, 1, address_of(check["sender"]), check["sender"]["node"])
    relayed = (relay.report or {}).get("relayed", 0)
    if relayed < len(payloads) and not probs:
        probs.append("resent %d of %d payloads to %s:%d%s" % (
            relayed, len(payloads), check["out_address"], out_port,
            "; errors: " + "; ".join(errors_of(relay)) if errors_of(relay) else ""))
    v.add(relay, "every payload from %s, resent to %s:%d" % (
        check["sender"]["node"], check["out_address"], out_port), probs)
    full, loud = judge_listeners(v, recvs, silent, payloads)
    v.add(send, "sends every payload to the relay", [])
    if v.problems:
        for note in sender_notes(send):
            v.note(note)
    expected = joined("%s relays %s from %s (%s:%d) to %s:%d" % (
        check["relay"]["node"], plural(len(payloads), "payload"), check["sender"]["node"],
        check["address"], port, check["out_address"], out_port),
        who_get(recvs, "receiver", "every one"), who_get(silent, "silent node", "nothing"))
    observed = "relay got %d and resent %d of %d; %d of %d receivers got every payload; %s" % (
        len(payloads) - len(missing(records_of(relay), payloads, 1)), relayed, len(payloads),
        len(full), len(recvs),
        "no silent node got anything" if not loud else "%s got datagrams" % names(loud))
    figures = {"relay_received": len(records_of(relay)), "relayed": relayed,
               "received": dict((a.node, len(records_of(a))) for a in recvs + silent),
               "expected_per_receiver": len(payloads), "payloads": public(payloads)}
    return v, expected, observed, figures
