"""Phase 5, run: playbooks through ansible-runner, its event stream turned into progress.

:func:`run_playbook` runs one of the collection's playbooks against a lab's inventory and
returns a :class:`RunResult`: every change the modules reported (``changes`` in their
results), every check result (``results`` of ``topo.lab.ping``), the failures, and the
path of the full log, which is kept in ``<lab dir>/logs/``.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

from rich.console import Console

from topo import labdir


@dataclass
class TaskFailure:
    host: str
    task: str
    message: str
    unreachable: bool = False


@dataclass
class RunResult:
    """What one playbook run did. ``rc`` is ansible-playbook's exit code."""

    playbook: str
    rc: int
    seconds: float
    log: str
    changes: list[dict] = field(default_factory=list)
    checks: list[dict] = field(default_factory=list)
    #: warnings the modules returned (e.g. no dockerd to look for a lab's containers)
    warnings: list[str] = field(default_factory=list)
    failures: list[TaskFailure] = field(default_factory=list)
    #: tasks reported changed per host by the play recap (cross-check of ``changes``)
    changed_tasks: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.failures


def _path_with_python_bin() -> str:
    """PATH with this Python's bin directory first, so the ansible-playbook installed with
    topo runs even from an unactivated virtualenv."""
    return os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")])


class _Progress:
    """Live display of tasks and hosts on stderr (plain lines when not a terminal)."""

    def __init__(self, console: Console, quiet: bool):
        self.console = console
        self.quiet = quiet
        self.status = None
        self.task = None
        self.task_start = 0.0
        self.done = 0
        self.failed = False

    def start(self, title: str):
        if not self.quiet and self.console.is_terminal:
            self.status = self.console.status(title)
            self.status.start()

    def task_started(self, name: str):
        self.finish_task()
        self.task, self.task_start, self.done, self.failed = name, time.monotonic(), 0, False
        self._show()

    def host_done(self, failed: bool = False):
        self.done += 1
        self.failed |= failed
        self._show()

    def _show(self):
        if self.status is not None and self.task:
            self.status.update(f"{self.task}  [dim]({self.done} host{'s' if self.done != 1 else ''} done)[/]")

    def finish_task(self):
        if self.task and not self.quiet:
            mark = "[red]✗[/]" if self.failed else "[green]✓[/]"
            self.console.print(f"  {mark} {self.task} [dim]{time.monotonic() - self.task_start:.1f} s[/]",
                               highlight=False)
        self.task = None

    def stop(self):
        self.finish_task()
        if self.status is not None:
            self.status.stop()


