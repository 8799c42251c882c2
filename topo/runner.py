"""Phase 5, run: playbooks through ansible-runner, its event stream turned into progress.

:func:`run_playbook` runs one of the collection's playbooks against a lab's inventory and
returns a :class:`RunResult`: every change the modules reported (``changes`` in their
results), the warnings, the failures, the raw results of the check modules (decoded into
check rows by :mod:`topo.results`), and the path of the full log, kept in
``<lab dir>/logs/``.

:class:`EventDecoder` is the part that reads ansible-runner's events (dicts with ``event``
and ``event_data``); it needs no playbook run, so it is tested with recorded events. Progress
goes to a :class:`Progress` the caller passes (the CLI draws it with rich); this module
prints nothing.
"""

from __future__ import annotations

import itertools
import json
import os
import shlex
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from topo import labdir
from topo.results import CHECK_MODULES, ModuleResult


@dataclass
class TaskFailure:
    """A task that failed on a host (not ignored), or a host that was unreachable."""

    host: str
    task: str
    message: str
    unreachable: bool = False


@dataclass
class RunResult:
    """What one playbook run did. ``rc`` is ansible-playbook's exit code, ``seconds`` the
    run's wall time, ``log`` the path of its full output."""

    playbook: str
    rc: int
    seconds: float
    log: str
    #: every ``changes`` entry of every module result, each with the ``host`` it ran on
    changes: list[dict] = field(default_factory=list)
    #: raw results of the check modules (``topo.results.CHECK_MODULES``), in event order
    check_results: list[ModuleResult] = field(default_factory=list)
    #: warnings the modules returned (e.g. no dockerd to look for a lab's containers)
    warnings: list[str] = field(default_factory=list)
    failures: list[TaskFailure] = field(default_factory=list)
    #: tasks reported changed per host by the play recap (cross-check of ``changes``)
    changed_tasks: dict[str, int] = field(default_factory=dict)
    #: the results of the plays decoded apart (``run_playbook``'s ``parts``), by part name
    parts: dict[str, RunResult] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.rc == 0 and not self.failures


class Progress:
    """What a run reports while it goes; this base class shows nothing. ``start(title)``
    once, ``task_started(name)`` per task (``role: task``), ``host_done(failed)`` per host
    result, ``stop()`` once at the end (also after an error)."""

    def start(self, title: str) -> None:
        pass

    def task_started(self, name: str) -> None:
        pass

    def host_done(self, failed: bool = False) -> None:
        pass

    def stop(self) -> None:
        pass


#: host result events: the last one of a task on a host (loop items come as runner_item_*)
HOST_EVENTS = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped")


