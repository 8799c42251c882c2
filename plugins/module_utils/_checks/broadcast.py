# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the broadcast check: one sender broadcasts (255.255.255.255 or a subnet broadcast); every
receiver gets every payload, every silent node nothing.

The check (see .specs): ``sender``, ``address``, ``port``, ``payloads``, ``receivers``,
``silent``. The sender binds its address, so a limited broadcast leaves by the interface
that has it. Figures: ``received`` {node: datagrams}, ``expected_per_receiver``,
``payloads``.
"""

from __future__ import absolute_import, division, print_function

from ansible_collections.topo.lab.plugins.module_utils._checks.agents import address_of
from ansible_collections.topo.lab.plugins.module_utils._checks.payloads import b64, public
from ansible_collections.topo.lab.plugins.module_utils._checks.verdicts import (
    Verdict, joined, names, plural, records_of, sender_notes, who_get, judge_listeners)

__metaclass__ = type


def run(check, sess, payloads, timeout):
    """Run broadcast check ``check`` (validated by .specs) with the agents of ``sess``.

    One round: the sender broadcasts every payload; each receiver must get them all,
    each silent node nothing (it listens on the same port).
    ``payloads`` are encoded (.payloads); ``timeout`` in seconds. Returns ``(Verdict,
    expected line, observed line, figures)``."""
    port, address = check["port"], check["address"]
    recvs, silent = sess.listeners(check, port, timeout)
    send = sess.sender(check["sender"], "udp", "broadcast", address, port, b64(payloads), timeout)
    sess.all_ready()
    sess.round(1, recvs + silent, [send], dict((a, len(payloads)) for a in recvs), {}, timeout)
    sess.stop()

    v, src = Verdict(), address_of(check["sender"])
    full, loud = judge_listeners(v, recvs, silent, payloads, src, check["sender"]["node"])
    v.add(send, "broadcasts every payload", [])
    if v.problems:
        for note in sender_notes(send):
            v.note(note)
    expected = joined(who_get(recvs, "receiver", "%s broadcast by %s to %s:%d" % (
        plural(len(payloads), "payload"), check["sender"]["node"], address, port)),
        who_get(silent, "silent node", "nothing"))
    observed = "%d of %d receivers got every payload; %s" % (
        len(full), len(recvs),
        "no silent node got anything" if not loud else
        "%s got datagrams" % names(loud))
    figures = {"received": dict((a.node, len(records_of(a))) for a in recvs + silent),
               "expected_per_receiver": len(payloads), "payloads": public(payloads)}
    return v, expected, observed, figures
