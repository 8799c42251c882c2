# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private iperf3 runner for topo.lab.iperf (the underscore: not public API).

:func:`run_check` runs one expanded ``iperf3`` check (see the module's documentation for
the dict) from the build host: per buffer length, a one-off ``iperf3 -s -1 -J`` in the
server node, the client ``iperf3 -c ... -J`` in the client node, and the figures read from
the client's JSON. Programs run inside a node with argv lists, no shell:

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

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import time

#: Seconds to wait for a server to listen, and to exit by itself after its test.
LISTEN_TIMEOUT = 10.0
REAP_TIMEOUT = 5.0
#: Seconds between SIGTERM and SIGKILL when a program is stopped.
STOP_TIMEOUT = 3.0
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
NETNS_RUN_DIR = "/run/netns"
_PID_LINE = re.compile(rb"^\s*(\d+)\n")


class IperfError(Exception):
    """A run (or the check) could not run; the message says why, in iperf3's words when
    iperf3 said it."""


def tail(text, lines=6):
    """The last ``lines`` non-empty lines of ``text`` (str or bytes), joined with ' | '."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return " | ".join([ln.strip() for ln in (text or "").splitlines() if ln.strip()][-lines:])


def where(part):
    """'node b (container topo-x-b)' / 'node a (netns topo-x-a)' for messages."""
    if part.get("container"):
        return "node %s (container %s)" % (part["node"], part["container"])
    return "node %s (netns %s)" % (part["node"], part["netns"])


def node_argv(part, argv):
    """``argv`` run inside participant ``part``: in its container, else its namespace."""
    if part.get("container"):
        return ["docker", "exec", "-i", part["container"]] + list(argv)
    return ["ip", "netns", "exec", part["netns"]] + list(argv)


def fmt_bps(bps):
    """1234567890 -> '1.2 Gbit/s' (bits per second, SI prefixes)."""
    if bps is None:
        return "-"
    for factor, unit in ((1e12, "Tbit/s"), (1e9, "Gbit/s"), (1e6, "Mbit/s"), (1e3, "kbit/s")):
        if abs(bps) >= factor:
            return "%.1f %s" % (bps / factor, unit)
    return "%.0f bit/s" % bps


def fmt_lengths(lengths):
    return ", ".join(str(n) for n in lengths) + " B"


def label(run_length, asked):
    """How a run is named: '200 B', or 'default length (131072 B)' without -l."""
    if asked is None:
        return "default length" + (" (%d B)" % run_length if run_length else "")
    return "%d B" % asked


# --------------------------------------------------------------------------- processes

class NodeProcess:
    """A program started inside a node and known by its PID there: the host's PID for a
    namespace node (``ip netns exec`` execs the program), the container's PID for a docker
    node (printed by the shell that execs the program)."""

    def __init__(self, part, argv):
        self.part = part
        self.in_container = bool(part.get("container"))
        if self.in_container:
            full = ["docker", "exec", "-i", part["container"], "sh", "-c", 'echo "$$"; exec "$@"',
                    "sh"] + list(argv)
        else:
            full = ["ip", "netns", "exec", part["netns"]] + list(argv)
        self.argv = list(argv)
        self.out = b""
        self.err = b""
        self.killed = False
        self.done = False
        self.proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.pid = None if self.in_container else self.proc.pid
        if self.in_container:
            self._read_pid()

    def _read_pid(self, timeout=30.0):
        """Read the shell's first line (the PID) without consuming more than it."""
        fd, deadline = self.proc.stdout.fileno(), time.monotonic() + timeout
        while True:
            m = _PID_LINE.match(self.out)
            if m:
                self.pid = int(m.group(1))
                self.out = self.out[m.end():]
                return
            left = deadline - time.monotonic()
            if left <= 0 or b"\n" in self.out:
                return  # docker exec failed before the shell ran; its stderr says why
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                if not chunk:
                    return
                self.out += chunk

    def alive(self):
        return self.proc.poll() is None

    def finish(self, timeout):
        """Wait up to ``timeout`` seconds for the program to end and collect its output;
        True when it ended."""
        if self.done:
            return True
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        self.out += out or b""
        self.err += err or b""
        self.done = True
        return True

    def _signal(self, sig):
        if self.in_container:
            if self.pid is not None:
                # the shell's kill builtin: a slim image may have no kill program
                subprocess.run(["docker", "exec", self.part["container"], "sh", "-c",
                                "kill -%d %d" % (sig, self.pid)], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=30, check=False)
        else:
            try:
                self.proc.send_signal(sig)
            except OSError:
                pass

    def stop(self):
        """Stop the program by its PID (SIGTERM, SIGKILL after STOP_TIMEOUT) and collect
        its output; also ends the ``docker exec`` client of a container's program."""
        if not self.alive():
            self.finish(None)
            return
        self.killed = True
        for sig in (signal.SIGTERM, signal.SIGKILL):
            self._signal(sig)
            if self.finish(STOP_TIMEOUT):
                return
        self.proc.kill()  # the docker exec client, when the container is gone
        self.finish(None)

    def rc(self):
        return self.proc.returncode

    def json(self):
        """The JSON document iperf3 printed, or None."""
        text = self.out.decode("utf-8", "replace").strip()
        start = text.find("{")
        if start < 0:
            return None
        try:
            return json.JSONDecoder().raw_decode(text[start:])[0]
        except ValueError:
            return None

    def error(self):
        """Why the program failed: iperf3's JSON ``error``, else its stderr / stdout."""
        doc = self.json()
        if isinstance(doc, dict) and doc.get("error"):
            return str(doc["error"])
        return tail(self.err) or tail(self.out) or "exit status %s" % self.rc()

    def missing_program(self):
        """True when the program could not be started because it is not installed."""
        err = self.err.decode("utf-8", "replace")
        return self.rc() in (126, 127, 255, 1) and self.json() is None and (
            "exec of" in err and "No such file" in err or "not found" in err)


