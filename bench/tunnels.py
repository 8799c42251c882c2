#!/usr/bin/env python3
"""Throughput over veth, VXLAN, GRE and gretap between two namespaces, measured in one run.

Two network namespaces are joined by a veth pair (the underlay, 198.18.0.1/30 -- .2, MTU
1500). Each case adds its overlay on top of that same underlay, runs iperf3 TCP from
namespace A (client, sender) to namespace B (server), and removes the overlay again:

  veth          no overlay: the baseline, the "physical limit" of namespace-to-namespace
                traffic on this kernel
  vxlan         VXLAN VNI 42, dstport 4789, unicast to the peer, MTU 1500 - 50
  gre           ip_gre (L3) tunnel, no key, MTU 1500 - 24
  gretap        L2 GRE, enslaved to a bridge in each namespace (address on the bridge),
                MTU 1500 - 38
  vxlan-in-gre  VXLAN (VNI 42) whose outer packets go through a GRE tunnel: the nested
                overlay of examples/overlay.yml, MTU 1500 - 24 - 50

Every case is measured single-stream and with ``-P 2``, ``--repeat`` times; repeats run
round-robin over the cases (round 1: every case, round 2: every case, ...), so slow drift
of the machine hits all cases alike. Tables show medians and the min-max spread; ratios
are to the veth baseline of the same environment and run.

Environments: ``host`` (this kernel; cases whose device type it lacks are reported as
unsupported) and ``uml`` (all cases in one User-Mode Linux guest, one boot, via
tests/kernel/uml.py; the guest runs this same file with ``--inside``). Each environment is
compared only with its own veth baseline.

Run as root. Everything created (two namespaces per environment, one iperf3 server) is
removed in ``finally`` blocks, also on Ctrl-C, SIGTERM and SIGHUP; the UML guest takes its
state with it when it powers off. See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
IPERF_PORT = 5201
UNDERLAY_MTU = 1500
UNDER_A, UNDER_B = "198.18.0.1", "198.18.0.2"
#: longest wait for other programs to go quiet before a measurement (seconds)
QUIET_WAIT = 20.0
#: modules the guest loads at boot (gretap is in ip_gre; the rest auto-load too)
GUEST_MODULES = ["ipv6", "veth", "bridge", "vxlan", "ip_gre"]


class BenchError(Exception):
    pass


class Unsupported(BenchError):
    """The kernel cannot make one of the case's device types."""


# --------------------------------------------------------------------------- cases

class Case:
    """One overlay on top of the veth underlay.

    ``build(side, local, remote)`` returns the ip argv tails (after ``ip -n NS``) that make
    the overlay in one namespace; ``devices`` are removed afterwards (in that order);
    ``target`` is B's overlay address; ``dev`` the device whose MTU is the case's MTU.
    """

    def __init__(self, name, overhead, build, devices, target, dev, needs, what):
        self.name, self.overhead, self.build, self.devices = name, overhead, build, devices
        self.target, self.dev, self.needs, self.what = target, dev, needs, what

    @property
    def mtu(self) -> int:
        return UNDERLAY_MTU - self.overhead


def _veth(side, local, remote):
    return []


def _vxlan(side, local, remote):
    me = "1" if side == "A" else "2"
    return [["link", "add", "vx42", "mtu", str(UNDERLAY_MTU - 50), "type", "vxlan", "id", "42",
             "dstport", "4789", "local", local, "remote", remote, "dev", "u0"],
            ["addr", "add", f"198.18.1.{me}/24", "dev", "vx42"],
            ["link", "set", "vx42", "up"]]


def _gre(side, local, remote):
    me = "1" if side == "A" else "2"
    return [["link", "add", "gre1", "mtu", str(UNDERLAY_MTU - 24), "type", "gre",
             "local", local, "remote", remote, "ttl", "64"],
            ["addr", "add", f"198.18.2.{me}/30", "dev", "gre1"],
            ["link", "set", "gre1", "up"]]