class EventDecoder:
    """Turns ansible-runner events into a :class:`RunResult` and calls into ``progress``.

    ``feed(event)`` takes one event dict as ansible-runner's ``event_handler`` gets it:
    ``{"event": "runner_on_ok", "event_data": {"host", "task", "role", "resolved_action",
    "task_action", "ignore_errors", "res": {...}}}``. It reads the changes and warnings of
    every result, keeps the results of the check modules raw, records failed (not ignored)
    and unreachable hosts, and the recap's changed counts.

    With ``parts`` (``{play name: RunResult}``), the results, changes, warnings and failures
    of the plays so named go to that RunResult instead of ``result`` (the recap stays with
    ``result``); ``started`` then gives the ``time.monotonic()`` each part's play started at.

    With ``events_dir`` (the run's ``artifacts/<ident>/job_events``), ``feed`` writes each
    event there itself, as ``<counter>-<uuid>.json`` with the same JSON ansible-runner would
    write, and returns False so ansible-runner does not: its own writer streams the JSON
    through Python's pure-Python encoder (0.15 s of CPU for the 370 kB result of 2,450
    pings, against 0.015 s for ``json.dumps``, measured on this project's build host).
    """

    def __init__(self, result: RunResult, progress: Progress | None = None, events_dir: str | None = None,
                 parts: dict[str, RunResult] | None = None):
        self.result = result
        self.progress = progress or Progress()
        self.events_dir = events_dir
        self.parts = parts or {}
        self.started: dict[str, float] = {}
        self._current = result  # where the events of the play running now go

    def feed(self, event: dict) -> bool:
        """Decode one event; returns whether ansible-runner should still write it (False
        when this decoder wrote it, see ``events_dir``)."""
        self._decode(event)
        if self.events_dir is None or "uuid" not in event or "counter" not in event:
            return True
        path = os.path.join(self.events_dir, f"{event['counter']}-{event['uuid']}.json")
        try:
            with open(path + ".tmp", "w", encoding="utf-8", opener=_private) as f:
                f.write(json.dumps(event))
            os.replace(path + ".tmp", path)
        except (OSError, TypeError, ValueError):
            return True  # let ansible-runner try (and report) as it would have
        return False

    def _decode(self, event: dict) -> None:
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind == "playbook_on_play_start":
            play = data.get("name") or data.get("play") or ""
            self._current = self.parts.get(play, self.result)
            if play in self.parts:
                self.started.setdefault(play, time.monotonic())
        result = self._current
        if kind == "playbook_on_task_start":
            label = data.get("task") or data.get("name") or "task"
            role = data.get("role")
            self.progress.task_started(f"{role}: {label}" if role else label)
        elif kind in HOST_EVENTS:
            failed = kind in ("runner_on_failed", "runner_on_unreachable") and not data.get("ignore_errors")
            self.progress.host_done(failed=failed)
            res = data.get("res") or {}
            host, task = data.get("host", "?"), data.get("task", "?")
            for change in res.get("changes") or []:
                result.changes.append(dict(change, host=host))
            for warning in res.get("warnings") or []:
                if isinstance(warning, str) and warning not in result.warnings:
                    result.warnings.append(warning)
            module = data.get("resolved_action") or data.get("task_action") or ""
            if module in CHECK_MODULES:
                result.check_results.append(ModuleResult(host, module, res))
            if kind == "runner_on_unreachable":
                result.failures.append(TaskFailure(host, task, res.get("msg", "unreachable"), True))
            elif failed:
                result.failures.append(TaskFailure(host, task, str(res.get("msg", "failed"))))
        elif kind == "playbook_on_stats":
            self.result.changed_tasks = dict(data.get("changed") or {})

    def finish(self) -> RunResult:
        """After the run (``rc`` and ``log`` set): a host the recap counts changed tasks for
        but whose results carried no change list (in any part), or a failed run without a
        failed task, becomes a failure. With parts, a part's ``rc`` is the run's when it has
        failures, else 0; ``result``'s is the run's when it has failures or no part's play
        started (a run that stopped before them), else 0: the checks' plays end with a
        non-zero code when a check failed, which is a check row, not a failed run."""
        result = self.result
        if self.parts:
            for part in self.parts.values():
                part.rc, part.log = (result.rc if part.failures else 0), result.log
            if not result.failures and self.started:
                result.rc = 0
        reported = {c["host"] for r in (result, *self.parts.values()) for c in r.changes}
        unreported = sorted(h for h, n in result.changed_tasks.items() if n and h not in reported)
        if unreported:
            result.failures.append(TaskFailure(", ".join(unreported), result.playbook, "tasks changed the lab but "
                                               f"their results carried no change list; see {result.log}"))
        if result.rc != 0 and not result.failures:
            result.failures.append(TaskFailure("localhost", result.playbook,
                                               f"ansible-playbook exited {result.rc}: {_tail(result.log)}"))
        return result


def _private(path: str, flags: int) -> int:
    """``open`` opener: the file readable by its owner only, as ansible-runner writes events."""
    return os.open(path, flags, 0o600)


def _path_with_python_bin() -> str:
    """PATH with this Python's bin directory first, so the ansible-playbook installed with
    topo runs even from an unactivated virtualenv."""
    return os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "/usr/bin:/bin")])


