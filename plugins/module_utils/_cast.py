# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the build-host side of topo.lab.cast (the underscore: not public API).

:func:`run_check` runs one expanded cast check (unicast, broadcast, multicast, anycast,
relay; the shapes are the contract in the module's documentation) and returns the
module result::

    {"changed": False, "failed": not ok, "ok": bool, "type", "name", "description",
     "expected": "one line", "observed": "one line",
     "figures": {...type-specific numbers...},
     "details": {node: {role label: {...what that node's agent reported...,
                                     "expect": "what was expected of it",
                                     "ok": bool, "problems": [str]}}},
     "capture": {"path", "total", "rows"},   # only when the check has a capture
     "msg": "why it failed"}                 # only when it failed

How a check runs:

1. The payloads are made: ``text`` and ``json`` are encoded as the contract says,
   ``bytes`` are drawn from ``os.urandom`` now (so every run sends new bytes).
2. The capture, when asked, starts (the build host's tcpdump in the capture node's
   namespace; a container without a named one is entered by its PID with nsenter) and is
   listening before any agent starts.
3. Every participant gets an agent (module_utils/_castagent.py, its source text shipped
   as ``python3 -c SOURCE ARGS``, started concurrently with argv lists, never a shell).
   All must print READY within :data:`READY_TIMEOUT` seconds; an agent that exits first
   or never gets there fails the check with an error naming the node (e.g. python3
   missing in a container).
4. Rounds: receivers are told the round (ROUND n, echoed), senders send (SEND n) and
   report SENT. Receivers then listen until everything expected of the round arrived
   (datagrams, acks, answers) - plus :data:`SETTLE` seconds, so a stray copy to a silent
   node is still seen - or until ``timeout`` seconds after the senders finished. A round
   that expects nothing at all (a unicast that must fail) listens the whole ``timeout``.
   Multicast with ``leave``: the leavers drop their groups (LEAVE, echoed), then round 2.
5. Every agent is told STOP and prints its JSON report; one that does not within
   :data:`STOP_TIMEOUT` seconds is killed (by its PID). The reports are evaluated.

Errors: :class:`CastError` for a check that cannot run (bad check dict, an agent that
cannot start, tcpdump that does not listen); :func:`run_check` turns it into a failed
result, with every result key present.
"""

from __future__ import annotations

import base64
import collections
import hashlib
import json
import os
import pkgutil
import select
import subprocess
import tempfile
import threading
import time
import traceback

from ansible_collections.topo.lab.plugins.module_utils import _castagent, _pcap

# the check types this module runs (iperf3 is another module's)
from ansible_collections.topo.lab.plugins.module_utils._checktypes import CAST_TYPES  # noqa: E402
#: Seconds every agent has to print READY (docker exec and a loaded host are slow).
READY_TIMEOUT = 15.0
#: Seconds receivers keep listening after everything expected of a round arrived.
SETTLE = 0.3
#: Seconds between the last READY and the first multicast datagram, so a snooping
#: bridge has handled the members' IGMP reports.
JOIN_SETTLE = 0.1
#: Seconds an agent has to report after STOP before it is killed.
STOP_TIMEOUT = 3.0
#: Seconds between two datagrams of a sender.
GAP = 0.001
#: The interpreter inside nodes (the contract: python3 on the node's PATH).
PYTHON = "python3"
#: Agent arguments longer than this go on the agent's stdin instead of argv.
ARGV_LIMIT = 64 * 1024
#: Capture rows returned (the pcap keeps them all).
CAPTURE_ROWS = 50
#: Received records per agent kept in ``details``.
DETAIL_RECORDS = 20
#: The anycast request a client sends when the check has no payloads (the servers answer
#: every request with their node name).
ANYCAST_REQUEST = "topo anycast request from %s"


class CastError(Exception):
    """The check could not run; the message says why, naming the node."""


def agent_source():
    """The text of module_utils/_castagent.py, also when this runs as an AnsiballZ payload
    (module_utils zipped): through the module's loader, else pkgutil, else the file."""
    loader = getattr(_castagent, "__loader__", None)
    text = None
    if loader is not None and hasattr(loader, "get_source"):
        try:
            text = loader.get_source(_castagent.__name__)
        except (ImportError, OSError):
            text = None
    if not text:
        try:
            data = pkgutil.get_data(_castagent.__name__.rpartition(".")[0], "_castagent.py")
            text = data.decode("utf-8") if data else None
        except (ImportError, OSError):
            text = None
    if not text and getattr(_castagent, "__file__", None) and os.path.exists(_castagent.__file__):
        with open(_castagent.__file__, encoding="utf-8") as f:
            text = f.read()
    if not text:
        raise CastError("cannot read the cast agent's source (module_utils/_castagent.py)")
    return text


# --------------------------------------------------------------------------- payloads

def encode_payloads(payloads, urandom=os.urandom):
    """The bytes of each payload: [{"index" (1-based), "kind", "data" (bytes), "length",
    "sha256"}]. CastError on a payload that is none of text / json / bytes."""
    out = []
    for i, p in enumerate(payloads or [], 1):
        if not isinstance(p, dict) or len(p) != 1:
            raise CastError("payload %d must be one of {text: ...}, {json: ...}, {bytes: N}: %r"
                            % (i, p))
        if "text" in p:
            kind, data = "text", str(p["text"]).encode("utf-8")
        elif "json" in p:
            kind = "json"
            data = json.dumps(p["json"], separators=(",", ":"), sort_keys=True).encode("utf-8")
        elif "bytes" in p:
            n = p["bytes"]
            if isinstance(n, bool) or not isinstance(n, int) or not 0 < n <= 65507:
                raise CastError("payload %d: bytes must be 1..65507, got %r" % (i, n))
            kind, data = "bytes", urandom(n)
        else:
            raise CastError("payload %d must be one of {text: ...}, {json: ...}, {bytes: N}: %r"
                            % (i, p))
        out.append({"index": i, "kind": kind, "data": data, "length": len(data),
                    "sha256": hashlib.sha256(data).hexdigest()})
    return out


def public(payloads):
    """The payloads as reported in figures: [{kind, length, sha256}]."""
    return [{"kind": p["kind"], "length": p["length"], "sha256": p["sha256"]} for p in payloads]


def b64(payloads):
    return [base64.b64encode(p["data"]).decode("ascii") for p in payloads]


# --------------------------------------------------------------------------- validation

def _participant_problems(p, where):
    if not isinstance(p, dict):
        return ["%s must be a participant dict, got %r" % (where, p)]
    probs = []
    if not p.get("node"):
        probs.append("%s has no node name" % where)
    if not p.get("netns") and not p.get("container"):
        probs.append("%s (%s) has neither netns nor container" % (where, p.get("node")))
    return probs


def _need(check, keys):
    return ["%s check %s needs %s" % (check.get("type"), check.get("name"), k)
            for k in keys if check.get(k) in (None, "")]


def validate(check):
    """Problems with the check dict (empty when it can run), each naming the field."""
    if not isinstance(check, dict):
        return ["the check must be a dict, got %r" % (check,)]
    kind = check.get("type")
    if kind not in CAST_TYPES:
        return ["check %s: type %r is not a cast check (one of %s)"
                % (check.get("name"), kind, ", ".join(CAST_TYPES))]
    probs = _need(check, ["name", "port"])
    singles = {"unicast": ["sender", "receiver"], "broadcast": ["sender"], "relay": ["sender", "relay"],
               "multicast": [], "anycast": []}[kind]
    lists = {"unicast": [], "broadcast": ["receivers", "silent"], "relay": ["receivers", "silent"],
             "multicast": ["senders", "members", "silent"], "anycast": ["servers", "clients"]}[kind]
    probs += _need(check, singles + {"unicast": ["address", "payloads"],
                                     "broadcast": ["address", "payloads"],
                                     "multicast": ["group", "payloads", "senders"],
                                     "anycast": ["address", "servers", "clients"],
                                     "relay": ["address", "out_address", "out_port",
                                               "payloads"]}[kind])
    for key in singles:
        if check.get(key) is not None:
            probs += _participant_problems(check[key], key)
    for key in lists:
        value = check.get(key)
        if value is None:
            continue
        if not isinstance(value, list):
            probs.append("%s must be a list" % key)
            continue
        for i, p in enumerate(value):
            probs += _participant_problems(p, "%s[%d]" % (key, i))
    for key in ("port", "out_port"):
        v = check.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 < v < 65536):
            probs.append("%s must be a port number 1..65535, got %r" % (key, v))
    t = check.get("timeout", 2.0)
    if isinstance(t, bool) or not isinstance(t, (int, float)) or t <= 0:
        probs.append("timeout must be a positive number of seconds, got %r" % (t,))
    if kind == "unicast":
        if check.get("proto", "udp") not in ("udp", "tcp"):
            probs.append("proto must be udp or tcp, got %r" % check.get("proto"))
        if check.get("expect", "pass") not in ("pass", "fail"):
            probs.append("expect must be pass or fail, got %r" % check.get("expect"))
    if kind == "multicast":
        members = [m.get("node") for m in check.get("members") or [] if isinstance(m, dict)]
        ghosts = [n for n in check.get("leave") or [] if n not in members]
        if ghosts:
            probs.append("leave names %s, not members" % ", ".join(map(str, ghosts)))
        ttl = check.get("ttl", 1)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 255:
            probs.append("ttl must be 0..255, got %r" % (ttl,))
    if kind == "anycast":
        bad = [p for p in check.get("protos") or ["tcp", "udp"] if p not in ("tcp", "udp")]
        if bad or check.get("protos") == []:
            probs.append("protos must be a non-empty list of tcp and udp, got %r"
                         % check.get("protos"))
        for i, c in enumerate(check.get("clients") or []):
            if isinstance(c, dict) and not c.get("expect"):
                probs.append("clients[%d] (%s) has no expect (the server that must answer)"
                             % (i, c.get("node")))
    groups = {"broadcast": ("receivers", "silent"), "relay": ("receivers", "silent"),
              "multicast": ("members", "silent")}.get(kind)
    if groups:
        listed = [{p.get("node") for p in check.get(g) or [] if isinstance(p, dict)} for g in groups]
        both = sorted(n for n in listed[0] & listed[1] if n)
        if both:
            probs.append("%s listed as both %s and %s" % (", ".join(both), groups[0], groups[1]))
    if check.get("capture") is not None:
        cap = check["capture"]
        if not isinstance(cap, dict) or not cap.get("interface") or \
                not (cap.get("netns") or cap.get("container")):
            probs.append("capture needs interface and netns (or container), got %r" % (cap,))
    return probs