def _gretap(side, local, remote):
    me = "1" if side == "A" else "2"
    return [["link", "add", "gtap1", "mtu", str(UNDERLAY_MTU - 38), "type", "gretap",
             "local", local, "remote", remote, "ttl", "64"],
            ["link", "add", "br0", "type", "bridge"],
            ["link", "set", "gtap1", "master", "br0"],
            ["link", "set", "gtap1", "up"],
            ["addr", "add", f"198.18.3.{me}/24", "dev", "br0"],
            ["link", "set", "br0", "up"]]


def _vxlan_in_gre(side, local, remote):
    me, peer = ("1", "2") if side == "A" else ("2", "1")
    return [["link", "add", "gre2", "mtu", str(UNDERLAY_MTU - 24), "type", "gre",
             "local", local, "remote", remote, "ttl", "64"],
            ["addr", "add", f"198.18.4.{me}/30", "dev", "gre2"],
            ["link", "set", "gre2", "up"],
            ["link", "add", "vx43", "mtu", str(UNDERLAY_MTU - 24 - 50), "type", "vxlan", "id", "42",
             "dstport", "4789", "local", f"198.18.4.{me}", "remote", f"198.18.4.{peer}", "dev", "gre2"],
            ["addr", "add", f"198.18.5.{me}/24", "dev", "vx43"],
            ["link", "set", "vx43", "up"]]


CASES = [
    Case("veth", 0, _veth, [], UNDER_B, "u0", [], "veth pair, no overlay (baseline)"),
    Case("vxlan", 50, _vxlan, ["vx42"], "198.18.1.2", "vx42", ["vxlan"],
         "VXLAN VNI 42, UDP 4789, over the veth"),
    Case("gre", 24, _gre, ["gre1"], "198.18.2.2", "gre1", ["gre"], "GRE (ip_gre, L3), no key"),
    Case("gretap", 38, _gretap, ["br0", "gtap1"], "198.18.3.2", "br0", ["gretap"],
         "gretap (L2 GRE) in a bridge, address on the bridge"),
    Case("vxlan-in-gre", 74, _vxlan_in_gre, ["vx43", "gre2"], "198.18.5.2", "vx43", ["gre", "vxlan"],
         "VXLAN inside a GRE tunnel (nested overlay)"),
]
CASE_NAMES = [c.name for c in CASES]


# --------------------------------------------------------------------------- helpers