def _no_close_delay() -> None:
    """Make ptyprocess close a finished playbook's terminal without its 0.1 s pause.

    ptyprocess sleeps ``delayafterclose`` (0.1 s) after closing a child's pty, "to give the
    kernel time to update process status", then kills the child if it still lives.
    ansible-runner closes it only after its loop saw the child exit and read the output to
    its end, so the pause is 0.1 s of every run spent waiting for nothing (cProfile of
    ``topo verify``); a child still alive would still be killed. Set once, in this process,
    on the processes ansible-runner spawns from then on."""
    import ptyprocess

    init = ptyprocess.PtyProcess.__init__
    if getattr(init, "topo_no_close_delay", False):
        return

    def __init__(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.delayafterclose = 0

    __init__.topo_no_close_delay = True
    ptyprocess.PtyProcess.__init__ = __init__


#: counts the PlaybookRuns of this process (their idents differ)
_RUNS = itertools.count()
#: topo.ansible_playbook's file: what ansible-runner starts (see PlaybookRun)
_SHIM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ansible_playbook.py")


def run_playbook(lab: str, name: str, *, inventory: str, check: bool = False,
                 extravars: dict | None = None, progress: Progress | None = None,
                 title: str = "", parts: dict[str, str] | None = None,
                 started: Callable[[], None] | None = None) -> RunResult:
    """Run playbook ``name`` (site, apply, verify, destroy, ...) of the topo.lab collection
    on lab ``lab``: a :class:`PlaybookRun` started and run at once (see there for the
    arguments)."""
    return PlaybookRun(lab, name, check=check, parts=parts).run(
        inventory, extravars=extravars, progress=progress, title=title, started=started)


class PlaybookRun:
    """One run of playbook ``name`` (site, apply, verify, destroy, ...) of the topo.lab
    collection on lab ``lab``, started before its inventory exists.

    Creating it starts ansible-playbook, through ansible-runner in a thread of its own, as
    :mod:`topo.ansible_playbook`: it imports Ansible, then waits. :meth:`run` gives it the
    inventory and waits for the run's :class:`RunResult`; :meth:`cancel` (also leaving it
    as a context manager without running it) ends it unrun. So a use case starts it, then
    loads, validates and expands the file and writes the inventory while Ansible imports
    (0.6 s on this project's 2-core build host), instead of one after the other.

    ``check`` adds ``--check --diff`` (what ``topo plan`` uses). ``parts`` (``{play name:
    part name}``) decodes the plays so named apart: the result's ``parts[part name]`` is a
    RunResult of its own (``playbook`` the part name, ``seconds`` from its play's start), and
    the result's ``seconds`` (from :meth:`run`) ends where the first part began. So one run
    of site.yml gives what an apply run and a verify run gave (one ansible-playbook start-up
    less: about 1 s on this project's 2-core build host).

    The lab directory is prepared (:func:`topo.labdir.prepare`): ansible-runner keeps the
    run's artifacts in its ``runner/`` (with ``gate.json``, the command line the run was
    given), the log is copied to ``logs/``.
    """

    def __init__(self, lab: str, name: str, *, check: bool = False, parts: dict[str, str] | None = None):
        import ansible_runner

        _no_close_delay()
        self.lab, self.name, self._check = lab, name, check
        d = labdir.prepare(lab)
        private = os.path.join(d, "runner")
        self._ident = time.strftime("%Y%m%d-%H%M%S") + f"-{name}{'-check' if check else ''}-{os.getpid()}"
        seq = next(_RUNS)
        if seq:  # not this process's first run: never the artifacts (and gate.json) of an earlier one
            self._ident += f"-{seq}"
        self._artifacts = os.path.join(private, "artifacts", self._ident)
        events_dir = os.path.join(self._artifacts, "job_events")
        os.makedirs(events_dir, exist_ok=True)
        self._gate = os.path.join(self._artifacts, "gate.json")
        self._decoder = EventDecoder(RunResult(playbook=name, rc=-1, seconds=0.0, log=""), None, events_dir,
                                     {play: RunResult(playbook=part, rc=-1, seconds=0.0, log="")
                                      for play, part in (parts or {}).items()})
        # ansible-playbook runs in a session of its own (a pty), so Ctrl-C or SIGTERM reach
        # only topo; they cancel the run (see run): topo kills every process of the run (see
        # _kill_run), then ansible-runner kills the playbook's process group (which alone
        # misses Ansible's workers: each worker calls setsid, so it and its module would
        # live on).
        self._stop: dict = {"signal": None}
        self._others = set(_children().get(os.getpid(), []))  # children of this process not of the run
        self._outcome: dict = {}
        #: whether :meth:`run` or :meth:`cancel` was called
        self.ran = False
        env = {
            "ANSIBLE_CONFIG": os.path.join(d, "ansible.cfg"),
            "ANSIBLE_FORKS": str(min(64, max(8, (os.cpu_count() or 2) * 8))),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_DEPRECATION_WARNINGS": "False",
            "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
            "PATH": _path_with_python_bin(),
            # topo's inventories are directories with a hosts.yml (topo.inventory.write):
            # only the yaml plugin, not the lab's ansible.cfg list (topo.lab.topo, host_list,
            # yaml, ini, auto), whose topo.lab.topo is imported and reads hosts.yml first
            # (about 0.05 s of CPU per run); ansible-playbook by hand in the lab directory
            # keeps the list
            "ANSIBLE_INVENTORY_ENABLED": "yaml",
            # ansible-runner drops a result from its event above this many bytes (default
            # 700000); topo reads every change from the results, so never let it drop one.
            "MAX_EVENT_RES": str(256 * 1024 * 1024),
        }
        kwargs = dict(
            private_data_dir=private, envvars=env, ident=self._ident, quiet=True,
            # ansible-runner's RAW mode: this command line and nothing added; the inventory,
            # extra vars and playbook come through the gate. The script by its path (it
            # imports no topo module), with -P: its directory (topo's) is not put on sys.path
            binary=sys.executable,
            cmdline=f"-P {shlex.quote(_SHIM)} {shlex.quote(self._gate)}",
            event_handler=self._decoder.feed, rotate_artifacts=5, suppress_env_files=True,
            cancel_callback=self._cancelled,
            # how long ansible-runner blocks reading output before it looks at the cancel
            # callback again (default 5 s): Ctrl-C should stop the run at once
            settings={"pexpect_timeout": 0.2},
        )

        def target() -> None:
            try:
                self._outcome["runner"] = ansible_runner.run(**kwargs)
            except BaseException as exc:  # raised again in the thread that waits for it
                self._outcome["error"] = exc

        self._thread = threading.Thread(target=target, name="topo-playbook", daemon=True)
        self._thread.start()

    def _cancelled(self) -> bool:
        """ansible-runner's ``cancel_callback``: whether a signal asked to stop."""
        if self._stop["signal"] is None:
            return False
        _kill_run(self._others)
        return True

    def _open_gate(self, argv: list[str] | None) -> None:
        """Write gate.json whole (see :mod:`topo.ansible_playbook`)."""
        os.makedirs(self._artifacts, exist_ok=True)  # should another topo have removed it (an unapplied lab)
        with open(self._gate + ".tmp", "w") as f:
            json.dump({"argv": argv}, f)
        os.replace(self._gate + ".tmp", self._gate)

    def run(self, inventory: str, *, extravars: dict | None = None, progress: Progress | None = None,
            title: str = "", started: Callable[[], None] | None = None) -> RunResult:
        """Run the playbook on ``inventory`` (a directory or file) with ``extravars``; the
        :class:`RunResult` (``seconds`` from this call). Progress goes to ``progress``
        (nothing when None), starting with ``title``. Ctrl-C or SIGTERM cancel the run and
        raise KeyboardInterrupt. A PlaybookRun runs once (RuntimeError after that).

        ``started`` is called once, in this thread, when ansible-playbook was given the
        inventory: work that may overlap the run starts there (see
        :func:`topo.pipeline.inventory_written`)."""
        if self.ran:
            raise RuntimeError(f"the {self.name} run of lab {self.lab} was already run or cancelled")
        self.ran = True
        began = time.monotonic()
        progress = progress or Progress()
        self._decoder.progress = progress
        argv = (["--check", "--diff"] if self._check else []) + ["-i", inventory]
        if extravars:
            argv += ["-e", json.dumps(extravars)]
        argv.append(labdir.playbook(self.name))
        progress.start(title or f"{self.name} {self.lab}")
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                handlers[sig] = signal.signal(sig, lambda signum, frame: self._stop.update(signal=signum))
        try:
            self._open_gate(argv)
            if started is not None:
                started()
            self._thread.join()
            if "error" in self._outcome:
                raise self._outcome["error"]
        except BaseException:
            _kill_run(self._others)  # a failure in topo's event handler: leave no playbook behind
            raise
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
            progress.stop()
        if self._stop["signal"] is not None:
            raise KeyboardInterrupt
        decoder = self._decoder
        result = decoder.result
        ended = time.monotonic()
        result.seconds = min(decoder.started.values(), default=ended) - began
        for play, part in decoder.parts.items():
            part.seconds = ended - decoder.started.get(play, ended)
        result.parts = {part.playbook: part for part in decoder.parts.values()}
        rc = self._outcome["runner"].rc
        result.rc = rc if rc is not None else -1
        log = os.path.join(labdir.lab_dir(self.lab), "logs", f"{self._ident}.log")
        try:
            shutil.copyfile(os.path.join(self._artifacts, "stdout"), log)
        except OSError:
            log = self._artifacts
        result.log = log
        return decoder.finish()

    def cancel(self) -> None:
        """End the run unrun: ansible-playbook is told not to run (killed if it has not
        ended within 30 s), and the run's artifacts are removed. Nothing once :meth:`run`
        was called."""
        if self.ran:
            return
        self.ran = True
        try:
            self._open_gate(None)
            self._thread.join(timeout=30)
        finally:
            if self._thread.is_alive():
                _kill_run(self._others)
                self._thread.join()
            shutil.rmtree(self._artifacts, ignore_errors=True)

    def __enter__(self) -> PlaybookRun:
        return self

    def __exit__(self, *exc) -> None:
        self.cancel()


def _children() -> dict[int, list[int]]:
    """``{parent PID: [child PIDs]}`` of every process, from ``/proc/<pid>/stat``."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
            children.setdefault(ppid, []).append(int(entry))
    return children


def _run_processes(others: set[int]) -> list[int]:
    """Every process below this one, except the children in ``others`` (those that were
    there before the run) and what is below them; parents first."""
    children, out = _children(), []
    todo = [p for p in children.get(os.getpid(), []) if p not in others]
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo += children.get(p, [])
    return out


def _kill_run(others: set[int]) -> None:
    """SIGKILL every process of the run (below this process, except the children in
    ``others`` that were there before it): ansible-playbook, its workers (each in a session
    of its own, so the playbook's process group does not hold them) and the modules they
    run. They are stopped first (SIGSTOP) and looked for again until no new one appears, so
    none forks a child that escapes; then killed, by PID."""
    stopped: set[int] = set()
    for _ in range(20):
        new = [p for p in _run_processes(others) if p not in stopped]
        if not new:
            break
        for p in new:
            try:
                os.kill(p, signal.SIGSTOP)
            except ProcessLookupError:
                pass
            stopped.add(p)
    for p in stopped:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _tail(path: str, lines: int = 6) -> str:
    try:
        with open(path, errors="replace") as f:
            text = [ln.rstrip() for ln in f.readlines() if ln.strip()]
        return " | ".join(text[-lines:])
    except OSError:
        return "(no log)"