def run_playbook(lab: str, name: str, *, inventory: str, check: bool = False,
                 extravars: dict | None = None, console: Console | None = None,
                 quiet: bool = False, title: str = "") -> RunResult:
    """Run playbook ``name`` (site, apply, verify, destroy) of the topo.lab collection.

    ``inventory`` is a directory or file; ``check`` adds ``--check --diff`` (what ``topo
    plan`` uses). Progress goes to ``console`` (stderr) unless ``quiet``.
    """
    import ansible_runner

    console = console or Console(stderr=True)
    d = labdir.prepare(lab)
    private = os.path.join(d, "runner")
    os.makedirs(private, exist_ok=True)
    progress = _Progress(console, quiet)
    result = RunResult(playbook=name, rc=-1, seconds=0.0, log="")
    task_names: dict[str, str] = {}

    def on_event(event: dict) -> bool:
        kind = event.get("event")
        data = event.get("event_data", {})
        if kind == "playbook_on_task_start":
            label = data.get("task") or data.get("name") or "task"
            role = data.get("role")
            task_names[data.get("task_uuid", "")] = label
            progress.task_started(f"{role}: {label}" if role else label)
        elif kind in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped"):
            progress.host_done(failed=kind in ("runner_on_failed", "runner_on_unreachable")
                               and not data.get("ignore_errors"))
            res = data.get("res") or {}
            host, task = data.get("host", "?"), data.get("task", "?")
            for change in res.get("changes") or []:
                result.changes.append(dict(change, host=host))
            for warning in res.get("warnings") or []:
                if isinstance(warning, str) and warning not in result.warnings:
                    result.warnings.append(warning)
            for check in res.get("results") or []:
                if isinstance(check, dict) and "expect" in check:
                    result.checks.append(dict(check, type="ping", **{"from": host}))
                elif isinstance(check, dict) and isinstance(check.get("item"), dict) \
                        and check["item"].get("type") == "capture":
                    result.checks.append(_capture_result(host, check))
                elif isinstance(check, dict) and isinstance(check.get("item"), dict) \
                        and check["item"].get("type") in STEP_CHECKS:
                    result.checks.append(_step_result(host, check))
            if kind == "runner_on_unreachable":
                result.failures.append(TaskFailure(host, task, res.get("msg", "unreachable"), True))
            elif kind == "runner_on_failed" and not data.get("ignore_errors"):
                result.failures.append(TaskFailure(host, task, str(res.get("msg", "failed"))))
        elif kind == "playbook_on_stats":
            result.changed_tasks = dict(data.get("changed") or {})
        return True

    env = {
        "ANSIBLE_CONFIG": os.path.join(d, "ansible.cfg"),
        "ANSIBLE_FORKS": str(min(64, max(8, (os.cpu_count() or 2) * 8))),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "PATH": _path_with_python_bin(),
        # ansible-runner drops a result from its event above this many bytes (default
        # 700000); topo reads every change from the results, so never let it drop one.
        "MAX_EVENT_RES": str(256 * 1024 * 1024),
    }
    cmdline = "--check --diff" if check else ""
    ident = time.strftime("%Y%m%d-%H%M%S") + f"-{name}{'-check' if check else ''}-{os.getpid()}"
    started = time.monotonic()
    progress.start(title or f"{name} {lab}")
    # ansible-playbook runs in a session of its own (a pty), so Ctrl-C or SIGTERM reach only
    # topo; they cancel the run, and ansible-runner then kills the playbook's process group.
    stop = {"signal": None}
    handlers = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            handlers[sig] = signal.signal(sig, lambda signum, frame: stop.update(signal=signum))
    try:
        r = ansible_runner.run(
            private_data_dir=private, playbook=labdir.playbook(name), inventory=inventory,
            envvars=env, extravars=extravars or {}, cmdline=cmdline or None, ident=ident,
            quiet=True, event_handler=on_event, rotate_artifacts=5, suppress_env_files=True,
            cancel_callback=lambda: stop["signal"] is not None,
            # how long ansible-runner blocks reading output before it looks at the cancel
            # callback again (default 5 s): Ctrl-C should stop the run at once
            settings={"pexpect_timeout": 0.2},
        )
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        progress.stop()
    if stop["signal"] is not None:
        raise KeyboardInterrupt
    result.seconds = time.monotonic() - started
    result.rc = r.rc if r.rc is not None else -1
    log = os.path.join(d, "logs", f"{ident}.log")
    try:
        shutil.copyfile(os.path.join(private, "artifacts", ident, "stdout"), log)
    except OSError:
        log = os.path.join(private, "artifacts", ident)
    result.log = log
    reported = {c["host"] for c in result.changes}
    unreported = sorted(h for h, n in result.changed_tasks.items() if n and h not in reported)
    if unreported:
        result.failures.append(TaskFailure(", ".join(unreported), name, "tasks changed the lab but their "
                                           f"results carried no change list; see {result.log}"))
    if result.rc != 0 and not result.failures:
        tail = _tail(log)
        result.failures.append(TaskFailure("localhost", name, f"ansible-playbook exited {result.rc}: {tail}"))
    return result


def _capture_result(host: str, res: dict) -> dict:
    """A capture check's result (one loop item of the verify_capture role) as a check row:
    what was expected, how many packets matched of how many, the layer stacks seen."""
    item = res["item"]
    rows = res.get("rows") or []
    stacks: dict[str, int] = {}
    for row in rows:
        key = "/".join(row.get("layers") or []) + (f" (vni {row['vni']})" if row.get("vni") is not None else "")
        stacks[key] = stacks.get(key, 0) + 1
    seen = ", ".join(f"{n} x {k}" for k, n in sorted(stacks.items(), key=lambda kv: -kv[1])[:3])
    return {"type": "capture", "from": host, "on": f"{item['node']}:{item['interface']}",
            "description": item["description"], "expect": item["expect"], "ok": not res.get("failed"),
            "matched": res.get("matched", 0), "total": res.get("total", 0), "seen": seen,
            "path": res.get("path"), "rows": rows[:20],
            **({"msg": res["msg"]} if res.get("failed") else {})}


#: Checks run from the build host, one loop item each (verify_cast, verify_iperf roles).
from ansible_collections.topo.lab.plugins.module_utils.api import STEP_TYPES as STEP_CHECKS  # noqa: E402


def _step_result(host: str, res: dict) -> dict:
    """A cast or iperf3 check's result (one loop item of the topo.lab.cast / topo.lab.iperf
    task) as a check row: {type, name, description, expected, observed, ok, figures,
    details, capture?, msg?}. A module that could not run at all (no result keys) still
    gives a failed row carrying its message."""
    item = res["item"]
    row = {"type": item["type"], "name": item["name"], "from": host, "description": item.get("description", ""),
           "expected": res.get("expected") or "", "observed": res.get("observed") or "",
           "ok": bool(res.get("ok")) and not res.get("failed"), "figures": res.get("figures") or {},
           "details": res.get("details") or {}}
    if res.get("capture"):
        where = item.get("capture") or {}
        row["capture"] = dict(res["capture"], on=f"{where.get('node')}:{where.get('interface')}")
    if res.get("failed") or not row["ok"]:
        row["msg"] = res.get("msg") or "failed"
        if not row["observed"]:
            row["observed"] = row["msg"]
    return row


def _tail(path: str, lines: int = 6) -> str:
    try:
        with open(path, errors="replace") as f:
            text = [ln.rstrip() for ln in f.readlines() if ln.strip()]
        return " | ".join(text[-lines:])
    except OSError:
        return "(no log)"
