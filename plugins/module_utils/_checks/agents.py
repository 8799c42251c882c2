# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: driving the cast agents - the small program (module_utils/_castagent.py,
standard library only) that runs in every node taking part in a cast check.

An :class:`Agent` is one agent process, started through module_utils/_process.py (the one
home for programs in nodes) as ``python3 -c SOURCE ARGS`` - ``ip netns exec`` for a
namespace node, ``docker exec -i`` for a docker node - never through a shell. It prints
``READY``, then one line per event (``GOT {...}``, ``SENT {...}``, ``REPLY {...}``,
``ROUND n``, ``LEFT``), and on ``STOP`` its JSON report (one ``{...}`` line).

A :class:`Session` holds the agents of one check and reads them together with
``select()``: :meth:`Session.all_ready`, :meth:`Session.round` (receivers told the round,
senders send, then listen until everything expected arrived plus :data:`SETTLE` seconds,
or ``timeout`` seconds), :meth:`Session.stop` (STOP, reports, kill what does not stop).

Errors: :class:`CastError` (an agent that cannot start or is not ready, naming the node).
"""

from __future__ import absolute_import, division, print_function

import json
import os
import pkgutil
import select
import subprocess
import threading
import time

from ansible_collections.topo.lab.plugins.module_utils import _castagent, _process

__metaclass__ = type

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
#: Bytes of an agent's stderr kept.
STDERR_KEEP = 16384


class CastError(Exception):
    """The check could not run; the message says why, naming the node."""


def agent_source():
    """The text of module_utils/_castagent.py, also when this runs as an AnsiballZ payload
    (module_utils zipped): through the module's loader, else pkgutil, else the file.
    CastError when none can read it."""
    loader = getattr(_castagent, "__loader__", None)
    text = None
    if loader is not None and hasattr(loader, "get_source"):
        try:
            text = loader.get_source(_castagent.__name__)
        except (ImportError, OSError):
            text = None
        if isinstance(text, bytes):
            # Ansible's collection loader (a module run in a fork of the worker,
            # plugins/plugin_utils/module_fork.py) gives the file's bytes: as an argument of a
            # remote command str() would make them a bytes literal, a program doing nothing
            text = text.decode("utf-8")
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


def life(timeout, rounds=1):
    """Seconds an agent may live: the whole check with margins, whatever happens."""
    return READY_TIMEOUT + rounds * (3 * timeout + 3) + STOP_TIMEOUT + 10


def address_of(p, key="address"):
    """The address participant ``p`` sends from (``key``), None when it has none."""
    return p.get(key) or None


class Agent:
    """One agent process: ``label`` (receiver, member, sender, ...) on node ``node``.

    ``args`` is the agent's JSON argument (its role, port, payloads ...; ``node`` is added).
    Attributes: ``ready`` (printed READY), ``report`` (its JSON report, or None),
    ``events`` [(kind, data)], ``err`` (the last :data:`STDERR_KEEP` bytes of stderr),
    ``process`` (the :class:`_process.NodeProcess`). CastError when it cannot start."""

    def __init__(self, participant, label, args, source, ip="ip", docker="docker"):
        self.node = participant["node"]
        self.label = label
        self.who = "%s (%s)" % (self.node, label)
        args = dict(args, node=self.node)
        text = json.dumps(args, separators=(",", ":"), sort_keys=True)
        arg, first = (text, None) if len(text) <= ARGV_LIMIT else ("-", text)
        self.ready = False
        self.report = None
        self.events = []
        self.err = b""
        self.out = b""
        try:
            self.process = _process.NodeProcess(participant, [PYTHON, "-c", source, arg],
                                                stdin=True, ip=ip, docker=docker)
        except _process.ProcessError as exc:
            raise CastError("%s: %s" % (self.who, exc))
        self.proc = self.process.proc
        self.fds = {self.proc.stdout.fileno(): "out", self.proc.stderr.fileno(): "err"}
        if first is not None:  # more than a pipe holds: never block on an agent that hangs
            threading.Thread(target=self.send, args=(first,), daemon=True).start()

    @property
    def closed(self):
        """True when the agent closed stdout and stderr (it exited)."""
        return not self.fds

    def send(self, line):
        """Write a command line to the agent's stdin; a dead agent is ignored."""
        self.process.send(line)

    def read(self, fd):
        """Read what is ready on ``fd`` (its stdout or stderr) and parse whole lines."""
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
            self.err = (self.err + chunk)[-STDERR_KEEP:]
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
        """Datagrams it reported (GOT) in round ``rnd`` (None: all rounds)."""
        return sum(1 for k, d in self.events
                   if k == "GOT" and (rnd is None or d.get("round") == rnd))

    def sent(self, rnd):
        """Whether it reported SENT for round ``rnd``."""
        return any(k == "SENT" and d.get("round") == rnd for k, d in self.events)

    def echoed(self, kind, value=None):
        """Whether it echoed a ``kind`` event (with ``value``, when given)."""
        return any(k == kind and (value is None or d == value) for k, d in self.events)

    def replies(self):
        """The REPLY events' data (answers and acks a sender got)."""
        return [d for k, d in self.events if k == "REPLY"]

    def acks(self):
        """How many acks it got so far."""
        return sum(1 for d in self.replies() if d.get("ack") is not None)

    def stderr_tail(self):
        """The last 5 lines of its stderr."""
        return _process.tail(self.err, 5)

    def kill(self):
        """SIGKILL it (the local process) when it still runs."""
        self.process.kill()