def require_iperf3(part):
    """IperfError naming the node when iperf3 is not installed in it."""
    if part.get("container"):
        try:
            proc = subprocess.run(node_argv(part, ["sh", "-c", "command -v iperf3"]),
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=60, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise IperfError("cannot run a program in %s: %s" % (where(part), exc))
        if proc.returncode == 0 and proc.stdout.strip():
            return
        if proc.returncode in (0, 1, 127) and "Error" not in proc.stderr:
            raise IperfError("iperf3 is not installed in %s (%s, in its image)"
                             % (where(part), INSTALL_HINT))
        raise IperfError("cannot run a program in %s: %s"
                         % (where(part), tail(proc.stderr) or "exit status %d" % proc.returncode))
    if not os.path.exists(os.path.join(NETNS_RUN_DIR, part["netns"])):
        raise IperfError("%s: the namespace does not exist" % where(part))
    if shutil.which("iperf3") is None:
        raise IperfError("iperf3 is not installed in %s - it runs the build host's programs (%s)"
                         % (where(part), INSTALL_HINT))


def listening(part, port):
    """Whether a TCP socket listens on ``port`` in ``part``'s network namespace: True/False,
    None when that cannot be read (no ``ss``). Read with the host's ``ss`` in the named
    namespace when there is one (docker nodes' are named too), else inside the node."""
    argv = ["ss", "-ltnH", "sport = :%d" % port]
    netns = part.get("netns")
    if netns and os.path.exists(os.path.join(NETNS_RUN_DIR, netns)):
        full = ["ip", "netns", "exec", netns] + argv
    else:
        full = node_argv(part, argv)
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
    argv = ["iperf3", "-c", check["address"], "-p", str(check["port"]), "-J",
            "-t", str(check["duration"]), "-P", str(check["parallel"]),
            "--connect-timeout", str(int(connect_timeout(check) * 1000))]
    if length is not None:
        argv += ["-l", str(length)]
    if check["proto"] == "udp":
        argv += ["-u"]
    if check.get("bitrate"):
        argv += ["-b", str(int(check["bitrate"]))]
    return argv


def server_argv(check):
    return ["iperf3", "-s", "-1", "-J", "-p", str(check["port"])]


def connect_timeout(check):
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
                         % (port, where(server)))
    srv = NodeProcess(server, server_argv(check))
    try:
        deadline = time.monotonic() + LISTEN_TIMEOUT
        while True:
            if not srv.alive():
                srv.finish(None)
                if srv.missing_program():
                    raise IperfError("iperf3 is not installed in %s (%s)" % (where(server), INSTALL_HINT))
                raise IperfError("the iperf3 server in %s exited before listening: %s"
                                 % (where(server), srv.error()))
            state = listening(server, port)
            if state:
                return srv, True
            if state is None:  # cannot tell: give it a moment, the client retries "refused"
                time.sleep(0.3)
                return srv, False
            if time.monotonic() > deadline:
                raise IperfError("the iperf3 server in %s did not listen on port %d within %.0f s"
                                 % (where(server), port, LISTEN_TIMEOUT))
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
        cli = NodeProcess(client, client_argv(check, length))
        try:
            finished = cli.finish(limit)
        except BaseException:  # the module is being stopped: so is the client
            cli.stop()
            raise
        if not finished:
            cli.stop()
            raise IperfError("the iperf3 client in %s did not finish within %.0f s"
                             % (where(client), limit))
        doc = cli.json()
        if doc is None and cli.missing_program():
            raise IperfError("iperf3 is not installed in %s (%s)" % (where(client), INSTALL_HINT))
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
            client_detail["error"] = str(exc) if doc is not None else cli.error()
            raise IperfError(client_detail["error"])
        if not srv.finish(REAP_TIMEOUT):
            srv.stop()
    except IperfError as exc:
        error = str(exc)
    finally:
        if srv is not None:
            srv.stop()  # a no-op when it exited by itself
            server_detail.update(rc=srv.rc(), stopped=srv.killed)
            seen = server_view(srv.json(), check["proto"])
            if seen is not None:
                server_detail["bits_per_second"] = seen
            elif srv.json() is not None and srv.json().get("error"):
                server_detail["error"] = str(srv.json()["error"])
    return run, error, client_detail, server_detail


# --------------------------------------------------------------------------- capture

