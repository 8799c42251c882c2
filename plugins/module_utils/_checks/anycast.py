# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the anycast check: clients send requests to an address every server holds; each must be
answered by the server it expects (the nearest), over every protocol.

The check (see .specs): ``address``, ``port``, ``protos`` [tcp, udp], ``servers``,
``clients`` (each with ``expect``: a server's node name), optional ``payloads`` (the
requests; without, one request naming the client). Figures: ``answers`` {client: {proto:
server or None}}, ``expected`` {client: server}, ``served`` {server: {proto: requests}}.
"""

from __future__ import absolute_import, division, print_function

import time

from ansible_collections.topo.lab.plugins.module_utils._checks.agents import GAP, address_of, life
from ansible_collections.topo.lab.plugins.module_utils._checks.payloads import b64, b64_text
from ansible_collections.topo.lab.plugins.module_utils._checks.verdicts import (
    Verdict, errors_of, hostport, plural, records_of)

__metaclass__ = type

#: The request a client sends when the check has no payloads (the servers answer
#: every request with their node name).
ANYCAST_REQUEST = "topo anycast request from %s"


def run(check, sess, payloads, timeout):
    """Run anycast check ``check`` (validated by .specs) with the agents of ``sess``.

    Every client sends its requests over each protocol; each must be answered by the
    server it expects; servers answer every request with their node name.
    ``payloads`` are encoded (.payloads); ``timeout`` in seconds. Returns ``(Verdict,
    expected line, observed line, figures)``."""
    port, address = check["port"], check["address"]
    protos = check.get("protos") or ["tcp", "udp"]
    servers = [sess.start(p, "server", {
        "role": "serve", "address": address, "port": port, "protos": protos,
        "timeout": timeout, "life": life(timeout)}) for p in check["servers"]]
    clients = []
    for p in check["clients"]:
        requests = b64(payloads) or [
            b64_text(ANYCAST_REQUEST % p["node"])]
        for proto in protos:
            # udp: each request is a datagram, each answered; tcp: one connection, one answer
            want = len(requests) if proto == "udp" else 1
            clients.append((p, proto, want, sess.start(p, "client/" + proto, {
                "role": "send", "proto": proto, "mode": "unicast", "address": address,
                "port": port, "bind": address_of(p), "timeout": timeout, "life": life(timeout),
                "gap": GAP, "payloads": requests})))
    sess.all_ready()
    sess.command([c for _, _, _, c in clients], "SEND 1")
    sess.wait(lambda: all((c.sent(1) and len(c.replies()) >= want) or c.closed
                          for _, _, want, c in clients),
              time.monotonic() + 2 * timeout + 2)
    sess.stop()

    v = Verdict()
    answers = {}
    for p, proto, want, c in clients:
        replies = (c.report or {}).get("replies") or []
        texts = [r.get("text") for r in replies]
        answer = texts[0] if texts else None
        answers.setdefault(p["node"], {})[proto] = answer
        probs = []
        if answer is None:
            probs.append("no answer over %s within %.1f s%s" % (
                proto, timeout, "; " + "; ".join(errors_of(c)) if errors_of(c) else ""))
        else:
            wrong = sorted(set(t for t in texts if t != p["expect"]), key=str)
            if wrong:
                probs.append("answered over %s by %s, expected %s" % (
                    proto, ", ".join(map(str, wrong)), p["expect"]))
            if len(texts) != want:
                probs.append("got %d answers over %s to %s" % (
                    len(texts), proto, plural(want, "request")))
        v.add(c, "%s from %s" % (plural(want, "answer"), p["expect"]), probs)
    served = {}
    for s in servers:
        got = records_of(s)
        served[s.node] = dict((proto, sum(1 for r in got if r.get("proto") == proto))
                              for proto in protos)
        v.add(s, "answers what reaches it", ["errors: " + "; ".join(errors_of(s))]
              if errors_of(s) else [])
    expected = "each of %s gets its answer over %s to %s from the nearest of %s (%s)" % (
        plural(len(check["clients"]), "client"), "/".join(protos), hostport(address, port),
        plural(len(servers), "server"),
        ", ".join("%s->%s" % (p["node"], p["expect"]) for p in check["clients"]))
    observed = ", ".join("%s->%s" % (node, "/".join(
        "%s:%s" % (proto, a if a is not None else "none") for proto, a in by.items()))
        for node, by in answers.items())
    figures = {"answers": answers, "expected": dict((p["node"], p["expect"]) for p in check["clients"]),
               "served": served}
    return v, expected, observed, figures
