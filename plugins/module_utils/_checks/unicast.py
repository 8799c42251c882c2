# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the unicast check: one sender, one receiver, UDP datagrams or one TCP connection.

The check (see .specs): ``proto`` udp|tcp, ``sender``, ``receiver``, ``address``, ``port``,
``payloads``, ``expect`` pass|fail. Pass: every payload arrives intact (TCP: in order, over
one connection); fail: the receiver gets nothing. Figures: ``proto``, ``sent``,
``received`` (datagrams or connections), ``intact``, ``bytes``, ``payloads``.
"""

from __future__ import absolute_import, division, print_function

from ansible_collections.topo.lab.plugins.module_utils._checks.agents import address_of, life
from ansible_collections.topo.lab.plugins.module_utils._checks.payloads import b64, public
from ansible_collections.topo.lab.plugins.module_utils._checks.verdicts import (
    Verdict, errors_of, hostport, missing, plural, records_of, sources, tcp_intact)

__metaclass__ = type


def run(check, sess, payloads, timeout):
    """Run unicast check ``check`` (validated by .specs) with the agents of ``sess``.

    One round: the sender sends every payload to the receiver (one TCP connection,
    or a datagram each), which must get them all intact - or nothing, with ``expect: fail``.
    ``payloads`` are encoded (.payloads); ``timeout`` in seconds. Returns ``(Verdict,
    expected line, observed line, figures)``."""
    proto, port, address = check.get("proto", "udp"), check["port"], check["address"]
    want_pass = check.get("expect", "pass") == "pass"
    recv = sess.start(check["receiver"], "receiver", {
        "role": "recv", "proto": proto, "port": port, "bind": "", "timeout": timeout,
        "segments": [p["length"] for p in payloads], "life": life(timeout)})
    send = sess.sender(check["sender"], proto, "unicast", address, port, b64(payloads), timeout)
    sess.all_ready()
    n = (len(payloads) if proto == "udp" else 1) if want_pass else 0
    sess.round(1, [recv], [send], {recv: n}, {}, timeout)
    sess.stop()

    v = Verdict()
    src = address_of(check["sender"])
    recs = records_of(recv)
    if proto == "tcp":
        intact, conn = tcp_intact(recs, payloads, src)
    else:
        intact = len(payloads) - len(missing(recs, payloads, 1, src))
    received = len(recs)
    if want_pass:
        probs = []
        if intact < len(payloads):
            probs = ["got %d of %d payloads intact%s from %s over %s" % (
                intact, len(payloads), " in order" if proto == "tcp" else "", check["sender"]["node"],
                proto)]
            if recs:
                probs[0] += " (%s from %s)" % (plural(received, "tcp connection" if proto == "tcp"
                                                      else "datagram"), ", ".join(sources(recs)))
        v.add(recv, "every payload intact%s" % (" in order" if proto == "tcp" else ""), probs)
        send_errs = errors_of(send)
        v.add(send, "sends every payload", [] if not probs else
              (["errors: " + "; ".join(send_errs)] if send_errs else []))
    else:
        probs = ["got %s (from %s) but must get nothing" % (
            plural(received, "connection" if proto == "tcp" else "datagram"),
            ", ".join(sources(recs)))] if received else []
        v.add(recv, "nothing", probs)
        v.add(send, "tries to send (errors expected)", [])
    what = "%s over %s to %s" % (plural(len(payloads), "payload"), proto, hostport(address, port))
    expected = "%s %s %s from %s" % (check["receiver"]["node"],
                                     "gets" if want_pass else "gets none of the", what,
                                     check["sender"]["node"])
    if received == 0:
        observed = "%s got nothing" % check["receiver"]["node"]
        if errors_of(send):
            observed += " (%s: %s)" % (check["sender"]["node"], "; ".join(errors_of(send)))
    else:
        observed = "%s got %d of %d payloads intact%s" % (
            check["receiver"]["node"], intact, len(payloads),
            " in order" if proto == "tcp" else "")
    figures = {"proto": proto, "sent": sum(e.get("sent", 0) for e in
                                           (send.report or {}).get("sent") or []),
               "received": received, "intact": intact,
               "bytes": sum(r.get("length", 0) for r in recs), "payloads": public(payloads)}
    return v, expected, observed, figures
