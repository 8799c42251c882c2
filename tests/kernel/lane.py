"""The kernel-feature lane (DESIGN.md 7): run a test where the kernel has what it needs.

A test marked ``@pytest.mark.kernel("gre", "netem")`` runs on the host when the host's
kernel has every listed feature; otherwise the whole test (fixtures included) runs again
inside a User-Mode Linux guest (uml.py: Debian's ``linux.uml``, kernel 6.1 with gre,
gretap, vxlan, 8021q, netem as modules, the host's ``/`` as a read-only root under a tmpfs
overlay, no network card); it is skipped with the reason only when neither is possible.
Inside the guest ``UML_GUEST=1`` is set, so the same test then runs for real.

All the lane tests of one pytest session share one guest (:class:`LaneRun`), started in
the background when collection ends, while the host runs its own tests on the other core;
the lane tests are moved to the end of the session and each reports the result its
twin had in the guest. Everything inside UML runs 10 to 30 times slower than on the host
(every system call is a ptrace round trip: an ansible-playbook start-up takes 5 s, 100 veth
pairs 9 s), so the lane's 35 minutes of work would otherwise add to the suite's wall time.

Features are probed by making a throw-away object in a scratch namespace: a link of
that kind, or a qdisc (``netem``, ``tbf``) on its lo.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import pytest

from tests.kernel.uml import UMLError, run_in_uml, uml_available

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

#: how to make a throw-away object of each feature in a scratch namespace (ip/tc argv tails)
PROBES = {
    "gre": ["link", "add", "probe0", "type", "gre", "local", "198.18.0.1", "remote", "198.18.0.2"],
    "gretap": ["link", "add", "probe0", "type", "gretap", "local", "198.18.0.1", "remote", "198.18.0.2"],
    "vxlan": ["link", "add", "probe0", "type", "vxlan", "id", "42", "dstport", "4789",
              "local", "198.18.0.1", "remote", "198.18.0.2"],
    "ip6gre": ["link", "add", "probe0", "type", "ip6gre", "local", "2001:db8::1", "remote", "2001:db8::2"],
    "ip6gretap": ["link", "add", "probe0", "type", "ip6gretap", "local", "2001:db8::1", "remote", "2001:db8::2"],
    "vlan": ["link", "add", "link", "lo", "name", "probe0", "type", "vlan", "id", "42"],
    "netem": ["qdisc", "add", "dev", "lo", "root", "netem", "delay", "1ms"],
    "tbf": ["qdisc", "add", "dev", "lo", "root", "tbf", "rate", "1mbit", "burst", "32kbit", "latency", "50ms"],
}
#: modules the guest loads before the test (the rest auto-load on demand)
GUEST_MODULES = ["ipv6", "ip_gre", "ip6_gre", "vxlan", "sch_netem", "sch_tbf", "bridge", "veth"]


@functools.lru_cache(maxsize=None)
def host_has(feature: str) -> bool:
    """True when this kernel can make ``feature`` (a key of PROBES)."""
    ns = "topo-probe-" + secrets.token_hex(3)
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        tool = "tc" if PROBES[feature][0] == "qdisc" else "ip"
        argv = [tool, "-n", ns, *PROBES[feature]]
        subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        return subprocess.run(argv, capture_output=True).returncode == 0
    finally:
        subprocess.run(["ip", "netns", "del", ns])


def missing(features) -> list[str]:
    return [f for f in features if not host_has(f)]


@functools.lru_cache(maxsize=None)
def lane_unavailable() -> str | None:
    """None when a UML guest boots here (tried once per session), else the reason."""
    return uml_available(boot_test=True)


def run_with_features(features: list[str], script: str, tmp_path) -> tuple[str, str]:
    """Run bash ``script`` where ``features`` exist: ("host"|"uml", output). Skips when neither."""
    if not missing(features):
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return "host", proc.stdout
    why = lane_unavailable()
    if why is not None:
        pytest.skip(f"this kernel lacks {', '.join(features)} and the UML lane is unavailable: {why}")
    rc, out = run_in_uml(["bash", "-c", script], workdir=str(tmp_path), timeout=240, modules=GUEST_MODULES)
    assert rc == 0, out
    return "uml", out


#: seconds one lane test may take inside the guest (the slowest, an e2e lifecycle of the
#: overlay lab, took 450 s in a guest of its own and 110 to 250 s in the shared one)
TEST_TIMEOUT = 900


class LaneRun:
    """One UML guest running every lane test of the session, in the background.

    ``LaneRun(nodeids).start()`` boots the guest in a thread; inside it pytest runs those
    node IDs with guest_report.py writing each phase's result to ``results.jsonl`` in a
    fresh workdir. ``outcome(nodeid)`` waits for that test's three phases (or the guest's end)
    and returns ``(outcome, text)`` with outcome ``passed``, ``failed`` or ``skipped``.
    ``stop()`` powers the guest off (killing it) and is safe to call twice.
    """

    def __init__(self, nodeids: list[str]):
        self.nodeids = list(nodeids)
        self.workdir = tempfile.mkdtemp(prefix="topo-lane-")
        self.results = os.path.join(self.workdir, "results.jsonl")
        self.cancel = threading.Event()
        self.ended: str | None = None        # why the guest ended, once it has
        self.thread = threading.Thread(target=self._run, name="uml-lane", daemon=True)

    def start(self) -> "LaneRun":
        self.thread.start()
        return self

    def _run(self) -> None:
        argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
                "tests.kernel.guest_report", "--rootdir", ROOT, "-o", "addopts=-ra", *self.nodeids]
        env = {"TOPO_LANE": "uml", "TOPO_LANE_RESULTS": self.results,
               "TOPO_LANE_TEST_TIMEOUT": str(TEST_TIMEOUT)}
        try:
            rc, out = run_in_uml(argv, workdir=self.workdir, cwd=ROOT, mem="2G",
                                 timeout=TEST_TIMEOUT * len(self.nodeids) + 120,
                                 modules=GUEST_MODULES, share=[ROOT], env=env,
                                 cancel=self.cancel)
            self.ended = f"the guest's pytest exited {rc}:\n{out[-6000:]}"
        except UMLError as exc:
            self.ended = f"the guest failed: {exc}\n{exc.output[-3000:]}\n{exc.console[-2000:]}"
        except Exception as exc:             # never let the thread die silently
            self.ended = f"the lane could not run: {exc!r}"

    def _phases(self, nodeid: str) -> dict:
        phases = {}
        try:
            with open(self.results) as f:
                for line in f:
                    try:
                        rec = json.loads(line)
                    except ValueError:           # a line still being written
                        continue
                    if rec["nodeid"] == nodeid:
                        phases[rec["when"]] = rec
        except FileNotFoundError:
            pass
        return phases

    def outcome(self, nodeid: str) -> tuple[str, str]:
        """Wait for ``nodeid``'s result in the guest: ("passed"|"failed"|"skipped", text)."""
        while True:
            ended = self.ended is not None
            phases = self._phases(nodeid)
            if "teardown" in phases or ended:
                break
            time.sleep(0.5)
        if not phases:
            return "failed", f"{nodeid} never ran in the UML guest: {self.ended}"
        failed = [f"{when}: {p['text']}" for when, p in phases.items() if p["outcome"] == "failed"]
        if failed:
            return "failed", "\n".join(failed)
        if "teardown" not in phases:
            return "failed", f"the guest ended during {nodeid}: {self.ended}"
        skipped = [p["text"] for p in phases.values() if p["outcome"] == "skipped"]
        if skipped:
            return "skipped", skipped[0]
        call = phases.get("call", {})
        return "passed", f"{call.get('duration', 0)} s in the UML guest"

    def stop(self) -> None:
        self.cancel.set()
        self.thread.join(timeout=30)
        shutil.rmtree(self.workdir, ignore_errors=True)