class Session:
    """The agents of one check, read together with select(); ``family`` (4 or 6) is the
    check's address family."""

    def __init__(self, source, ip="ip", docker="docker", family=4):
        self.source, self.ip, self.docker = source, ip, docker
        self.family = family
        self.agents = []

    def start(self, participant, label, args):
        """Start an :class:`Agent` for ``participant``; returns it. Over IPv6
        (``family`` 6) every agent gets ``family: 6``: IPv6 sockets."""
        if self.family == 6:
            args = dict(args, family=6)
        agent = Agent(participant, label, args, self.source, self.ip, self.docker)
        self.agents.append(agent)
        return agent

    def listeners(self, check, port, timeout, group=None):
        """Start a UDP receiver on ``port`` in every node of ``receivers`` and of
        ``silent`` (the same program: what differs is only how its report is judged);
        with ``group`` (an IPv6 relay's ff02::1) each joins it on its address's interface,
        since a listener gets only the groups it joined. Returns (receivers, silent) agents."""
        def args(p):
            return {"role": "recv", "proto": "udp", "port": port, "bind": "", "timeout": timeout,
                    "life": life(timeout),
                    "groups": [{"group": group, "interface": p.get("address")}] if group else []}
        return ([self.start(p, "receiver", args(p)) for p in check.get("receivers") or []],
                [self.start(p, "silent", args(p)) for p in check.get("silent") or []])

    def sender(self, participant, proto, mode, address, port, payloads, timeout):
        """Start a sender on ``participant``: ``payloads`` (base64) over ``proto`` to
        ``address:port`` (``mode`` unicast | broadcast), bound to its address; returns it."""
        return self.start(participant, "sender", {
            "role": "send", "proto": proto, "mode": mode, "address": address, "port": port,
            "bind": address_of(participant), "payloads": payloads, "timeout": timeout,
            "gap": GAP, "life": life(timeout)})

    def pump(self, timeout):
        """Read what the agents printed, waiting at most ``timeout`` seconds."""
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
        """One round: receivers told the round, senders send, then listen until
        everything expected arrived (plus :data:`SETTLE`) or ``timeout`` seconds after the
        senders finished; a round expecting nothing listens the whole ``timeout``.
        ``want_got`` {agent: datagrams in this round}, ``want_acks`` {sender agent: acks in
        total}. Returns the seconds it took."""
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
            a.process.close_stdin()
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
        """SIGKILL every agent still running (the last resort, in a finally)."""
        for a in self.agents:
            a.kill()
            try:
                a.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                pass