class Capture:
    """tcpdump on the capture's interface (in its node's named namespace, from the build
    host) while the check runs; the pcap at ``path``. At most CAPTURE_COUNT packets of at
    most CAPTURE_SNAPLEN bytes are kept (headers, tunnels included)."""

    def __init__(self, spec, path):
        self.spec, self.path, self.proc = spec, path, None

    def start(self):
        tcpdump = shutil.which("tcpdump") or next(
            (p for p in ("/usr/sbin/tcpdump", "/usr/bin/tcpdump") if os.path.exists(p)), None)
        if tcpdump is None:
            raise IperfError("tcpdump is not installed on the build host (Debian/Ubuntu: "
                             "apt-get install tcpdump)")
        netns = self.spec.get("netns")
        if not netns or not os.path.exists(os.path.join(NETNS_RUN_DIR, netns)):
            raise IperfError("capture on %s: no named network namespace %s"
                             % (self.spec.get("node"), netns))
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        argv = ["ip", "netns", "exec", netns, tcpdump, "-i", self.spec["interface"], "-w", self.path,
                "-U", "--immediate-mode", "-s", str(CAPTURE_SNAPLEN), "-c", str(CAPTURE_COUNT)]
        if self.spec.get("filter"):
            argv += ["--", self.spec["filter"]]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        fd, seen = self.proc.stderr.fileno(), b""
        deadline = time.monotonic() + LISTEN_TIMEOUT
        while b"listening on" not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                self.stop()
                raise IperfError("tcpdump did not start listening on %s:%s: %s"
                                 % (self.spec.get("node"), self.spec["interface"], tail(seen)))
            chunk = os.read(fd, 4096)
            if not chunk:
                self.proc.wait()
                raise IperfError("tcpdump on %s:%s exited: %s"
                                 % (self.spec.get("node"), self.spec["interface"], tail(seen)))
            seen += chunk

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.communicate()

    def result(self):
        """{path, total, rows: the first CAPTURE_ROWS rows} (module_utils._pcap)."""
        from ansible_collections.topo.lab.plugins.module_utils import _pcap
        rows = _pcap.summarize(self.path)
        return {"path": self.path, "total": len(rows), "rows": rows[:CAPTURE_ROWS]}


# --------------------------------------------------------------------------- the check

def expected_text(check):
    lengths = check["lengths"]
    where_ = ("at every length (%s)" % fmt_lengths(lengths)) if lengths else "with iperf3's default length"
    if check.get("min_bps") is not None:
        return ">= %s %s" % (fmt_bps(check["min_bps"]), where_)
    return "runs %s" % where_


def run_text(run, asked, proto):
    text = "%s: %s" % (label(run["length"], asked), fmt_bps(run["bits_per_second"]))
    if proto == "udp" and run["lost_percent"] is not None:
        text += " (%.3g%% lost, jitter %.3f ms)" % (run["lost_percent"], run["jitter_ms"] or 0.0)
    return text


def run_check(check, capture_dir=None):
    """Run expanded iperf3 check ``check``; the module's result (without ``changed``):
    {failed, ok, type, name, description, expected, observed, figures, details,
    capture?, msg?}."""
    client, server, proto = check["client"], check["server"], check["proto"]
    asked = list(check["lengths"]) or [None]
    runs, texts, errors, failed_run = [], [], [], None
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
            for i, length in enumerate(asked):
                run, error, cdet, sdet = one_run(check, length)
                cdetails["runs"].append(cdet)
                sdetails["runs"].append(sdet)
                if error is not None:
                    failed_run = (length, error)
                    texts.append("%s: failed (%s)" % (label(None, length), error))
                    rest = [n for n in asked[i + 1:] if n is not None]
                    if rest:
                        texts.append("%s: not run" % fmt_lengths(rest))
                    break
                runs.append(run)
                texts.append(run_text(run, length, proto))
        finally:
            if capture is not None:
                capture.stop()
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
    }
    result["observed"] = ", ".join(texts)
    if client["node"] == server["node"]:
        merged = dict(sdetails, role="client and server", client_runs=cdetails["runs"],
                      server_runs=sdetails["runs"])
        merged.pop("runs")
        result["details"] = {client["node"]: merged}
    else:
        result["details"] = {client["node"]: cdetails, server["node"]: sdetails}

    head = "iperf3 %s %s -> %s %s:%d" % (proto.upper(), client["node"], server["node"],
                                         check["address"], check["port"])
    if failed_run is not None:
        length, error = failed_run
        errors.insert(0, "the run at %s failed: %s" % (label(None, length), error))
    if check.get("min_bps") is not None:
        low = [(a, r) for a, r in zip(asked, runs) if r["bits_per_second"] < check["min_bps"]]
        if low:
            errors.append("below the minimum %s: %s" % (fmt_bps(check["min_bps"]), ", ".join(
                "%s: %s" % (label(r["length"], a), fmt_bps(r["bits_per_second"])) for a, r in low)))
    result["ok"] = not errors
    result["failed"] = bool(errors)
    if errors:
        result["msg"] = "%s: %s" % (head, "; ".join(errors))
    return result