# --------------------------------------------------------------------------- agents

def in_node(p, ip="ip", docker="docker"):
    """The argv prefix that runs a command inside participant ``p``."""
    if p.get("container"):
        return [docker, "exec", "-i", p["container"]]
    return [ip, "netns", "exec", p["netns"]]


class Agent(object):
    """One agent process: ``label`` (receiver, member, sender, ...) on node ``node``."""

    def __init__(self, participant, label, args, source, ip="ip", docker="docker"):
        self.node = participant["node"]
        self.label = label
        self.who = "%s (%s)" % (self.node, label)
        args = dict(args, node=self.node)
        text = json.dumps(args, separators=(",", ":"), sort_keys=True)
        arg, first = (text, None) if len(text) <= ARGV_LIMIT else ("-", text)
        argv = in_node(participant, ip, docker) + [PYTHON, "-c", source, arg]
        self.ready = False
        self.report = None
        self.events = []
        self.err = b""
        self.out = b""
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, bufsize=0, close_fds=True)
        except OSError as exc:
            raise CastError("%s: cannot start %s: %s" % (self.who, argv[0], exc))
        self.fds = {self.proc.stdout.fileno(): "out", self.proc.stderr.fileno(): "err"}
        if first is not None:  # more than a pipe holds: never block on an agent that hangs
            threading.Thread(target=self.send, args=(first,), daemon=True).start()

    @property
    def closed(self):
        """True when the agent closed stdout and stderr (it exited)."""
        return not self.fds

    def send(self, line):
        """Write a command line to the agent's stdin; a dead agent is ignored."""
        try:
            self.proc.stdin.write((line + "\n").encode("utf-8"))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def read(self, fd):
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            if self.fds.pop(fd) == "out" and self.out:  # a last line without a newline
                self._line(self.out)
                self.out = b""
            return
        if self.fds[fd] == "err":
            self.err = (self.err + chunk)[-16384:]
            return
        self.out += chunk
        while b"\n" in self.out:
            line, self.out = self.out.split(b"\n", 1)
            self._line(line)

    def _line(self, raw):
        line = raw.decode("utf-8", "replace").strip()
        if not line:
            return
        if line == "READY":
            self.ready = True
        elif line.startswith("{"):
            try:
                self.report = json.loads(line)
            except ValueError:
                self.events.append(("NOISE", line[:200]))
        else:
            kind, _, rest = line.partition(" ")
            try:
                data = json.loads(rest) if rest else None
            except ValueError:
                kind, data = "NOISE", line[:200]
            self.events.append((kind, data))

    # event views
    def got(self, rnd=None):
        return sum(1 for k, d in self.events
                   if k == "GOT" and (rnd is None or d.get("round") == rnd))

    def sent(self, rnd):
        return any(k == "SENT" and d.get("round") == rnd for k, d in self.events)

    def echoed(self, kind, value=None):
        return any(k == kind and (value is None or d == value) for k, d in self.events)

    def replies(self):
        return [d for k, d in self.events if k == "REPLY"]

    def acks(self):
        return sum(1 for d in self.replies() if d.get("ack") is not None)

    def stderr_tail(self):
        return _pcap.tail(self.err, 5)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()


