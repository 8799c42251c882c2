# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the iperf3 check - the build-host side of topo.lab.iperf (the underscore:
not public API).

:func:`run_check` runs one expanded ``iperf3`` check (see the module's documentation for
the dict) from the build host: per buffer length, a one-off ``iperf3 -s -1 -J`` in the
server node, the client ``iperf3 -c ... -J`` in the client node, and the figures read from
the client's JSON. Programs run inside a node through module_utils/_process.py (the one home
for programs in nodes), with argv lists, no shell:

- a network-namespace node: ``ip netns exec NETNS argv...`` (the host's programs);
- a docker node: ``docker exec -i CONTAINER sh -c 'echo "$$"; exec "$@"' sh argv...`` -
  the shell prints the PID the program will have inside the container, so the program
  can be stopped there by PID (stopping the ``docker exec`` client would leave it running).

Every server started is reaped: it exits by itself after its one test; when the client
failed, or it does not exit, it is stopped by PID (SIGTERM, then SIGKILL).

Figures come from iperf3's JSON output (``-J``), as iperf 3.12 (Debian 12) writes it:

- TCP: ``end.sum_received.bits_per_second`` (what arrived) and ``end.sum_sent.retransmits``;
- UDP: ``end.sum_received.bits_per_second`` (what arrived; ``end.sum.bits_per_second`` of
  the client is the rate it *sent*) - ``end.sum`` when there is no ``sum_received``
  (iperf3 before 3.10) - and ``jitter_ms``, ``lost_packets``, ``packets``, ``lost_percent``
  of ``end.sum`` (the server's counts, reported back to the client);
- the length iperf3 used: ``start.test_start.blksize``.

iperf 3.12 exits 0 after a connection error when writing JSON: a run failed when its
JSON has an ``error`` member (iperf3's own text) or there is no JSON at all.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import statistics
import subprocess
import time

from ansible_collections.topo.lab.plugins.module_utils import _pcap, _process
from ansible_collections.topo.lab.plugins.module_utils._checks.verdicts import hostport
from ansible_collections.topo.lab.plugins.module_utils._units import fmt_bps

__metaclass__ = type

#: Seconds to wait for a server to listen, and to exit by itself after its test.
LISTEN_TIMEOUT = 10.0
REAP_TIMEOUT = 5.0
#: Seconds the client waits to connect (iperf3 --connect-timeout) unless the check says.
CONNECT_TIMEOUT = 5.0
#: Extra seconds a client may take beyond its duration and connect timeout.
CLIENT_GRACE = 20.0
#: "Connection refused" retries when whether the server listens cannot be read (no ss).
REFUSED_RETRIES = 5
#: Capture limits: packets kept, bytes kept of each, rows returned.
CAPTURE_COUNT = 1000
CAPTURE_SNAPLEN = 256
CAPTURE_ROWS = 50
INSTALL_HINT = "Debian/Ubuntu: apt-get install iperf3"


class IperfError(Exception):
    """A run (or the check) could not run; the message says why, in iperf3's words when
    iperf3 said it."""


def fmt_lengths(lengths):
    """[200, 400] -> '200, 400 B'."""
    return ", ".join(str(n) for n in lengths) + " B"


def label(run_length, asked):
    """How a run is named: '200 B', or 'default length (131072 B)' without -l."""
    if asked is None:
        return "default length" + (" (%d B)" % run_length if run_length else "")
    return "%d B" % asked


# --------------------------------------------------------------------------- processes

def tail(text):
    """The last 6 non-empty lines of ``text`` joined with ' | ' (one line for messages)."""
    return _process.tail(text, 6, " | ")


def start(part, argv):
    """iperf3 (``argv``) started in node ``part``, known by its PID there
    (:class:`_process.NodeProcess` with ``track_pid``)."""
    return _process.NodeProcess(part, argv, track_pid=True)


def doc_of(proc):
    """The JSON document iperf3 printed on stdout (a NodeProcess that ended), or None."""
    text = proc.out.decode("utf-8", "replace").strip()
    begin = text.find("{")
    if begin < 0:
        return None
    try:
        return json.JSONDecoder().raw_decode(text[begin:])[0]
    except ValueError:
        return None


def error_of(proc):
    """Why iperf3 failed: its JSON ``error``, else its stderr / stdout, else the status."""
    doc = doc_of(proc)
    if isinstance(doc, dict) and doc.get("error"):
        return str(doc["error"])
    return tail(proc.err) or tail(proc.out) or "exit status %s" % proc.rc()


def missing_program(proc):
    """True when iperf3 could not be started because it is not installed in the node."""
    err = proc.err.decode("utf-8", "replace")
    return proc.rc() in (126, 127, 255, 1) and doc_of(proc) is None and (
        "exec of" in err and "No such file" in err or "not found" in err)


def require_iperf3(part):
    """IperfError naming the node when iperf3 is not installed in it."""
    if part.get("container"):
        try:
            proc = subprocess.run(_process.exec_argv(part, ["sh", "-c", "command -v iperf3"]),
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise IperfError("cannot run a program in %s: %s" % (_process.where(part), exc))
        if proc.returncode == 0 and proc.stdout.strip():
            return
        if proc.returncode in (0, 1, 127) and "Error" not in proc.stderr:
            raise IperfError("iperf3 is not installed in %s (%s, in its image)"
                             % (_process.where(part), INSTALL_HINT))
        raise IperfError("cannot run a program in %s: %s"
                         % (_process.where(part), tail(proc.stderr) or "exit status %d" % proc.returncode))
    if not _process.netns_exists(part["netns"], part):
        raise IperfError("%s: the namespace does not exist" % _process.where(part))
    if _process.remote(part):  # a node on a remote build host runs that host's iperf3
        proc = subprocess.run(_process.exec_argv(part, ["sh", "-c", "command -v iperf3"]),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False)
        if proc.returncode != 0 or not proc.stdout.strip():
            raise IperfError("iperf3 is not installed in %s - it runs its build host's programs (%s)"
                             % (_process.where(part), INSTALL_HINT))
    elif _process.which("iperf3") is None:
        raise IperfError("iperf3 is not installed in %s - it runs the build host's programs (%s)"
                         % (_process.where(part), INSTALL_HINT))


def listening(part, port):
    """Whether a TCP socket listens on ``port`` in ``part``'s network namespace: True/False,
    None when that cannot be read (no ``ss``). Read with the host's ``ss`` in the named
    namespace when there is one (docker nodes' are named too), else inside the node."""
    argv = ["ss", "-ltnH", "sport = :%d" % port]
    netns = part.get("netns")
    full = _process.netns_argv({"netns": netns, "ssh": part.get("ssh")}, argv) \
        if _process.netns_exists(netns, part) else _process.exec_argv(part, argv)
    try:
        proc = subprocess.run(full, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if proc.returncode != 0:
        return None
    return bool(proc.stdout.strip())


# --------------------------------------------------------------------------- one run

def client_argv(check, length):
    """The client's argv for one run at buffer ``length`` bytes (None: iperf3's default)."""
    argv = ["iperf3", "-c", check["address"], "-p", str(check["port"]), "-J",
            "-t", str(check["duration"]), "-P", str(check["parallel"]),
            "--connect-timeout", str(int(connect_timeout(check) * 1000))]
    if length is not None:
        argv += ["-l", str(length)]
    if check["proto"] == "udp":
        argv += ["-u"]
    if check.get("bitrate"):
        argv += ["-b", str(int(check["bitrate"]))]
    return argv + family_flag(check)


def server_argv(check):
    """The one-off server's argv (``-s -1``: it exits after one test)."""
    return ["iperf3", "-s", "-1", "-J", "-p", str(check["port"])] + family_flag(check)


def family_flag(check):
    """``["-6"]`` for an IPv6 check (``family`` 6: iperf3 uses IPv6 only, the server
    listens on IPv6 only), else nothing (iperf3's default: the address decides)."""
    return ["-6"] if check.get("family") == 6 else []


def connect_timeout(check):
    """Seconds the client waits to connect: the check's ``timeout``, else CONNECT_TIMEOUT."""
    return float(check.get("timeout") or CONNECT_TIMEOUT)


def parse_client(doc, proto, length):
    """One entry of figures.runs from the client's JSON (iperf 3.12 keys; see the module
    docstring). IperfError with iperf3's text when the JSON reports an error."""
    if not isinstance(doc, dict):
        raise IperfError("iperf3 printed no JSON result")
    if doc.get("error"):
        raise IperfError(str(doc["error"]))
    end = doc.get("end") or {}
    blksize = ((doc.get("start") or {}).get("test_start") or {}).get("blksize")
    run = {"length": length if length is not None else blksize, "bits_per_second": None,
           "retransmits": None, "jitter_ms": None, "lost_percent": None,
           "lost_packets": None, "packets": None}
    if proto == "tcp":
        received, sent = end.get("sum_received"), end.get("sum_sent") or {}
        if not received or received.get("bits_per_second") is None:
            raise IperfError("iperf3's JSON has no end.sum_received.bits_per_second")
        run["bits_per_second"] = float(received["bits_per_second"])
        if sent.get("retransmits") is not None:
            run["retransmits"] = int(sent["retransmits"])
        return run
    total = end.get("sum")
    if not total:
        raise IperfError("iperf3's JSON has no end.sum")
    received = end.get("sum_received") or total
    run["bits_per_second"] = float(received["bits_per_second"])
    for key, cast in (("jitter_ms", float), ("lost_percent", float),
                      ("lost_packets", int), ("packets", int)):
        if total.get(key) is not None:
            run[key] = cast(total[key])
    return run


def server_view(doc, proto):
    """Bits per second the server measured (its own JSON), or None."""
    if not isinstance(doc, dict) or doc.get("error"):
        return None
    end = doc.get("end") or {}
    part = end.get("sum_received") if proto == "tcp" else (end.get("sum_received") or end.get("sum"))
    return (part or {}).get("bits_per_second")


def start_server(check):
    """A one-off iperf3 server in the server node, listening; IperfError otherwise (the
    server stopped). Returns (NodeProcess, whether listening could be confirmed)."""
    server, port = check["server"], check["port"]
    if listening(server, port):
        raise IperfError("TCP port %d is already in use in %s (an iperf3 server left running?)"
                         % (port, _process.where(server)))
    srv = start(server, server_argv(check))
    try:
        deadline = time.monotonic() + LISTEN_TIMEOUT
        while True:
            if not srv.alive():
                srv.finish(None)
                if missing_program(srv):
                    raise IperfError("iperf3 is not installed in %s (%s)" % (_process.where(server), INSTALL_HINT))
                raise IperfError("the iperf3 server in %s exited before listening: %s"
                                 % (_process.where(server), error_of(srv)))
            state = listening(server, port)
            if state:
                return srv, True
            if state is None:  # cannot tell: give it a moment, the client retries "refused"
                time.sleep(0.3)
                return srv, False
            if time.monotonic() > deadline:
                raise IperfError("the iperf3 server in %s did not listen on port %d within %.0f s"
                                 % (_process.where(server), port, LISTEN_TIMEOUT))
            time.sleep(0.05)
    except BaseException:
        srv.stop()
        raise


def run_client(check, length, confirmed, srv):
    """The client in the client node; (its JSON, its NodeProcess). Retries on "Connection
    refused" while the server's listening could not be confirmed and it still runs."""
    client = check["client"]
    limit = check["duration"] + connect_timeout(check) + CLIENT_GRACE
    attempt = 0
    while True:
        cli = start(client, client_argv(check, length))
        try:
            finished = cli.finish(limit)
        except BaseException:  # the module is being stopped: so is the client
            cli.stop()
            raise
        if not finished:
            cli.stop()
            raise IperfError("the iperf3 client in %s did not finish within %.0f s"
                             % (_process.where(client), limit))
        doc = doc_of(cli)
        if doc is None and missing_program(cli):
            raise IperfError("iperf3 is not installed in %s (%s)" % (_process.where(client), INSTALL_HINT))
        refused = isinstance(doc, dict) and "Connection refused" in str(doc.get("error", ""))
        if refused and not confirmed and attempt < REFUSED_RETRIES and srv.alive():
            attempt += 1
            time.sleep(0.2 * attempt)
            continue
        return doc, cli


def one_run(check, length):
    """One length: server, client, reap. Returns (run entry or None, error text or None,
    client detail, server detail)."""
    server_detail = {"length": length, "pid": None, "rc": None, "stopped": False}
    client_detail = {"length": length, "argv": " ".join(client_argv(check, length)), "rc": None}
    srv = None
    run, error = None, None
    try:
        srv, confirmed = start_server(check)
        server_detail["pid"] = srv.pid
        doc, cli = run_client(check, length, confirmed, srv)
        client_detail["rc"] = cli.rc()
        try:
            run = parse_client(doc, check["proto"], length)
        except IperfError as exc:
            client_detail["error"] = str(exc) if doc is not None else error_of(cli)
            raise IperfError(client_detail["error"])
        if not srv.finish(REAP_TIMEOUT):
            srv.stop()
    except IperfError as exc:
        error = str(exc)
    finally:
        if srv is not None:
            srv.stop()  # a no-op when it exited by itself
            server_detail.update(rc=srv.rc(), stopped=srv.killed)
            seen = server_view(doc_of(srv), check["proto"])
            if seen is not None:
                server_detail["bits_per_second"] = seen
            elif doc_of(srv) is not None and doc_of(srv).get("error"):
                server_detail["error"] = str(doc_of(srv)["error"])
    return run, error, client_detail, server_detail


# --------------------------------------------------------------------------- capture

class Capture:
    """tcpdump on the capture's interface (in its node's named namespace, from the build
    host: :class:`_process.Tcpdump`) while the check runs; the pcap at ``path``. At most
    CAPTURE_COUNT packets of at most CAPTURE_SNAPLEN bytes are kept (headers, tunnels
    included)."""

    def __init__(self, spec, path):
        self.spec, self.path, self.dump = spec, path, None

    def start(self):
        """Start tcpdump and wait until it listens; IperfError otherwise."""
        tcpdump = "tcpdump" if _process.remote(self.spec) else _process.which("tcpdump")
        if tcpdump is None:
            raise IperfError("tcpdump is not installed on the build host (Debian/Ubuntu: "
                             "apt-get install tcpdump)")
        netns = self.spec.get("netns")
        if not _process.netns_exists(netns, self.spec):
            raise IperfError("capture on %s: no named network namespace %s"
                             % (self.spec.get("node"), netns))
        self.dump = _process.Tcpdump({"netns": netns, "ssh": self.spec.get("ssh")}, self.spec["interface"], self.path,
                                     self.spec.get("filter"), CAPTURE_SNAPLEN, CAPTURE_COUNT,
                                     tcpdump=tcpdump)
        try:
            self.dump.start(LISTEN_TIMEOUT)
        except _process.ProcessError as exc:
            raise IperfError("tcpdump on %s:%s: %s" % (self.spec.get("node"),
                                                      self.spec["interface"], exc))

    def stop(self):
        """Stop tcpdump (SIGINT: the pcap is flushed)."""
        if self.dump is not None:
            self.dump.stop()

    def result(self):
        """{path, total, rows: the first CAPTURE_ROWS rows} (module_utils._pcap)."""
        rows = _pcap.summarize(self.path)
        return {"path": self.path, "total": len(rows), "rows": rows[:CAPTURE_ROWS]}


# --------------------------------------------------------------------------- the check

def expected_text(check):
    """The ``expected`` line: '>= 100 Mbit/s at every length (200, 400 B)' / 'runs ...'."""
    lengths = check["lengths"]
    where_ = ("at every length (%s)" % fmt_lengths(lengths)) if lengths else "with iperf3's default length"
    if repeats_of(check) > 1:
        where_ += ", median of %d runs" % repeats_of(check)
    if check.get("min_bps") is not None:
        return ">= %s %s" % (fmt_bps(check["min_bps"]), where_)
    return "runs %s" % where_


def run_text(run, asked, proto):
    """One length in the ``observed`` line: '200 B: 1.23 Gbit/s' - with repeats, the median
    and its spread: '200 B: 1.23 Gbit/s (1.2 Gbit/s..1.25 Gbit/s, 3 runs)' (UDP adds loss and jitter)."""
    text = "%s: %s" % (label(run["length"], asked), fmt_bps(run["bits_per_second"]))
    if run.get("repeats", 1) > 1:
        text += " (%s..%s, %d runs)" % (fmt_bps(run["min_bps"]), fmt_bps(run["max_bps"]), run["repeats"])
    if proto == "udp" and run["lost_percent"] is not None:
        text += " (%.3g%% lost, jitter %.3f ms)" % (run["lost_percent"], run["jitter_ms"] or 0.0)
    return text


#: Runs per length unless the check says (``repeats``): one 2 s run per length put 6400 B
#: below 3200 B on a busy 2-core machine (issue 14); the median of three does not move
#: for one slow run.
REPEATS = 3
#: The figures of a run that are aggregated over its repeats (each its median).
FIGURES = ("bits_per_second", "retransmits", "jitter_ms", "lost_percent", "lost_packets", "packets")


def aggregate(samples):
    """The entry of ``figures.runs`` for one length from its repeats ``samples`` (entries of
    :func:`parse_client`, one per repeat, at least one): every figure of :data:`FIGURES` is
    the median of the repeats that have it (None when none has; ``statistics.median``: the
    mean of the two middle ones for an even count), ``bits_per_second`` and ``median_bps``
    the median rate, ``min_bps`` and ``max_bps`` its spread, ``repeats`` the number of
    samples and ``samples_bps`` each repeat's rate in the order they ran."""
    run = {"length": samples[0]["length"]}
    for key in FIGURES:
        values = [r[key] for r in samples if r.get(key) is not None]
        run[key] = statistics.median(values) if values else None
    rates = [r["bits_per_second"] for r in samples]
    run.update(median_bps=run["bits_per_second"], min_bps=min(rates), max_bps=max(rates),
               repeats=len(samples), samples_bps=rates)
    return run


def _which(repeat, repeats):
    """' in run 2 of 3' when a later repeat failed; '' for the first (every length's first
    run came before it, so nothing of the sweep is hidden)."""
    return " in run %d of %d" % (repeat, repeats) if repeat > 1 else ""


def repeats_of(check):
    """How many times the sweep runs (``repeats``, :data:`REPEATS` when unset)."""
    return int(check.get("repeats") or REPEATS)


def run_check(check, capture_dir=None):
    """Run expanded iperf3 check ``check``; the module's result (without ``changed``):
    {failed, ok, type, name, description, expected, observed, figures, details,
    capture?, msg?}. The sweep over ``lengths`` runs :func:`repeats_of` times; each
    length's entry of ``figures.runs`` is :func:`aggregate` of its runs, and the minimum
    (``min_bps``) applies to that median."""
    client, server, proto = check["client"], check["server"], check["proto"]
    asked = list(check["lengths"]) or [None]
    repeats = repeats_of(check)
    runs, texts, errors, failed_run = [], [], [], None
    samples = [[] for _ in asked]  # per length, the entries of its runs
    cdetails = {"role": "client", "netns": client.get("netns"), "container": client.get("container"),
                "address": client.get("address"), "runs": []}
    sdetails = {"role": "server", "netns": server.get("netns"), "container": server.get("container"),
                "address": server.get("address"), "runs": []}
    result = {"type": check.get("type", "iperf3"), "name": check["name"],
              "description": check.get("description") or "", "expected": expected_text(check)}
    capture = None
    try:
        require_iperf3(server)
        if client["node"] != server["node"] or client.get("container") != server.get("container"):
            require_iperf3(client)
        if check.get("capture"):
            if not capture_dir:
                raise IperfError("check %s has a capture but no capture_dir was given" % check["name"])
            capture = Capture(check["capture"], os.path.join(os.path.abspath(capture_dir),
                                                             check["name"] + ".pcap"))
            capture.start()
        try:
            # the whole sweep, ``repeats`` times over: a slow moment of the machine spreads
            # over every length instead of sinking one
            for repeat in range(1, repeats + 1):
                for i, length in enumerate(asked):
                    run, error, cdet, sdet = one_run(check, length)
                    cdet["repeat"] = sdet["repeat"] = repeat
                    cdetails["runs"].append(cdet)
                    sdetails["runs"].append(sdet)
                    if error is not None:
                        failed_run = (i, length, error, repeat)
                        break
                    samples[i].append(run)
                if failed_run is not None:
                    break
        finally:
            if capture is not None:
                capture.stop()
            for i, length in enumerate(asked):
                if samples[i]:
                    runs.append(aggregate(samples[i]))
                    texts.append(run_text(runs[-1], length, proto))
                if failed_run is not None and failed_run[0] == i:
                    texts.append("%s: failed%s (%s)" % (label(None, length), _which(failed_run[3], repeats),
                                                        failed_run[2]))
            rest = [n for i, n in enumerate(asked) if n is not None and not samples[i]
                    and failed_run is not None and i > failed_run[0]]
            if rest:
                texts.append("%s: not run" % fmt_lengths(rest))
        if capture is not None:
            try:
                result["capture"] = capture.result()
            except Exception as exc:  # scapy missing, unreadable pcap
                errors.append("capture: %s" % exc)
                result["capture"] = {"path": capture.path, "total": None, "rows": [], "error": str(exc)}
    except IperfError as exc:
        errors.append(str(exc))
        if not texts:
            texts.append("did not run (%s)" % exc)

    values = [r["bits_per_second"] for r in runs]
    result["figures"] = {
        "runs": runs,
        "min_bps": min(values) if values else None,
        "median_bps": statistics.median(values) if values else None,
        "threshold_bps": check.get("min_bps"),
        "repeats": repeats,
    }
    result["observed"] = ", ".join(texts)
    if client["node"] == server["node"]:
        merged = dict(sdetails, role="client and server", client_runs=cdetails["runs"],
                      server_runs=sdetails["runs"])
        merged.pop("runs")
        result["details"] = {client["node"]: merged}
    else:
        result["details"] = {client["node"]: cdetails, server["node"]: sdetails}

    head = "iperf3 %s %s -> %s %s" % (proto.upper(), client["node"], server["node"],
                                      hostport(check["address"], check["port"]))
    if failed_run is not None:
        _, length, error, repeat = failed_run
        errors.insert(0, "the run at %s failed%s: %s" % (label(None, length), _which(repeat, repeats), error))
    if check.get("min_bps") is not None:
        measured = [(a, aggregate(got)) for a, got in zip(asked, samples) if got]
        low = [(a, r) for a, r in measured if r["bits_per_second"] < check["min_bps"]]
        if low:
            errors.append("below the minimum %s: %s" % (fmt_bps(check["min_bps"]), ", ".join(
                "%s: %s" % (label(r["length"], a), fmt_bps(r["bits_per_second"])) for a, r in low)))
    result["ok"] = not errors
    result["failed"] = bool(errors)
    if errors:
        result["msg"] = "%s: %s" % (head, "; ".join(errors))
    return result
