# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: judging what arrived in a cast check - members, silent listeners, acks.

The agents' reports (see :mod:`.agents`) carry ``received`` records::

    {"round": 1, "src": "198.18.1.1", "sport": 40000, "dst": "198.18.1.2",
     "length": 17, "sha256": "...", "preview": "Hello"}      # TCP: "proto", "segments"

:func:`missing` and :func:`tcp_intact` compare them with the payloads (byte for byte:
length and SHA-256); :func:`listener_problems` / :func:`silent_problems` say what is wrong
with a receiver that must get everything / a node that must get nothing;
:class:`Verdict` collects per-agent outcomes into the result's ``details``::

    {node: {role label: {...the agent's report..., "expect": str, "ok": bool,
                         "problems": [str], "stderr"?: str}}}

and the failure message (``problems``, each ``"<node> (<label>) <problem>"``). The text
helpers (:func:`plural`, :func:`who_get`, :func:`joined`, :func:`names`) make the
``expected`` and ``observed`` lines.
"""

from __future__ import absolute_import, division, print_function

import collections
import ipaddress

__metaclass__ = type

#: Received records per agent kept in ``details``.
DETAIL_RECORDS = 20


def same_address(a, b):
    """Whether addresses ``a`` and ``b`` (text, IPv4 or IPv6, no length) are the same
    address: IPv6 has many spellings (``2001:DB8::1`` is ``2001:db8:0::1``)."""
    if a == b:
        return True
    try:
        return ipaddress.ip_address(str(a)) == ipaddress.ip_address(str(b))
    except ValueError:
        return False


def hostport(address, port):
    """``address:port``, an IPv6 address in brackets (``[2001:db8::1]:5000``)."""
    return "[%s]:%s" % (address, port) if ":" in str(address) else "%s:%s" % (address, port)


def missing(records, payloads, rnd=None, src=None):
    """The payloads (multiset) with no intact datagram among ``records`` (of round
    ``rnd``, from ``src``; None: any)."""
    have = collections.Counter((r["sha256"], r["length"]) for r in records
                               if (rnd is None or r.get("round") == rnd)
                               and (src is None or same_address(r.get("src"), src)))
    out = []
    for p in payloads:
        key = (p["sha256"], p["length"])
        if have[key] > 0:
            have[key] -= 1
        else:
            out.append(p)
    return out


def tcp_intact(records, payloads, src=None):
    """(payloads intact in order, best connection record or None) over TCP streams."""
    best, best_n = None, -1
    for r in records:
        if r.get("proto") != "tcp" or (src is not None and not same_address(r.get("src"), src)):
            continue
        segs = r.get("segments") or []
        n = 0
        for p, s in zip(payloads, segs):
            if s.get("extra") or s["sha256"] != p["sha256"] or s["length"] != p["length"]:
                break
            n += 1
        if n == len(payloads) and any(s.get("extra") for s in segs):
            n -= 1  # trailing garbage: the last payload is not intact
        if n > best_n:
            best, best_n = r, n
    return max(best_n, 0), best


def sources(records):
    """The distinct source addresses of ``records``, sorted."""
    return sorted({r.get("src") for r in records if r.get("src")})


def summary(agent, expect, problems):
    """The ``details`` entry of one agent."""
    rep = dict(agent.report or {"errors": ["no report (the agent was killed or crashed)"]})
    if "received" in rep:
        rep["received"] = rep["received"][:DETAIL_RECORDS]
    if "replies" in rep:
        rep["replies"] = rep["replies"][:DETAIL_RECORDS]
    rep.pop("node", None)
    rep.update(expect=expect, ok=not problems, problems=problems)
    if agent.stderr_tail():
        rep["stderr"] = agent.stderr_tail()
    return rep


class Verdict:
    """Collects per-agent outcomes into details and the failure message."""

    def __init__(self):
        self.details = {}
        self.problems = []

    def add(self, agent, expect, problems):
        """Record ``agent``'s outcome: its ``details`` entry (what was expected of it, its
        ``problems`` [str]) and the problems, each prefixed with ``"<node> (<label>)"``."""
        self.details.setdefault(agent.node, {})[agent.label] = summary(agent, expect, problems)
        self.problems += ["%s %s" % (agent.who, p) for p in problems]

    def note(self, text):
        """Add ``text`` to the failure message as it is."""
        self.problems.append(text)


def errors_of(agent):
    """The errors ``agent`` reported ([] without a report)."""
    return (agent.report or {}).get("errors") or []


def records_of(agent):
    """The received records ``agent`` reported ([] without a report)."""
    return (agent.report or {}).get("received") or []


def plural(n, word):
    """'1 payload' / '3 payloads'."""
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def who_get(agents_or_names, word, what):
    """'2 receivers get X' / '1 receiver gets X' / '' for none."""
    n = len(agents_or_names)
    if not n:
        return ""
    return "%s %s %s" % (plural(n, word), "gets" if n == 1 else "get", what)


def joined(*parts):
    """The non-empty ``parts`` joined with '; '."""
    return "; ".join(p for p in parts if p)


def names(agents):
    """The agents' node names, comma-separated ('none' for none)."""
    return ", ".join(a.node for a in agents) or "none"


def listener_problems(agent, payloads, rnd=None, src=None, sender=""):
    """Problems of a receiver that must get every payload (of round ``rnd``, from ``src``)."""
    lost = missing(records_of(agent), payloads, rnd, src)
    if not lost:
        return []
    text = "got %d of %d payloads%s%s" % (len(payloads) - len(lost), len(payloads),
                                          " from " + sender if sender else "",
                                          " in round %d" % rnd if rnd else "")
    got = [r for r in records_of(agent) if rnd is None or r.get("round") == rnd]
    if got and len(lost) == len(payloads):
        text += " (%s from %s, none intact)" % (plural(len(got), "datagram"),
                                                ", ".join(sources(got)))
    errs = errors_of(agent)
    if errs:
        text += "; errors: " + "; ".join(errs)
    return [text]


def judge_listeners(v, recvs, silent, payloads, src=None, sender=""):
    """Judge round 1 of the receivers (every payload, from ``src`` when given) and the silent
    listeners (nothing) into ``v``; returns (receivers that got it all, silent ones that got
    something)."""
    for a in recvs:
        v.add(a, "every payload", listener_problems(a, payloads, 1, src, sender))
    for a in silent:
        v.add(a, "nothing", silent_problems(a))
    return ([a for a in recvs if not missing(records_of(a), payloads, 1, src)],
            [a for a in silent if records_of(a)])


def silent_problems(agent, rnd=None):
    """Problems of a node that must get nothing (in round ``rnd``; None: any round)."""
    got = [r for r in records_of(agent) if rnd is None or r.get("round") == rnd]
    if not got and not agent.got(rnd):
        return []
    n = max(len(got), agent.got(rnd), (agent.report or {}).get("count", 0) if rnd is None else 0)
    return ["got %s%s (from %s)" % (plural(n, "datagram"),
                                    " in round %d" % rnd if rnd else "",
                                    ", ".join(sources(got)) or "?")]


def sender_notes(agent):
    """A sender's errors as one note for the failure message ([] without errors)."""
    errs = errors_of(agent)
    return ["%s: %s" % (agent.who, "; ".join(errs))] if errs else []