class Session(object):
    """The agents of one check, read together with select()."""

    def __init__(self, source, ip="ip", docker="docker"):
        self.source, self.ip, self.docker = source, ip, docker
        self.agents = []

    def start(self, participant, label, args):
        agent = Agent(participant, label, args, self.source, self.ip, self.docker)
        self.agents.append(agent)
        return agent

    def pump(self, timeout):
        fds = dict((fd, a) for a in self.agents for fd in a.fds)
        if not fds:
            time.sleep(max(timeout, 0))
            return
        try:
            ready = select.select(list(fds), [], [], max(timeout, 0))[0]
        except InterruptedError:
            return
        for fd in ready:
            fds[fd].read(fd)

    def wait(self, cond, deadline):
        """Read events until ``cond()`` or ``deadline`` (monotonic); whether cond held."""
        while True:
            if cond():
                return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self.pump(min(left, 0.2))

    def listen(self, seconds):
        """Keep reading events for ``seconds``."""
        self.wait(lambda: False, time.monotonic() + seconds)

    def all_ready(self, timeout=READY_TIMEOUT):
        """Wait until every agent printed READY; CastError naming each one that did not."""
        self.wait(lambda: all(a.ready or a.closed for a in self.agents),
                  time.monotonic() + timeout)
        bad = [a for a in self.agents if not a.ready]
        if not bad:
            return
        msgs = []
        for a in bad:
            if a.closed:
                try:
                    rc = a.proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    rc = None
                errors = (a.report or {}).get("errors") or []
                if errors:
                    msgs.append("%s: %s" % (a.who, "; ".join(errors)))
                else:
                    hint = " (is python3 installed in the node?)" \
                        if "python3" in a.stderr_tail() else ""
                    msgs.append("%s: the agent exited with status %s before it was ready%s: %s"
                                % (a.who, rc, hint, a.stderr_tail() or "(no output)"))
            else:
                msgs.append("%s: not ready within %.0f s%s" % (
                    a.who, timeout, ": " + a.stderr_tail() if a.stderr_tail() else ""))
        raise CastError("; ".join(msgs))

    def command(self, agents, line, echo=None, timeout=5.0):
        """Send ``line`` to ``agents``; with ``echo`` (kind, value), wait for each to echo it."""
        for a in agents:
            a.send(line)
        if echo is not None:
            self.wait(lambda: all(a.echoed(*echo) or a.closed for a in agents),
                      time.monotonic() + timeout)

    def round(self, rnd, receivers, senders, want_got, want_acks, timeout):
        """One round: receivers told the round, senders send, then listen (see the module
        docstring). ``want_got`` {agent: datagrams in this round}, ``want_acks`` {sender
        agent: acks in total}. Returns the seconds it took."""
        started = time.monotonic()
        if rnd > 1:
            self.command(receivers, "ROUND %d" % rnd, echo=("ROUND", rnd))
        self.command(senders, "SEND %d" % rnd)
        # a TCP sender may wait ``timeout`` to connect, and as long for the answer
        self.wait(lambda: all(s.sent(rnd) or s.closed for s in senders),
                  time.monotonic() + 2 * timeout + 2)
        sent_at = time.monotonic()

        def complete():
            return all(a.got(rnd) >= n for a, n in want_got.items()) and \
                all(s.acks() >= n for s, n in want_acks.items())

        expects_something = any(want_got.values()) or any(want_acks.values())
        if expects_something and self.wait(complete, sent_at + timeout):
            self.listen(min(SETTLE, timeout))
        elif not expects_something:
            self.listen(timeout)
        return time.monotonic() - started

    def stop(self):
        """STOP every agent, collect the reports, kill (by PID) what does not stop."""
        for a in self.agents:
            a.send("STOP")
            try:
                a.proc.stdin.close()
            except OSError:
                pass
        self.wait(lambda: all(a.closed for a in self.agents), time.monotonic() + STOP_TIMEOUT)
        for a in self.agents:
            if not a.closed:
                a.kill()
        self.wait(lambda: all(a.closed for a in self.agents), time.monotonic() + 2)
        for a in self.agents:
            try:
                a.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                a.kill()
            for stream in (a.proc.stdout, a.proc.stderr):
                try:
                    stream.close()
                except OSError:
                    pass

    def kill_all(self):
        for a in self.agents:
            a.kill()
            try:
                a.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass


# --------------------------------------------------------------------------- capture

class Capture(object):
    """tcpdump on the capture node's interface for the duration of a check: the build
    host's tcpdump, in the node's named namespace (``ip netns exec``) or, for a container
    without one, in its network namespace found by its PID (``nsenter -t PID -n``), so it
    is always a build-host process that :func:`_pcap.stop` can stop by its PID."""

    def __init__(self, spec, path, ip="ip", docker="docker", tcpdump="tcpdump"):
        self.spec, self.path = spec, path
        self.proc, self.err = None, b""
        where = "%s:%s" % (spec.get("node"), spec["interface"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if spec.get("netns"):
            prefix = [ip, "netns", "exec", spec["netns"]]
        else:
            try:
                pid = subprocess.run([docker, "inspect", "--format", "{{.State.Pid}}",
                                      spec["container"]], capture_output=True, text=True,
                                     timeout=30).stdout.strip()
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise CastError("capture on %s: docker inspect: %s" % (where, exc))
            if not pid.isdigit() or pid == "0":
                raise CastError("capture on %s: container %s is not running"
                                % (where, spec["container"]))
            prefix = ["nsenter", "-t", pid, "-n"]
        argv = prefix + _pcap.tcpdump_argv(tcpdump, spec["interface"], path, spec.get("filter"))
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
            self.err = _pcap.wait_listening(self.proc, READY_TIMEOUT)
        except (OSError, _pcap.CaptureError) as exc:
            self.close()
            raise CastError("capture on %s: %s" % (where, exc))

    def close(self):
        if self.proc is not None and self.proc.returncode is None:
            self.err += _pcap.stop(self.proc) or b""

    def result(self):
        """{path, total, rows (the first CAPTURE_ROWS)}; ``error`` when it cannot be read."""
        self.close()
        res = {"path": self.path, "node": self.spec.get("node"),
               "interface": self.spec["interface"], "filter": self.spec.get("filter"),
               "total": 0, "rows": []}
        try:
            rows = _pcap.summarize(self.path)
            res.update(total=len(rows), rows=rows[:CAPTURE_ROWS])
        except Exception as exc:  # a missing scapy, an empty or unreadable pcap
            res["error"] = "%s (tcpdump: %s)" % (exc, _pcap.tail(self.err, 3))
        return res


# --------------------------------------------------------------------------- evaluation

def missing(records, payloads, rnd=None, src=None):
    """The payloads (multiset) with no intact datagram among ``records`` (of round
    ``rnd``, from ``src``; None: any)."""
    have = collections.Counter((r["sha256"], r["length"]) for r in records
                               if (rnd is None or r.get("round") == rnd)
                               and (src is None or r.get("src") == src))
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
        if r.get("proto") != "tcp" or (src is not None and r.get("src") != src):
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


class Verdict(object):
    """Collects per-agent outcomes into details and the failure message."""

    def __init__(self):
        self.details = {}
        self.problems = []

    def add(self, agent, expect, problems):
        self.details.setdefault(agent.node, {})[agent.label] = summary(agent, expect, problems)
        self.problems += ["%s %s" % (agent.who, p) for p in problems]

    def note(self, text):
        self.problems.append(text)


def errors_of(agent):
    return (agent.report or {}).get("errors") or []


def records_of(agent):
    return (agent.report or {}).get("received") or []


def plural(n, word):
    return "%d %s%s" % (n, word, "" if n == 1 else "s")


def who_get(agents_or_names, word, what):
    """'2 receivers get X' / '1 receiver gets X' / '' for none."""
    n = len(agents_or_names)
    if not n:
        return ""
    return "%s %s %s" % (plural(n, word), "gets" if n == 1 else "get", what)


def joined(*parts):
    return "; ".join(p for p in parts if p)


def names(agents):
    return ", ".join(a.node for a in agents) or "none"


def _listener_problems(agent, payloads, rnd=None, src=None, sender=""):
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


def _judge_listeners(v, recvs, silent, payloads, src=None, sender=""):
    """Judge round 1 of the receivers (every payload, from ``src`` when given) and the silent
    listeners (nothing) into ``v``; returns (receivers that got it all, silent ones that got
    something)."""
    for a in recvs:
        v.add(a, "every payload", _listener_problems(a, payloads, 1, src, sender))
    for a in silent:
        v.add(a, "nothing", _silent_problems(a))
    return ([a for a in recvs if not missing(records_of(a), payloads, 1, src)],
            [a for a in silent if records_of(a)])


def _silent_problems(agent, rnd=None):
    got = [r for r in records_of(agent) if rnd is None or r.get("round") == rnd]
    if not got and not agent.got(rnd):
        return []
    n = max(len(got), agent.got(rnd), (agent.report or {}).get("count", 0) if rnd is None else 0)
    return ["got %s%s (from %s)" % (plural(n, "datagram"),
                                    " in round %d" % rnd if rnd else "",
                                    ", ".join(sources(got)) or "?")]


def _sender_notes(agent):
    errs = errors_of(agent)
    return ["%s: %s" % (agent.who, "; ".join(errs))] if errs else []


# --------------------------------------------------------------------------- check types

def _src(p, key="address"):
    return p.get(key) or None


def run_unicast(check, sess, payloads, timeout):
    proto, port, address = check.get("proto", "udp"), check["port"], check["address"]
    want_pass = check.get("expect", "pass") == "pass"
    recv = sess.start(check["receiver"], "receiver", {
        "role": "recv", "proto": proto, "port": port, "bind": "", "timeout": timeout,
        "segments": [p["length"] for p in payloads], "life": life(timeout)})
    send = sess.start(check["sender"], "sender", {
        "role": "send", "proto": proto, "mode": "unicast", "address": address, "port": port,
        "bind": _src(check["sender"]), "payloads": b64(payloads), "timeout": timeout,
        "gap": GAP, "life": life(timeout)})
    sess.all_ready()
    n = (len(payloads) if proto == "udp" else 1) if want_pass else 0
    sess.round(1, [recv], [send], {recv: n}, {}, timeout)
    sess.stop()

    v = Verdict()
    src = _src(check["sender"])
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
    what = "%s over %s to %s:%d" % (plural(len(payloads), "payload"), proto, address, port)
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


def _listeners(check, sess, port, timeout):
    """Start a UDP receiver on ``port`` in every node of ``receivers`` and of ``silent``
    (the same program: what differs is only how its report is judged)."""
    rargs = {"role": "recv", "proto": "udp", "port": port, "bind": "", "timeout": timeout,
             "life": life(timeout)}
    return ([sess.start(p, "receiver", rargs) for p in check.get("receivers") or []],
            [sess.start(p, "silent", rargs) for p in check.get("silent") or []])


def run_broadcast(check, sess, payloads, timeout):
    port, address = check["port"], check["address"]
    recvs, silent = _listeners(check, sess, port, timeout)
    send = sess.start(check["sender"], "sender", {
        "role": "send", "proto": "udp", "mode": "broadcast", "address": address, "port": port,
        "bind": _src(check["sender"]), "payloads": b64(payloads), "timeout": timeout,
        "gap": GAP, "life": life(timeout)})
    sess.all_ready()
    sess.round(1, recvs + silent, [send], dict((a, len(payloads)) for a in recvs), {}, timeout)
    sess.stop()

    v, src = Verdict(), _src(check["sender"])
    full, loud = _judge_listeners(v, recvs, silent, payloads, src, check["sender"]["node"])
    v.add(send, "broadcasts every payload", [])
    if v.problems:
        for note in _sender_notes(send):
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


def run_multicast(check, sess, payloads, timeout):
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
    sender_src = [(s, _src(p, "interface") or _src(p)) for s, p in zip(senders, check["senders"])]
    for m in members:
        probs = []
        for rnd in range(1, rounds + 1):
            if m in receiving[rnd]:
                for s, src in sender_src:
                    probs += _listener_problems(m, payloads, rnd, src, s.node)
            else:
                probs += ["left the group but " + p for p in _silent_problems(m, rnd)]
        for e in errors_of(m):
            if not any(e in p for p in probs):
                probs.append("error: " + e)
        exp = "every payload of every sender" + (
            " in round 1, nothing in round 2 (leaves)" if m.node in leave else
            (" in both rounds" if rounds == 2 else ""))
        v.add(m, exp, probs)
    for a in silent:
        v.add(a, "nothing", _silent_problems(a))
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
        who_get(members, "member", "%s from each of %s (%s:%d, ttl %d)" % (
            plural(len(payloads), "payload"), plural(len(senders), "sender"), group, port, ttl)),
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


def run_anycast(check, sess, payloads, timeout):
    port, address = check["port"], check["address"]
    protos = check.get("protos") or ["tcp", "udp"]
    servers = [sess.start(p, "server", {
        "role": "serve", "address": address, "port": port, "protos": protos,
        "timeout": timeout, "life": life(timeout)}) for p in check["servers"]]
    clients = []
    for p in check["clients"]:
        requests = b64(payloads) or [
            base64.b64encode((ANYCAST_REQUEST % p["node"]).encode("utf-8")).decode("ascii")]
        for proto in protos:
            # udp: each request is a datagram, each answered; tcp: one connection, one answer
            want = len(requests) if proto == "udp" else 1
            clients.append((p, proto, want, sess.start(p, "client/" + proto, {
                "role": "send", "proto": proto, "mode": "unicast", "address": address,
                "port": port, "bind": _src(p), "timeout": timeout, "life": life(timeout),
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
    expected = "each of %s gets its answer over %s to %s:%d from the nearest of %s (%s)" % (
        plural(len(check["clients"]), "client"), "/".join(protos), address, port,
        plural(len(servers), "server"),
        ", ".join("%s->%s" % (p["node"], p["expect"]) for p in check["clients"]))
    observed = ", ".join("%s->%s" % (node, "/".join(
        "%s:%s" % (proto, a if a is not None else "none") for proto, a in by.items()))
        for node, by in answers.items())
    figures = {"answers": answers, "expected": dict((p["node"], p["expect"]) for p in check["clients"]),
               "served": served}
    return v, expected, observed, figures


def run_relay(check, sess, payloads, timeout):
    port, out_port = check["port"], check["out_port"]
    recvs, silent = _listeners(check, sess, out_port, timeout)
    relay = sess.start(check["relay"], "relay", {
        "role": "relay", "address": check["address"], "port": port,
        "out_address": check["out_address"], "out_port": out_port, "timeout": timeout,
        "life": life(timeout)})
    send = sess.start(check["sender"], "sender", {
        "role": "send", "proto": "udp", "mode": "unicast", "address": check["address"],
        "port": port, "bind": _src(check["sender"]), "payloads": b64(payloads),
        "timeout": timeout, "gap": GAP, "life": life(timeout)})
    sess.all_ready()
    want = dict((a, len(payloads)) for a in recvs)
    want[relay] = len(payloads)
    sess.round(1, recvs + silent + [relay], [send], want, {}, timeout)
    sess.stop()

    v = Verdict()
    probs = _listener_problems(relay, payloads, 1, _src(check["sender"]), check["sender"]["node"])
    relayed = (relay.report or {}).get("relayed", 0)
    if relayed < len(payloads) and not probs:
        probs.append("resent %d of %d payloads to %s:%d%s" % (
            relayed, len(payloads), check["out_address"], out_port,
            "; errors: " + "; ".join(errors_of(relay)) if errors_of(relay) else ""))
    v.add(relay, "every payload from %s, resent to %s:%d" % (
        check["sender"]["node"], check["out_address"], out_port), probs)
    full, loud = _judge_listeners(v, recvs, silent, payloads)
    v.add(send, "sends every payload to the relay", [])
    if v.problems:
        for note in _sender_notes(send):
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


RUNNERS = {"unicast": run_unicast, "broadcast": run_broadcast, "multicast": run_multicast,
           "anycast": run_anycast, "relay": run_relay}


def life(timeout, rounds=1):
    """Seconds an agent may live: the whole check with margins, whatever happens."""
    return READY_TIMEOUT + rounds * (3 * timeout + 3) + STOP_TIMEOUT + 10


# --------------------------------------------------------------------------- entry point

def base_result(check):
    check = check if isinstance(check, dict) else {}
    return {"changed": False, "failed": True, "ok": False, "type": check.get("type"),
            "name": check.get("name"), "description": check.get("description") or "",
            "expected": "", "observed": "", "figures": {}, "details": {}}


def run_check(check, capture_dir=None, ip="ip", docker="docker", tcpdump="tcpdump",
              urandom=os.urandom):
    """Run one expanded cast check; the module result (see the module docstring).

    ``ip``, ``docker`` and ``tcpdump`` are the build host's binaries. Never raises for a
    check that fails or cannot run: the result says why (``msg``)."""
    result = base_result(check)
    probs = validate(check)
    if probs:
        result.update(observed="the check cannot run", msg="; ".join(probs))
        return result
    timeout = float(check.get("timeout", 2.0))
    sess, cap = None, None
    try:
        payloads = encode_payloads(check.get("payloads") or [], urandom)
        if check["type"] != "anycast" and not payloads:
            raise CastError("the check has no payloads")
        if check.get("capture"):
            cdir = capture_dir or tempfile.mkdtemp(prefix="topo-cast-")
            cap = Capture(check["capture"], os.path.join(os.path.abspath(cdir),
                                                         check["name"] + ".pcap"),
                          ip, docker, tcpdump)
        sess = Session(agent_source(), ip, docker)
        verdict, expected, observed, figures = RUNNERS[check["type"]](check, sess, payloads,
                                                                     timeout)
        result.update(expected=expected, observed=observed, figures=figures,
                      details=verdict.details)
        if verdict.problems:
            result["msg"] = "; ".join(verdict.problems)
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
        if cap is not None:
            result["capture"] = cap.result()
    return result