_LANE: list[LaneRun] = []


def start_lane(items) -> list:
    """Move ``items`` that need the lane to the end, start one guest for them; return the new
    order. Called once, when collection ends (tests/conftest.py)."""
    if os.environ.get("UML_GUEST") or os.geteuid() != 0:
        return items
    lane = [i for i in items if (m := i.get_closest_marker("kernel")) is not None and missing(m.args)]
    if not lane or lane_unavailable() is not None:
        return items
    _LANE.append(LaneRun([i.nodeid for i in lane]).start())
    return [i for i in items if i not in lane] + lane


def shared_lane() -> LaneRun | None:
    """The session's background guest, if one was started."""
    return _LANE[0] if _LANE else None


def stop_lane() -> None:
    for run in _LANE:
        run.stop()


def run_test_in_guest(item, features: list[str], workdir: str, timeout: float = 600) -> None:
    """Report pytest node ``item``'s result inside a UML guest: the session's shared guest
    when it runs this test, else a guest of its own. Fails with the guest's output unless
    it passed there; skips with the reason it was skipped there."""
    why = lane_unavailable()
    if why is not None:
        pytest.skip(f"this kernel lacks {', '.join(features)} and the UML lane is unavailable: {why}")
    nodeid = item.nodeid
    item.user_properties.append(("lane", "uml"))
    run = shared_lane()
    if run is not None and nodeid in run.nodeids:
        outcome, text = run.outcome(nodeid)
        if outcome == "failed":
            pytest.fail(f"in the UML guest (this kernel lacks {', '.join(features)}):\n{text[-8000:]}",
                        pytrace=False)
        if outcome == "skipped":
            pytest.skip(f"in the UML guest: {text}")
        return
    argv = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
            "--rootdir", ROOT, "-o", "addopts=-ra", nodeid]
    rc, out = run_in_uml(argv, workdir=workdir, cwd=ROOT, timeout=timeout, mem="2G",
                         modules=GUEST_MODULES, share=[ROOT], env={"TOPO_LANE": "uml"})
    if rc != 0 or " passed" not in out:
        pytest.fail(f"in the UML guest (this kernel lacks {', '.join(features)}), "
                    f"{nodeid} exited {rc}:\n{out[-6000:]}", pytrace=False)
