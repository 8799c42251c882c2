# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the build-host side of topo.lab.cast - runs one unicast, broadcast, multicast,
anycast or relay check (the runner of each type is the module of that name beside this
one, found in :data:`RUNNERS` by the check's ``type``).

:func:`run_check` returns the module result::

    {"changed": False, "failed": not ok, "ok": bool, "type", "name", "description",
     "expected": "one line", "observed": "one line",
     "figures": {...type-specific numbers...},
     "details": {node: {role label: {...what that node's agent reported...,
                                     "expect": "what was expected of it",
                                     "ok": bool, "problems": [str]}}},
     "capture": {"path", "node", "interface", "filter", "total", "rows"},  # with a capture
     "msg": "why it failed"}                                              # when it failed

How a check runs:

1. The check is validated against its type's spec (.specs, Ansible's ArgumentSpecValidator);
   a bad one fails with a message naming the check and the field.
2. The payloads are made (.payloads): ``bytes`` are drawn from ``os.urandom`` now.
3. The capture, when asked, starts: the build host's tcpdump in the capture node's network
   namespace (module_utils/_process.py), listening before any agent starts.
4. Every participant gets an agent (.agents); all must print READY within
   ``agents.READY_TIMEOUT`` seconds, or the check fails naming the node.
5. The type's runner plays the rounds and judges the reports (.verdicts).
6. Every agent is told STOP and reports; one that does not is killed. tcpdump is stopped
   (SIGINT: the pcap is flushed) and the pcap summarised.