def _run(argv: list[str], timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise BenchError(f"{' '.join(argv)} failed (rc {proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()[-600:]}")
    return proc


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def link_info(ns: str, dev: str) -> dict:
    data = json.loads(_run(["ip", "-n", ns, "-s", "-d", "-j", "link", "show", "dev", dev]).stdout)
    return data[0]


def counters(ns: str, dev: str, direction: str) -> tuple[int, int]:
    s = link_info(ns, dev)["stats64"][direction]
    return s["bytes"], s["packets"]


def _avg(before: tuple[int, int], after: tuple[int, int]) -> int | None:
    pkts = after[1] - before[1]
    return round((after[0] - before[0]) / pkts) if pkts > 0 else None


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


# --------------------------------------------------------------------------- other load

class LoadSampler:
    """Samples, every 0.25 s in a thread, how many tasks of *other* programs are runnable.

    Other work on the machine competes with iperf3 for the CPUs (and with the single-CPU
    UML guest, whose kernel and processes are host processes). Each sample scans
    /proc/PID/stat (and /proc/PID/task/*/stat of multi-threaded processes) and counts the
    tasks in state R that are neither this benchmark's process or descendants (ip, iperf3,
    the UML guest) nor kernel threads (softirq work for the veth is ours). The mean over a
    measurement's window is about the number of CPUs' worth of foreign demand: 0 on a quiet
    machine. The host's ``procs_running`` is recorded next to it. Samples are appended as
    ``EPOCH FOREIGN PROCS_RUNNING`` to ``path``, which the measuring side reads (the UML
    guest through the shared workdir: its clock is the host's; hostfs reads are not cached).
    """

    def __init__(self, path: str, period: float = 0.25):
        import threading
        self.path, self.period = path, period
        self.values: list[tuple[int, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    @staticmethod
    def _stat(path: str) -> list[bytes] | None:
        try:
            with open(path, "rb") as f:
                st = f.read()
        except OSError:
            return None
        return st[st.rfind(b")") + 2:].split()

    def sample(self) -> tuple[int, int]:
        procs = {}
        for name in os.listdir("/proc"):
            if name.isdigit() and (f := self._stat(f"/proc/{name}/stat")) is not None:
                procs[int(name)] = f     # f[0] state, f[1] ppid, f[17] num_threads
        children: dict[int, list[int]] = {}
        for pid, f in procs.items():
            children.setdefault(int(f[1]), []).append(pid)
        mine, todo = set(), [os.getpid()]
        while todo:
            pid = todo.pop()
            mine.add(pid)
            todo += children.get(pid, [])
        foreign = 0
        for pid, f in procs.items():
            if pid in mine or pid == 2 or f[1] == b"2":
                continue
            if f[17] == b"1":
                foreign += f[0] == b"R"
                continue
            try:
                tids = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            foreign += sum(1 for t in tids if (ft := self._stat(f"/proc/{pid}/task/{t}/stat")) and ft[0] == b"R")
        total = -1                       # without this sampler
        with open("/proc/stat") as fs:
            for line in fs:
                if line.startswith("procs_running "):
                    total += int(line.split()[1])
                    break
        return foreign, total

    def _loop(self) -> None:
        with open(self.path, "a") as log:
            while not self._stop.is_set():
                try:
                    foreign, total = self.sample()
                except OSError:
                    return
                self.values.append((foreign, total))
                log.write(f"{time.time():.3f} {foreign} {total}\n")
                log.flush()
                self._stop.wait(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(timeout=5)


def _load_summary(v: list[tuple[int, int]]) -> dict:
    return {"foreign_mean": round(statistics.fmean(x[0] for x in v), 2) if v else None,
            "foreign_max": max(x[0] for x in v) if v else None,
            "host_running_mean": round(statistics.fmean(x[1] for x in v), 2) if v else None}


def host_load(path: str | None, t0: float, t1: float) -> tuple[float | None, float | None]:
    """(foreign runnable, host procs_running), means between t0 and t1, from LoadSampler's file."""
    if not path:
        return None, None
    fo, tot = [], []
    try:
        with open(path) as f:
            for line in f:
                try:
                    t, a, b = line.split()
                    if t0 <= float(t) <= t1:
                        fo.append(int(a))
                        tot.append(int(b))
                except ValueError:
                    continue
    except OSError:
        return None, None
    if not fo:
        return None, None
    return round(statistics.fmean(fo), 2), round(statistics.fmean(tot), 2)


class Gate:
    """Measure only while no other program competes for the CPUs; measure again when one did."""

    def __init__(self, path: str | None, max_foreign: float, retries: int, env: str):
        self.path, self.max_foreign, self.retries, self.env = path, max_foreign, retries, env

    def wait_quiet(self, limit: float = QUIET_WAIT) -> None:
        """Wait (at most ``limit`` s) for 2 s in which other programs stayed under the limit."""
        if not self.path or self.max_foreign < 0:
            return
        deadline = time.time() + limit
        while time.time() < deadline:
            foreign, _ = host_load(self.path, time.time() - 2.0, time.time())
            if foreign is None or foreign <= self.max_foreign:
                return
            time.sleep(0.5)

    def run(self, what: str, fn):
        """fn() -> dict with t0/t1; returns it with foreign, host_running, attempts, disturbed."""
        for attempt in range(1, self.retries + 2):
            self.wait_quiet()
            res = fn()
            foreign, total = host_load(self.path, res["t0"], res["t1"])
            res.update(foreign=foreign, host_running=total, attempts=attempt, disturbed=False)
            if self.max_foreign < 0 or foreign is None or foreign <= self.max_foreign:
                return res
            _log(f"[{self.env}] {what}: other programs were running ({foreign} runnable tasks on "
                 f"average > {self.max_foreign}), "
                 + ("measuring again" if attempt <= self.retries else "keeping it, marked disturbed"))
        res["disturbed"] = True
        return res


# --------------------------------------------------------------------------- one environment

class Lab:
    """Namespaces A and B with the veth underlay and an iperf3 server in B."""

    def __init__(self, tag: str):
        suffix = secrets.token_hex(3)
        self.a, self.b = f"tun{tag}a-{suffix}", f"tun{tag}b-{suffix}"
        self.created: list[str] = []
        self.server: subprocess.Popen | None = None
        self.server_log = tempfile.TemporaryFile()

    def __enter__(self):
        try:
            for ns in (self.a, self.b):
                _run(["ip", "netns", "add", ns])
                self.created.append(ns)
            _run(["ip", "link", "add", "u0", "netns", self.a, "type", "veth", "peer", "name", "u0",
                  "netns", self.b])
            for ns, addr in ((self.a, UNDER_A), (self.b, UNDER_B)):
                _run(["ip", "-n", ns, "link", "set", "lo", "up"])
                _run(["ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", "u0"])
                _run(["ip", "-n", ns, "link", "set", "u0", "mtu", str(UNDERLAY_MTU), "up"])
            self.server = subprocess.Popen(["ip", "netns", "exec", self.b, "iperf3", "-s", "-p",
                                            str(IPERF_PORT)], stdin=subprocess.DEVNULL,
                                           stdout=self.server_log, stderr=subprocess.STDOUT)
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        if self.server is not None:       # `ip netns exec` execs iperf3: same PID
            if self.server.poll() is None:
                self.server.terminate()
                try:
                    self.server.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.server.kill()
                    self.server.wait(timeout=5)
            self.server = None
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, check=False)
        self.created = []
        self.server_log.close()

    # -- overlays
    def add(self, case: Case) -> None:
        for side, ns, local, remote in (("A", self.a, UNDER_A, UNDER_B), ("B", self.b, UNDER_B, UNDER_A)):
            for tail in case.build(side, local, remote):
                proc = _run(["ip", "-n", ns, *tail], check=False)
                if proc.returncode == 0:
                    continue
                msg = (proc.stderr or proc.stdout).strip()
                if "Unknown device type" in msg or "not supported" in msg.lower():
                    kind = tail[tail.index("type") + 1] if "type" in tail else "?"
                    raise Unsupported(f"this kernel lacks {kind} ({msg})")
                raise BenchError(f"ip -n {ns} {' '.join(tail)} failed (rc {proc.returncode}): "
                                 f"{' / '.join(msg.splitlines()[:2])[:300]}")
        for ns in (self.a, self.b):
            mtu = link_info(ns, case.dev)["mtu"]
            if mtu != case.mtu:
                raise BenchError(f"{case.name}: {case.dev} in {ns} has MTU {mtu}, expected {case.mtu}")

    def remove(self, case: Case) -> None:
        for ns in (self.a, self.b):
            for dev in case.devices:
                subprocess.run(["ip", "-n", ns, "link", "del", dev], capture_output=True, check=False)

    def wait_reachable(self, target: str, timeout: float = 10.0) -> None:
        """ping until the overlay answers (ARP/FDB over the tunnel settled)."""
        deadline = time.monotonic() + timeout
        while True:
            p = _run(["ip", "netns", "exec", self.a, "ping", "-c", "1", "-W", "1", target], check=False)
            if p.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"{target} not reachable from {self.a}: {p.stdout.strip()[-300:]}")

    def iperf(self, target: str, seconds: int, streams: int) -> dict:
        argv = ["ip", "netns", "exec", self.a, "iperf3", "-c", target, "-p", str(IPERF_PORT),
                "-t", str(seconds), "-J"] + (["-P", str(streams)] if streams > 1 else [])
        for attempt in range(20):
            t0 = time.time()
            proc = _run(argv, timeout=seconds + 60, check=False)
            try:
                doc = json.loads(proc.stdout)
            except json.JSONDecodeError:
                doc = {"error": (proc.stderr or proc.stdout).strip()[-300:] or f"rc {proc.returncode}"}
            err = doc.get("error")
            if not err:
                break
            # the server is still finishing the previous test, or not listening yet
            if "busy" in err or "refused" in err or "unable to connect" in err:
                time.sleep(0.5)
                continue
            raise BenchError(f"iperf3 to {target}: {err}")
        else:
            raise BenchError(f"iperf3 to {target}: {err}")
        end = doc["end"]
        cpu = end.get("cpu_utilization_percent", {})
        return {"bps": end["sum_received"]["bits_per_second"], "t0": t0, "t1": time.time(),
                "retransmits": end["sum_sent"].get("retransmits"),
                "cpu_sender": cpu.get("host_total"), "cpu_receiver": cpu.get("remote_total")}


def measure(env: str, cases: list[Case], seconds: int, repeat: int, gate: Gate) -> dict:
    """Run ``cases`` in this kernel; return {"env", "kernel", ..., "results": [...]}."""
    t_start = time.monotonic()
    results = {c.name: {"case": c.name, "what": c.what, "needs": c.needs, "mtu": c.mtu, "overhead": c.overhead,
                        "error": None, "samples": []} for c in cases}
    with Lab("g" if env == "uml" else "h") as lab:
        for rnd in range(1, repeat + 1):
            for case in cases:
                r = results[case.name]
                if r["error"]:
                    continue
                try:
                    lab.add(case)
                except BenchError as e:
                    lab.remove(case)
                    r["error"] = str(e)
                    r["unsupported"] = isinstance(e, Unsupported)
                    _log(f"[{env}] {case.name}: {r['error']}")
                    continue
                try:
                    lab.wait_reachable(case.target)

                    def single():
                        u0, o0 = counters(lab.a, "u0", "tx"), counters(lab.b, case.dev, "rx")
                        res = lab.iperf(case.target, seconds, 1)
                        u1, o1 = counters(lab.a, "u0", "tx"), counters(lab.b, case.dev, "rx")
                        res.update(underlay_tx_packets=u1[1] - u0[1], underlay_avg_pkt=_avg(u0, u1),
                                   overlay_rx_avg_pkt=_avg(o0, o1))
                        return res
                    one = gate.run(f"{case.name} round {rnd} single stream", single)
                    two = gate.run(f"{case.name} round {rnd} -P 2", lambda: lab.iperf(case.target, seconds, 2))
                    sample = {"round": rnd}
                    for k, res in (("1", one), ("2", two)):
                        sample.update({f"{key}_{k}": res.get(key) for key in (
                            "bps", "retransmits", "cpu_sender", "cpu_receiver", "t0", "t1",
                            "foreign", "host_running", "attempts", "disturbed")})
                    sample.update(underlay_tx_packets_1=one["underlay_tx_packets"],
                                  underlay_avg_pkt_1=one["underlay_avg_pkt"],
                                  overlay_rx_avg_pkt_1=one["overlay_rx_avg_pkt"])
                    r["samples"].append(sample)
                    _log(f"[{env}] round {rnd}/{repeat} {case.name:13s} {one['bps'] / 1e9:6.2f} Gbit/s "
                         f"(-P 2: {two['bps'] / 1e9:6.2f}) retr {one['retransmits']}/{two['retransmits']} "
                         f"avg pkt {one['underlay_avg_pkt']} B underlay tx, "
                         f"{one['overlay_rx_avg_pkt']} B overlay rx; other programs' runnable tasks "
                         f"{one['foreign']}/{two['foreign']}")
                except BenchError as e:
                    r["error"] = str(e)
                    _log(f"[{env}] {case.name}: {e}")
                finally:
                    lab.remove(case)
    out = [summarize(results[c.name]) for c in cases]
    base = next((r for r in out if r["case"] == "veth" and not r["error"]), None)
    for r in out:
        for k in ("1", "2"):
            ok = base and r.get(f"gbps_{k}") is not None and base[f"gbps_{k}"]
            r[f"ratio_{k}"] = round(r[f"gbps_{k}"] / base[f"gbps_{k}"], 3) if ok else None
    return {"env": env, "kernel": platform.release(), "cpus": os.cpu_count(),
            "max_foreign": gate.max_foreign, "retries": gate.retries,
            "iperf3": (_run(["iperf3", "--version"], check=False).stdout.splitlines() or [""])[0],
            "seconds": round(time.monotonic() - t_start, 1), "results": out}


def summarize(r: dict) -> dict:
    s = r["samples"]
    for k in ("1", "2"):
        vals = [x[f"bps_{k}"] / 1e9 for x in s]
        r[f"gbps_{k}"] = round(statistics.median(vals), 3) if vals else None
        r[f"gbps_{k}_min"] = round(min(vals), 3) if vals else None
        r[f"gbps_{k}_max"] = round(max(vals), 3) if vals else None
        r[f"retr_{k}"] = _median([x[f"retransmits_{k}"] for x in s])
        r[f"foreign_{k}"] = _median([x[f"foreign_{k}"] for x in s])
        r[f"host_running_{k}"] = _median([x[f"host_running_{k}"] for x in s])
        r[f"disturbed_{k}"] = sum(1 for x in s if x[f"disturbed_{k}"])
        r[f"remeasured_{k}"] = sum(x[f"attempts_{k}"] - 1 for x in s)
        r[f"cpu_sender_{k}"] = _median([x[f"cpu_sender_{k}"] for x in s])
        r[f"cpu_receiver_{k}"] = _median([x[f"cpu_receiver_{k}"] for x in s])
    r["underlay_avg_pkt_1"] = _median([x["underlay_avg_pkt_1"] for x in s])
    r["overlay_rx_avg_pkt_1"] = _median([x["overlay_rx_avg_pkt_1"] for x in s])
    return r


# --------------------------------------------------------------------------- UML

def measure_in_uml(cases: list[Case], seconds: int, repeat: int, workdir: str, gate: Gate,
                   cpu: int | None) -> dict:
    sys.path.insert(0, ROOT)
    from tests.kernel.uml import run_in_uml, uml_available

    why = uml_available()
    if why is not None:
        raise BenchError(f"UML lane unavailable: {why}")
    out_file = os.path.join(workdir, "uml-result.json")
    argv = [sys.executable, os.path.abspath(__file__), "--inside", out_file,
            "--time", str(seconds), "--repeat", str(repeat), "--cases", ",".join(c.name for c in cases),
            "--max-foreign", str(gate.max_foreign), "--retries", str(gate.retries)]
    if gate.path:
        argv += ["--load-file", gate.path]
    # upper bound (every measurement waiting and repeated as often as allowed): only there to
    # catch a hung guest
    limit = len(cases) * repeat * 2 * (seconds + 6 + QUIET_WAIT) * (1 + gate.retries) + 360
    timing: dict = {}
    # UML's guest kernel and the host processes that run its user space hand the (single)
    # virtual CPU to each other through the host scheduler; on one host CPU that is a local
    # context switch, across CPUs a cross-CPU wake-up, which made throughput ~3x lower and
    # far noisier here. The affinity of this (main) thread is inherited by the guest's
    # processes; the load sampler thread keeps its own.
    saved = os.sched_getaffinity(0)
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        rc, output = run_in_uml(argv, workdir=workdir, cwd=ROOT, timeout=limit, mem="2G",
                                modules=GUEST_MODULES, share=[ROOT], stream=sys.stderr, timing=timing)
    finally:
        os.sched_setaffinity(0, saved)
    if rc != 0 or not os.path.exists(out_file):
        raise BenchError(f"the guest run exited {rc}: {output[-3000:]}")
    with open(out_file) as f:
        doc = json.load(f)
    doc["uml_wall_s"] = round(timing.get("wall", 0.0), 1)
    doc["host_cpu"] = cpu
    return doc


# --------------------------------------------------------------------------- report

def _fmt(v, lo, hi, digits=2):
    if v is None:
        return "-"
    return f"{v:.{digits}f} ({lo:.{digits}f}-{hi:.{digits}f})" if lo != hi else f"{v:.{digits}f}"


def _num(v) -> str:
    return "-" if v is None else f"{v:g}"


def table(doc: dict, repeat: int) -> str:
    pin = ""
    if doc["env"] == "uml":
        pin = f", pinned to host CPU {doc['host_cpu']}" if doc.get("host_cpu") is not None else ", not pinned"
    lines = [f"### {doc['env']}: kernel {doc['kernel']}, {doc['cpus']} CPU(s){pin}, "
             f"median of {repeat} (min-max)", "",
             "| case | MTU | Gbit/s 1 stream | Gbit/s -P 2 | retransmits 1 / -P 2 | ratio to veth 1 / -P 2 "
             "| avg pkt B: underlay tx / overlay rx | other load 1 / -P 2 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in doc["results"]:
        if r["error"]:
            what = r["error"].split(" (")[0] if r.get("unsupported") else "error: " + r["error"][:200]
            lines.append(f"| {r['case']} | {r['mtu']} | {what} | | | | | |")
            continue
        ratio = (f"{r['ratio_1']:.2f} / {r['ratio_2']:.2f}" if r.get("ratio_1") is not None else "-")
        lines.append(f"| {r['case']} | {r['mtu']} | {_fmt(r['gbps_1'], r['gbps_1_min'], r['gbps_1_max'])} | "
                     f"{_fmt(r['gbps_2'], r['gbps_2_min'], r['gbps_2_max'])} | "
                     f"{_num(r['retr_1'])} / {_num(r['retr_2'])} | {ratio} | "
                     f"{_num(r['underlay_avg_pkt_1'])} / {_num(r['overlay_rx_avg_pkt_1'])} | "
                     f"{_num(r.get('foreign_1'))} / {_num(r.get('foreign_2'))} |")
    redo = sum(r.get(f"remeasured_{k}", 0) for r in doc["results"] for k in ("1", "2"))
    kept = [f"{r['case']} {'single' if k == '1' else '-P 2'}" for r in doc["results"] for k in ("1", "2")
            for _ in range(r.get(f"disturbed_{k}", 0))]
    lines += ["", f"Other load: mean runnable tasks of other programs during the kept measurements "
                  f"(whole run: mean {_num(doc.get('foreign_mean'))}, max {_num(doc.get('foreign_max'))}); "
                  f"{redo} measurement(s) done again because it exceeded {_num(doc.get('max_foreign'))}; "
                  f"kept although disturbed: {', '.join(kept) or 'none'}."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main

def _csv_cases(v: str) -> list[str]:
    names = [x.strip() for x in v.split(",") if x.strip()]
    bad = [n for n in names if n not in CASE_NAMES]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown case(s) {bad}; known: {','.join(CASE_NAMES)}")
    return names


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="example: python3 bench/tunnels.py --repeat 3 --json tunnels.json")
    p.add_argument("--time", type=int, default=5, help="iperf3 -t seconds per measurement (default 5)")
    p.add_argument("--repeat", type=int, default=3, help="measurements per case; medians shown (default 3)")
    p.add_argument("--cases", type=_csv_cases, default=CASE_NAMES,
                   help=f"comma-separated subset of {','.join(CASE_NAMES)} (default all; veth is "
                        "always added, it is the baseline)")
    p.add_argument("--no-uml", action="store_true", help="do not run the cases in a UML guest")
    p.add_argument("--no-host", action="store_true", help="do not run the cases on this kernel")
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    p.add_argument("--max-foreign", type=float, default=0.2,
                   help="a measurement during which other programs had more than this many runnable "
                        "tasks on average (sampled 4/s) is done again; negative: never (default 0.2)")
    p.add_argument("--retries", type=int, default=2,
                   help="how often a disturbed measurement is done again before it is kept and "
                        "marked disturbed (default 2)")
    p.add_argument("--uml-cpu", type=int, default=None,
                   help="host CPU the UML guest is pinned to (default: the highest one this process may "
                        "use; -1: do not pin)")
    p.add_argument("--inside", metavar="OUT", help=argparse.SUPPRESS)   # guest side: write JSON to OUT
    p.add_argument("--load-file", help=argparse.SUPPRESS)               # guest side: host load samples
    opts = p.parse_args(argv)
    if opts.time < 1 or opts.repeat < 1 or opts.retries < 0:
        p.error("--time and --repeat must be at least 1, --retries at least 0")
    if opts.no_uml and opts.no_host and not opts.inside:
        p.error("--no-uml and --no-host leave nothing to measure")
    names = ["veth"] + [n for n in opts.cases if n != "veth"]
    cases = [c for c in CASES if c.name in names]
    if os.geteuid() != 0:
        _log("run as root: the benchmark creates network namespaces")
        return 3
    for tool in ("ip", "iperf3", "ping"):
        if shutil.which(tool) is None:
            _log(f"{tool} is missing")
            return 3

    def _stop(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop)

    if opts.inside:                                   # running in the UML guest
        gate = Gate(opts.load_file, opts.max_foreign, opts.retries, "uml")
        doc = measure("uml", cases, opts.time, opts.repeat, gate)
        with open(opts.inside, "w") as f:
            json.dump(doc, f, indent=2)
        return 0

    allowed = sorted(os.sched_getaffinity(0))
    uml_cpu = max(allowed) if opts.uml_cpu is None else (None if opts.uml_cpu < 0 else opts.uml_cpu)
    if uml_cpu is not None and uml_cpu not in allowed:
        p.error(f"--uml-cpu {uml_cpu}: not one of the CPUs this process may use {allowed}")
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    t0 = time.monotonic()
    envs: list[dict] = []
    errors: list[str] = []
    workdir = tempfile.mkdtemp(prefix="topo-tunnels-")
    load_file = os.path.join(workdir, "host-load.log")
    try:
        with LoadSampler(load_file) as sampler:
            if not opts.no_host:
                _log(f"host: {len(cases)} cases x {opts.repeat} rounds x 2 runs of {opts.time} s ...")
                n0 = len(sampler.values)
                try:
                    doc = measure("host", cases, opts.time, opts.repeat,
                                  Gate(load_file, opts.max_foreign, opts.retries, "host"))
                    doc.update(_load_summary(sampler.values[n0:]))
                    envs.append(doc)
                except (BenchError, OSError, subprocess.SubprocessError) as e:
                    errors.append(f"host: {e}")
                    _log(f"host: {e}")
            if not opts.no_uml:
                _log(f"uml: booting one guest for {len(cases)} cases x {opts.repeat} rounds ...")
                n0 = len(sampler.values)
                try:
                    doc = measure_in_uml(cases, opts.time, opts.repeat, workdir,
                                         Gate(load_file, opts.max_foreign, opts.retries, "uml"), uml_cpu)
                    doc.update(_load_summary(sampler.values[n0:]))
                    envs.append(doc)
                except (BenchError, OSError) as e:
                    errors.append(f"uml: {e}")
                    _log(f"uml: {e}")
                except Exception as e:        # UMLError and friends
                    errors.append(f"uml: {type(e).__name__}: {e}")
                    _log(f"uml: {type(e).__name__}: {e}")
    except KeyboardInterrupt:
        _log("interrupted; cleaned up")
        errors.append("interrupted")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    total = time.monotonic() - t0
    print(f"## Tunnel throughput, {started}, iperf3 TCP -t {opts.time}, {platform.node()}\n")
    for doc in envs:
        print(table(doc, opts.repeat))
        print(f"({doc['env']}: {doc['seconds']} s of measuring"
              + (f", {doc['uml_wall_s']} s with guest boot and power-off" if "uml_wall_s" in doc else "")
              + ")\n")
    print(f"total run time {total:.0f} s")
    for e in errors:
        print(f"ERROR {e}")
    if opts.json:
        doc = {"started": started, "host": platform.node(), "host_kernel": platform.release(),
               "cpus": os.cpu_count(), "python": platform.python_version(),
               "ip_version": _run(["ip", "-V"], check=False).stdout.strip(),
               "options": {"time": opts.time, "repeat": opts.repeat, "cases": names,
                           "max_foreign": opts.max_foreign, "retries": opts.retries, "uml_cpu": uml_cpu,
                           "uml": not opts.no_uml, "host": not opts.no_host},
               "underlay": {"a": UNDER_A, "b": UNDER_B, "mtu": UNDERLAY_MTU},
               "total_s": round(total, 1), "errors": errors, "environments": envs}
        with open(opts.json, "w") as f:
            json.dump(doc, f, indent=2)
        _log(f"wrote {opts.json}")
    failed = errors or any(r["error"] and not r.get("unsupported")
                           for d in envs for r in d["results"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
