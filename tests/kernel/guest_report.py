"""pytest plugin loaded inside the shared UML guest (``-p tests.kernel.guest_report``).

It writes one JSON line per test phase to the file named by ``TOPO_LANE_RESULTS`` as soon as
the phase ends, so the host's pytest can report each lane test while the guest goes on to
the next (lane.py, :class:`LaneRun`). Each line: ``{"nodeid", "when": "setup"|"call"|
"teardown", "outcome": "passed"|"failed"|"skipped", "text", "duration"}`` (seconds).

It also bounds each test: a test still running after ``TOPO_LANE_TEST_TIMEOUT`` seconds
(default 900) fails with :class:`LaneTestTimeout` raised in it, and the guest moves on,
where a hung test would otherwise hold every later one until the whole guest's deadline.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

RESULTS = os.environ.get("TOPO_LANE_RESULTS")
TEST_TIMEOUT = int(os.environ.get("TOPO_LANE_TEST_TIMEOUT", "900"))


class LaneTestTimeout(Exception):
    """A lane test outlived TOPO_LANE_TEST_TIMEOUT inside the guest."""


def _alarm(signum, frame):
    raise LaneTestTimeout(f"still running after {TEST_TIMEOUT} s in the UML guest")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def pytest_runtest_logreport(report):
    if not RESULTS:
        return
    if report.skipped and isinstance(report.longrepr, tuple):
        text = report.longrepr[2]           # (file, line, "Skipped: reason")
    else:
        text = report.longreprtext
    if report.capstdout or report.capstderr:
        text += "\n" + report.capstdout[-4000:] + report.capstderr[-4000:]
    line = json.dumps({"nodeid": report.nodeid, "when": report.when, "outcome": report.outcome,
                       "text": text, "duration": round(report.duration, 2)})
    with open(RESULTS, "a") as f:           # on the hostfs workdir the host reads
        f.write(line + "\n")