Never raises for a check that fails or cannot run: the result says why (``msg``).
"""

from __future__ import absolute_import, division, print_function

import os
import tempfile
import time
import traceback

from ansible_collections.topo.lab.plugins.module_utils import _pcap, _process
from ansible_collections.topo.lab.plugins.module_utils._checks import (
    anycast, broadcast, multicast, relay, specs, unicast)
from ansible_collections.topo.lab.plugins.module_utils._checks.agents import (
    READY_TIMEOUT, CastError, Session, agent_source)
from ansible_collections.topo.lab.plugins.module_utils._checks.payloads import PayloadError, encode
from ansible_collections.topo.lab.plugins.module_utils._checks.verdicts import summary
from ansible_collections.topo.lab.plugins.module_utils._vocabulary import CAST_TYPES

__metaclass__ = type

#: check type -> its runner ``run(check, session, payloads, timeout)`` ->
#: (Verdict, expected, observed, figures); one module per type.
RUNNERS = {"unicast": unicast.run, "broadcast": broadcast.run, "multicast": multicast.run,
           "anycast": anycast.run, "relay": relay.run}
assert tuple(RUNNERS) == CAST_TYPES, "a cast type without its runner"
#: Capture rows returned (the pcap keeps them all).
CAPTURE_ROWS = 50


class Capture:
    """tcpdump on the capture node's interface for the duration of a check
    (:class:`_process.Tcpdump`: the build host's tcpdump in the node's named namespace,
    or in a container's by its PID). ``spec`` is the check's ``capture``
    ``{node, interface, netns, container, filter}``. CastError when it does not listen."""

    def __init__(self, spec, path, ip="ip", docker="docker", tcpdump="tcpdump"):
        self.spec, self.path = spec, path
        self.dump = _process.Tcpdump(spec, spec["interface"], path, spec.get("filter"),
                                     tcpdump=tcpdump, ip=ip, docker=docker)
        try:
            self.dump.start(READY_TIMEOUT)
        except _process.ProcessError as exc:
            raise CastError("capture on %s:%s: %s" % (spec.get("node"), spec["interface"], exc))

    def result(self):
        """Stops tcpdump; ``{path, node, interface, filter, total, rows (the first
        CAPTURE_ROWS)}``, with ``error`` when the pcap cannot be read. Every row stays in
        ``self.rows``."""
        self.dump.stop()
        self.rows = []
        res = {"path": self.path, "node": self.spec.get("node"),
               "interface": self.spec["interface"], "filter": self.spec.get("filter"),
               "total": 0, "rows": []}
        try:
            rows = self.rows = _pcap.summarize(self.path)
            res.update(total=len(rows), rows=rows[:CAPTURE_ROWS])
        except Exception as exc:  # a missing scapy, an empty or unreadable pcap
            res["error"] = "%s (tcpdump: %s)" % (exc, _process.tail(self.dump.err, 3))
        return res


def base_result(check):
    """The result of a check that did not run (yet): every key, ``failed`` True."""
    check = check if isinstance(check, dict) else {}
    return {"changed": False, "failed": True, "ok": False, "type": check.get("type"),
            "name": check.get("name"), "description": check.get("description") or "",
            "expected": "", "observed": "", "figures": {}, "details": {}}


def run_check(check, capture_dir=None, ip="ip", docker="docker", tcpdump="tcpdump",
              urandom=os.urandom):
    """Run one expanded cast check; the module result (see the module docstring).

    ``capture_dir``: where a capture's pcap goes (``<name>.pcap``; None: a new temporary
    directory). ``ip``, ``docker`` and ``tcpdump`` are the build host's binaries."""
    result = base_result(check)
    check, probs = specs.validate(check)
    if probs:
        result.update(observed="the check cannot run", msg="; ".join(probs))
        return result
    timeout = float(check["timeout"])
    sess, cap, wires = None, None, []
    wire_places = multicast.wire_places(check) if check["type"] == "multicast" else []
    cdir = None
    try:
        try:
            payloads = encode(check["payloads"], urandom)
        except PayloadError as exc:
            raise CastError(str(exc))
        if check.get("capture") or wire_places:
            cdir = os.path.abspath(capture_dir or tempfile.mkdtemp(prefix="topo-cast-"))
        if check.get("capture"):
            cap = Capture(check["capture"], os.path.join(cdir, check["name"] + ".pcap"),
                          ip, docker, tcpdump)
        start, attempts = time.monotonic(), 0
        while True:  # one attempt, and with wire: clean more while the wires are not clean
            attempts += 1
            wires = [Capture(dict(p, interface=i, filter=multicast.wire_filter(check)),
                             os.path.join(cdir, "%s-wire-%s-%s.pcap" % (check["name"], p["node"], i)),
                             ip, docker, tcpdump) for p, i in wire_places]
            sess = Session(agent_source(), ip, docker, family=check.get("family") or 4)
            verdict, expected, observed, figures = RUNNERS[check["type"]](check, sess, payloads,
                                                                         timeout)
            seen = _wire_seen(check, [(c, c.result()) for c in wires])
            wires = []
            waited = time.monotonic() - start
            # another attempt only if it starts within ``settle`` seconds of the first
            if (not wire_places or verdict.problems or not any(s["datagrams"] for s in seen.values())
                    or waited + multicast.WIRE_RETRY > check["settle"]):
                break
            sess.kill_all()
            time.sleep(multicast.WIRE_RETRY)  # the bridge's querier has not taken over yet
        result.update(expected=expected, observed=observed, figures=figures,
                      details=verdict.details)
        if cap is not None:
            result["capture"] = cap.result()
            if check["type"] == "multicast":
                for node, s in _wire_seen(check, [(cap, result["capture"])]).items():
                    seen.setdefault(node, s)
            cap = None
        problems = verdict.problems
        if check["type"] == "multicast":
            problems = problems + multicast.judge_wire(check, result, seen, attempts, waited)
        if problems:
            result["msg"] = "; ".join(problems)
        else:
            result.update(ok=True, failed=False)
    except Exception as exc:  # CastError: the message says it all; anything else is a bug
        if not isinstance(exc, CastError):
            exc = "internal error: %s: %s" % (type(exc).__name__, exc)
            result["exception"] = traceback.format_exc()
        result.update(observed="the check could not run: %s" % exc, msg=str(exc))
        if sess is not None:
            sess.stop()
            for a in sess.agents:
                result["details"].setdefault(a.node, {})[a.label] = summary(
                    a, "ready", [] if a.ready else ["not ready"])
    finally:
        if sess is not None:
            sess.kill_all()
        for c in wires:
            c.dump.stop()
        if cap is not None:
            result["capture"] = cap.result()
    return result


def _wire_seen(check, captures):
    """{silent node: {"interfaces": [captured], "datagrams": n}} from ``captures``
    [(Capture, its result)] of a multicast check: datagrams of the group seen on the
    wires of its silent nodes (a capture of a non-silent node does not count)."""
    silent = set(p["node"] for p in check.get("silent") or [])
    out = {}
    for c, res in captures:
        node = res.get("node")
        if node not in silent:
            continue
        s = out.setdefault(node, {"interfaces": [], "datagrams": 0})
        if res.get("error"):
            s.setdefault("errors", []).append("%s: %s" % (res["interface"], res["error"]))
            continue
        s["interfaces"].append(res["interface"])
        s["datagrams"] += len(multicast.group_rows(c.rows, check["group"]))
    return out
