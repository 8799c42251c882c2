"""The use cases of topo: what each command does, without how it is shown (DESIGN.md 3).

One function per use case, with typed arguments, returning a result object; the CLI
(:mod:`topo.cli`) only parses arguments and renders these results (tables, or ``--json``
through each result's ``to_json()``). Nothing here prints: progress goes to a
:class:`topo.runner.Progress` and one-line notices (a lab locked by another topo, a capture
starting) to a ``notify(text)`` callback, both passed in.

=============  ==============================================  ======================
use case       what it does                                    returns
=============  ==============================================  ======================
``validate``   load, validate and expand a topology file       :class:`ValidateResult`
``apply``      build or converge a lab, then verify it         :class:`ApplyResult`
``plan``       what apply would change (check mode)            :class:`PlanResult`
``verify``     run an applied lab's checks, write the reports  :class:`VerifyResult`
``show``       nodes, interfaces, addresses and their state    :class:`ShowResult`
``exec_in``    run an argv inside a node                       :class:`ExecResult`
``capture``    tcpdump on a node's interface, summarised       :class:`CaptureResult`
``set_link``   take an interface down or up at runtime          :class:`RuntimeResult`
``impair``     impair an interface at runtime, or clear it     :class:`RuntimeResult`
``destroy``    remove what a lab made (one lab)                :class:`DestroyResult`
``doctor``     what this machine can build                     :class:`DoctorResult`
``build_image`` the node image for docker nodes                 :class:`ImageResult`
``graph``      the drawing of a lab (no root needed)           :class:`GraphResult`
``list_labs``  every lab on this machine and its state         :class:`ListResult`
=============  ==============================================  ======================

The steps apply, plan and verify share run once each here: the lab's lock, the inventory
(:func:`topo.pipeline.inventory_written`), state.json, the apply run, the verify run (check
rows decoded by :mod:`topo.results`) and the reports (:mod:`topo.report`). The
requirements (root, the checks' programs, Docker) are checked before anything is built.

Several build hosts: ``hosts`` (``--hosts INV``) names a build-host inventory (see
:func:`topo.inventory.build_hosts`; default: this machine). Before apply builds anything, every
remote host must answer over SSH (:func:`topo.hosts.require_reachable`, exit 3 naming it);
destroy removes the lab by its markers on every host; the inventory a lab was applied with is
recorded in its state.json (``hosts``), so plan, verify, show, exec and destroy find the lab's
hosts without ``--hosts``.

Errors: :class:`topo.errors.InputError` (bad file, exit 2), :class:`UsageError` (exit 2),
:class:`EnvironmentProblem` (exit 3, naming the fix), :class:`RunFailed` (a playbook run
failed, exit 3, with its log).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Optional

from topo import labdir
from topo.errors import EnvironmentProblem, RunFailed, UsageError

if TYPE_CHECKING:  # the runner (and ansible-runner) load only when a playbook runs
    from topo.runner import Progress

#: A one-line notice for the user (the CLI prints it on stderr); None drops it.
Notify = Optional[Callable[[str], None]]


def _say(notify: Notify, text: str) -> None:
    if notify is not None:
        notify(text)


# --------------------------------------------------------------------------- requirements

def require_root() -> None:
    """EnvironmentProblem unless running as root with iproute2's ``ip`` installed."""
    if os.geteuid() != 0:
        raise EnvironmentProblem("topo needs root to create namespaces and interfaces; run it with sudo")
    if shutil.which("ip") is None:
        raise EnvironmentProblem("the ip command (iproute2) is missing; apt-get install iproute2")


def check_programs() -> dict[str, list[tuple[str, str]]]:
    """Programs the checks run on the build host, by check type: ``{type: [(program, Debian
    package)]}``: none for ``ping`` (topo.lab.ping is its own prober), tcpdump and ping for
    ``capture`` (a ping is its traffic), and for every type of ``api.STEP_TYPES`` iperf3
    (iperf3 checks) or python3 (the casts' agents)."""
    from ansible_collections.topo.lab.plugins.module_utils.api import STEP_TYPES
    programs = {"ping": [], "capture": [("tcpdump", "tcpdump"), ("ping", "iputils-ping")]}
    for t in STEP_TYPES:
        programs[t] = [("iperf3", "iperf3") if t == "iperf3" else ("python3", "python3")]
    return programs


def require_programs(expanded: dict) -> None:
    """EnvironmentProblem, before anything is built, when a program the lab's checks need
    is missing on the build host (:func:`check_programs`; a check with a ``capture`` also
    needs tcpdump)."""
    programs = check_programs()
    needs: dict[str, tuple[str, str]] = {}  # program -> (the check type that needs it, package)
    for c in expanded["checks"]:
        for program, package in programs[c["type"]]:
            needs.setdefault(program, (c["type"], package))
        if c.get("capture"):
            needs.setdefault("tcpdump", ("capture", "tcpdump"))
    for program, (kind, package) in sorted(needs.items()):
        if shutil.which(program) is None:
            raise EnvironmentProblem(f"the lab's {kind} checks need {program}, which is missing; "
                                     f"apt-get install {package} (or apply with --no-verify)")


def require_docker(expanded: dict, table: dict | None = None) -> None:
    """EnvironmentProblem, before anything is built, when the lab has docker nodes on this
    machine and dockerd, the docker CLI (Ansible's docker connection) or a node image is
    missing. ``table``: the build hosts (:func:`_require_hosts`); docker nodes placed on a
    remote one are left to :func:`_require_remote_docker`."""
    from topo.inventory import is_remote, node_build_host

    def remote(node):
        host = node_build_host(node, table) if table else None
        return host in table and is_remote(table[host]) if host else False

    docker = [name for name, node in expanded["nodes"].items() if node["kind"] == "docker" and not remote(node)]
    if not docker:
        return
    images = sorted({expanded["nodes"][name]["container"]["image"] for name in docker})
    from topo.image import DEFAULT_IMAGE, docker_client, image_present
    try:
        client = docker_client(timeout=30)
    except EnvironmentProblem as exc:
        raise EnvironmentProblem(f"the lab has {len(docker)} docker nodes ({', '.join(docker[:3])}"
                                 f"{', ...' if len(docker) > 3 else ''}), but {exc}") from None
    missing = [i for i in images if not image_present(client, i)]
    if missing:
        hint = ("build it: topo image build --offline (from Debian packages; about a minute), or "
                "topo image build where a registry is reachable") if DEFAULT_IMAGE in missing else \
            "pull or build it first"
        raise EnvironmentProblem(f"image {', '.join(missing)} is not in the local image store; {hint}")
    if shutil.which("docker") is None:
        raise EnvironmentProblem("the docker command is missing; Ansible reaches docker nodes with it "
                                 "(community.docker's docker connection): apt-get install docker.io")


def _compile(file: str, hosts: str | None = None, placed: bool = False, raw=None):
    """``file`` loaded, validated and expanded, keeping the last apply's allocations. With
    ``placed``, nodes are placed on the build hosts of ``hosts`` (an inventory path), or of
    the inventory the lab's last apply recorded; without, the file alone decides (one host).
    ``raw``: the file already loaded (see :func:`_started_early`)."""
    from topo.pipeline import compile_file

    def build_hosts_of(lab: str) -> dict | None:
        from topo.hosts import with_underlay_mtus
        from topo.inventory import build_hosts
        inv = _hosts_file(lab, hosts)
        return with_underlay_mtus(build_hosts(inv)) if inv else None

    return compile_file(file, sticky=True, hosts=build_hosts_of if placed else None, raw=raw)


# --------------------------------------------------------------------------- results

@dataclass
class CheckSummary:
    """How many checks ran, passed and failed."""

    total: int
    passed: int
    failed: int

    def to_json(self) -> dict:
        return {"total": self.total, "passed": self.passed, "failed": self.failed}


@dataclass
class ValidateResult:
    """A valid topology: ``expanded`` is the expanded lab (see :mod:`topo.expand`)."""

    lab: str
    file: str
    expanded: dict

    @property
    def warnings(self) -> list[str]:
        """What is built anyway but will not behave as a user may expect (``file:line: field: message``)."""
        return self.expanded.get("warnings", [])

    def to_json(self) -> dict:
        return {"lab": self.lab, "file": self.file, "expanded": self.expanded}


@dataclass
class ApplyResult:
    """An apply: ``changes`` (each ``{resource, action: create|fix|remove, name, detail?,
    host}``), the run's ``seconds``, its ``log``, the lab directory and inventory paths; with
    verification, ``checks`` (the summary), ``check_results`` (check rows, see
    :mod:`topo.results`) and ``reports`` (see :func:`topo.report.write`), else None."""

    lab: str
    file: str
    changes: list[dict]
    seconds: float
    log: str
    lab_dir: str
    inventory: str
    checks: CheckSummary | None = None
    check_results: list[dict] | None = None
    reports: dict | None = None
    #: the expansion's warnings (see :attr:`ValidateResult.warnings`)
    warnings: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True when a check failed."""
        return bool(self.checks and self.checks.failed)

    def to_json(self) -> dict:
        data = {"lab": self.lab, "file": self.file, "changed": len(self.changes), "changes": self.changes,
                "seconds": round(self.seconds, 2), "log": self.log, "lab_dir": self.lab_dir,
                "inventory": self.inventory, "warnings": self.warnings}
        if self.checks is not None:
            data.update(checks=self.checks.to_json(), check_results=self.check_results, reports=self.reports)
        return data


@dataclass
class PlanResult:
    """What apply would change, as ``changes`` (shape of :class:`ApplyResult`'s)."""

    lab: str
    file: str
    changes: list[dict]
    #: the expansion's warnings (see :attr:`ValidateResult.warnings`)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"lab": self.lab, "file": self.file, "changes": self.changes, "count": len(self.changes),
                "warnings": self.warnings}


@dataclass
class VerifyResult:
    """A verify run: the summary, the check rows, the run's log and the reports' paths."""

    lab: str
    file: str
    checks: CheckSummary
    check_results: list[dict]
    log: str
    reports: dict

    @property
    def failed(self) -> bool:
        return bool(self.checks.failed)

    def to_json(self) -> dict:
        return {"lab": self.lab, "checks": self.checks.to_json(), "check_results": self.check_results,
                "log": self.log, "reports": self.reports}


@dataclass
class ShowResult:
    """The kernel's view of each node (see :func:`topo.show.observe`)."""

    lab: str
    nodes: list[dict]

    def to_json(self) -> dict:
        return {"lab": self.lab, "nodes": self.nodes}


@dataclass
class ExecResult:
    """A command run in a node: its exit code, and its output when it was captured (None
    when it went to the terminal)."""

    node: str
    argv: list[str]
    rc: int
    stdout: str | None = None
    stderr: str | None = None

    def to_json(self) -> dict:
        return {"node": self.node, "argv": self.argv, "rc": self.rc, "stdout": self.stdout, "stderr": self.stderr}


@dataclass
class CaptureResult:
    """A capture: the pcap's ``path`` and one row per packet (see ``api.summarize_pcap``)."""

    lab: str
    on: str
    path: str
    rows: list[dict]

    def to_json(self) -> dict:
        return {"lab": self.lab, "on": self.on, "path": self.path, "packets": len(self.rows), "rows": self.rows}


@dataclass
class RuntimeResult:
    """A runtime change of an applied lab (``topo link``, ``topo impair``): the interface
    (``on``, ``NODE:IFACE``), what was asked (``what``: ``down``, ``up``, ``rate 1000000
    bit/s``, ``clear``), the modules' ``changes`` (shape of :class:`ApplyResult`'s; empty when
    the kernel already was so), the run's ``seconds`` and ``log``."""

    lab: str
    file: str
    on: str
    what: str
    changes: list[dict]
    seconds: float
    log: str

    def to_json(self) -> dict:
        return {"lab": self.lab, "file": self.file, "on": self.on, "what": self.what, "changed": len(self.changes),
                "changes": self.changes, "seconds": round(self.seconds, 2), "log": self.log}


@dataclass
class DestroyResult:
    """One destroyed lab: what was removed, by resource kind (``netns``, ``container``, ...:
    names), the run's seconds and the modules' warnings."""

    lab: str
    removed: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"lab": self.lab, "removed": self.removed.get("netns", []),
                "containers": self.removed.get("container", []), "seconds": round(self.seconds, 2),
                "warnings": self.warnings}


@dataclass
class DoctorResult:
    """The doctor's findings (see :class:`topo.doctor.Finding`); ``ok`` when none failed."""

    findings: list

    @property
    def failed(self) -> list:
        return [f for f in self.findings if f.status == "fail"]

    def to_json(self) -> dict:
        return {"findings": [f.as_dict() for f in self.findings], "ok": not self.failed}


@dataclass
class ImageResult:
    """A built node image: name, ID, size in MB, build seconds, method (Dockerfile or
    debootstrap)."""

    image: str
    id: str
    size_mb: float
    seconds: float
    method: str

    def to_json(self) -> dict:
        return {"image": self.image, "id": self.id, "size_mb": self.size_mb, "seconds": self.seconds,
                "method": self.method}


@dataclass
class GraphResult:
    """A drawing of a lab: written to ``path`` (format by its suffix), or, without a path,
    its Graphviz DOT source in ``dot``."""

    lab: str
    file: str
    path: str | None = None
    dot: str | None = None

    def to_json(self) -> dict:
        return {"lab": self.lab, "file": self.file, **({"path": self.path} if self.path else {"dot": self.dot})}


@dataclass
class LabEntry:
    """One lab found on this machine (``topo list``).

    ``state``: ``up`` (everything its last apply recorded exists), ``partial`` (some of it
    is missing: ``missing`` names what), ``down`` (a lab directory, nothing of it exists),
    ``orphan`` (namespaces or containers marked as the lab's, no lab directory: a crashed
    or half-destroyed lab; ``topo destroy --lab NAME`` cleans it). ``namespaces`` and
    ``containers`` count what exists now (``containers`` None when no dockerd answers);
    ``file`` is the topology of the last apply, ``applied`` its time (ISO 8601), both None
    when unknown."""

    lab: str
    state: str
    namespaces: int
    containers: int | None
    file: str | None
    applied: str | None
    missing: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"lab": self.lab, "state": self.state, "namespaces": self.namespaces, "containers": self.containers,
                "file": self.file, "applied": self.applied, "missing": self.missing}


@dataclass
class ListResult:
    """Every lab on this machine, by name."""

    labs: list[LabEntry]

    def to_json(self) -> dict:
        return {"labs": [entry.to_json() for entry in self.labs]}


# --------------------------------------------------------------------------- shared steps

def _hosts_file(lab: str, hosts: str | None) -> str | None:
    """The build-host inventory of ``lab``: ``hosts`` when given, else the one its last apply
    recorded (state.json), else None (this machine)."""
    return os.path.abspath(hosts) if hosts else labdir.read_state(lab).get("hosts")


def _remote_host(c, node: dict, hosts: str | None) -> tuple[str, dict] | None:
    """``(name, vars)`` of the remote build host of ``node``, or None when it is local."""
    from topo.inventory import build_hosts, is_remote, node_build_host
    inv = _hosts_file(c.lab, hosts)
    if inv is None:
        return None
    table = build_hosts(inv)
    name = node_build_host(node, table)
    return (name, table[name]) if name in table and is_remote(table[name]) else None


def _build(run, inventory: str, *, progress: Progress | None, title: str, started=None):
    """``run`` (a :class:`topo.runner.PlaybookRun` of the apply playbook, in check mode for a
    plan) on ``inventory``; RunFailed when it failed. ``started``: see
    :meth:`topo.runner.PlaybookRun.run`."""
    result = run.run(inventory, progress=progress, title=title, started=started)
    if not result.ok:
        _raise_run_failure(result)
    return result


def _raise_run_failure(result) -> None:
    text = "; ".join(f"{f.host}: {f.task}: {f.message}" for f in result.failures)
    raise RunFailed(f"the {result.playbook} run failed: {text}", result.log)


#: The name of the play of playbooks/verify.yml (the checks), by which one run of site.yml is
#: split into the apply's result and the checks' (tests/unit/test_usecases.py reads it there).
CHECKS_PLAY = "Checks"
#: The parts of a run of site.yml (:class:`topo.runner.PlaybookRun`'s ``parts``).
SITE_PARTS = {CHECKS_PLAY: "verify"}


@contextmanager
def _started_early(file: str, name: str, *, check: bool = False, parts: dict[str, str] | None = None):
    """``(raw, playbook)``: ``file`` loaded (:func:`topo.load.load`; InputError as compiling
    it would raise), and ``playbook(lab)``, the :class:`topo.runner.PlaybookRun` of playbook
    ``name`` (``check``, ``parts``) on lab ``lab``.

    The run of the lab the loaded file names is started here, before the file is validated
    and expanded, so that Ansible imports while topo's front end works (a new 50-node star
    builds in 0.35 s less on this project's 2-core build host); ``playbook`` gives it, or
    starts one for another name (a lab name the model does not take as the file gives it).
    Not started early: a file that gives no valid lab name, or topo not run as root (its lab
    directories are root's; the use case says so). A run not run when the body ends is
    cancelled, and what was made for it is removed (:func:`_remove_made`): a refused file or
    a failed requirement leaves nothing behind."""
    from topo.load import load
    from topo.runner import PlaybookRun

    raw = load(file)
    lab = raw.lab_name if os.geteuid() == 0 else None
    made = [d for d in (labdir.home(), os.path.dirname(labdir.lab_dir(lab)), labdir.lab_dir(lab))
            if not os.path.isdir(d)] if lab is not None else []
    early = None
    if lab is not None:
        try:
            early = PlaybookRun(lab, name, check=check, parts=parts)
        except OSError:  # the lab directory cannot be made: the run proper says why, when it starts
            _remove_made(lab, made)

    def playbook(of: str) -> PlaybookRun:
        return early if early is not None and early.lab == of else PlaybookRun(of, name, check=check, parts=parts)

    try:
        yield raw, playbook
    finally:
        if early is not None and not early.ran:
            early.cancel()
            _remove_made(lab, made)


def _remove_made(lab: str, made: list[str]) -> None:
    """Remove the directories in ``made`` (``TOPO_HOME``, its ``labs/``, the lab's directory:
    those a run started early made, shallowest first) once the run was cancelled: the lab's
    directory unless it holds a state.json or another run's artifacts (another topo started
    on the same lab meanwhile), then the others when they are empty."""
    d = labdir.lab_dir(lab)
    runs = os.path.join(d, "runner", "artifacts")
    if d in made and not labdir.read_state(lab) and not (os.path.isdir(runs) and os.listdir(runs)):
        labdir.remove(lab)
    for path in reversed(made):
        try:
            os.rmdir(path)
        except OSError:  # not empty, or gone
            pass


def _build_and_verify(run, inventory: str, progress: Progress | None, started=None):
    """Apply, then verify, in one run of the site playbook (apply.yml's play, then
    verify.yml's; one ansible-playbook start-up instead of two): ``run`` is its
    :class:`topo.runner.PlaybookRun` (:data:`SITE_PARTS`). ``(the apply's RunResult, check
    rows, log)``. RunFailed as :func:`_build` when the apply failed (the checks of the hosts
    it failed on did not run), and as :func:`_verify` when the checks could not."""
    result = run.run(inventory, progress=progress, title=f"applying {run.lab}", started=started)
    if not result.ok:
        _raise_run_failure(result)
    rows, log = _check_rows(result.parts["verify"])
    return result, rows, log


def _verify(run, inventory: str, progress: Progress | None, started=None) -> tuple[list[dict], str]:
    """``run`` (a :class:`topo.runner.PlaybookRun` of the verify playbook) on ``inventory``:
    ``(check rows, log)``. A failure that is not a check result (a host with no check rows
    failed) is RunFailed: verification could not run."""
    return _check_rows(run.run(inventory, progress=progress, title=f"verifying {run.lab}", started=started))


def _check_rows(ver) -> tuple[list[dict], str]:
    """The check rows of a verify run's result ``ver`` and its log; RunFailed for a failure
    that is not a check result (a host with no check rows failed)."""
    from topo.results import check_rows
    rows = check_rows(ver.check_results)
    hosts_with_checks = {r["from"] for r in rows}  # a capture check's "from" is the build host
    other = [f for f in ver.failures if f.host not in hosts_with_checks]
    if other:
        raise RunFailed("verification could not run: " + "; ".join(f"{f.host}: {f.message}" for f in other),
                        ver.log)
    return rows, ver.log


def _draw(c):
    """``(start, drawing)`` for the lab's picture in report.md: ``start()`` (once; later
    calls do nothing) starts drawing it in a thread (topo.report.draw), meant for when
    ansible-playbook was given the inventory (PlaybookRun.run's ``started``), so that the
    drawing's imports and Graphviz run while the playbook runs, not before;
    ``drawing`` is what :func:`_reports` takes (it starts the drawing if the run never did)."""
    waits: list = []

    def start() -> None:
        if not waits:
            from topo import report
            waits.append(report.draw(c.expanded, labdir.lab_dir(c.lab)))

    def drawing():
        start()
        return waits[0]()
    return start, drawing


def _both(first, then):
    """A ``started`` callback calling ``first()``, then ``then()``."""
    def started() -> None:
        first()
        then()
    return started


def _reports(c, rows: list[dict], drawing=None) -> tuple[CheckSummary, dict]:
    """The summary of ``rows`` and the reports written into the lab directory (``drawing``:
    the picture, from :func:`_draw`)."""
    from topo import report
    from topo.results import summary
    s = summary(rows)
    return CheckSummary(**s), report.write(c.lab, labdir.lab_dir(c.lab), c.file, rows, s, c.expanded, drawing)


# --------------------------------------------------------------------------- use cases

def validate(file: str) -> ValidateResult:
    """Load, validate and expand ``file`` (no root needed); InputError naming every problem."""
    c = _compile(file)
    return ValidateResult(c.lab, c.file, c.expanded)


def graph(file: str, output: str | None = None) -> GraphResult:
    """Draw the lab of ``file`` (see :mod:`topo.graph`) into ``output`` (.svg, .png, .dot,
    .mmd or .html), or return its DOT source when ``output`` is None. UsageError (exit 2) for
    another suffix; EnvironmentProblem (exit 3) when an image is asked and Graphviz's
    ``dot`` is missing."""
    from topo import graph as drawing
    c = _compile(file)
    if output is None:
        return GraphResult(c.lab, c.file, dot=drawing.dot_source(c.expanded))
    return GraphResult(c.lab, c.file, path=drawing.render(c.expanded, output))


def list_labs(hosts: str | None = None) -> ListResult:
    """Every lab on this machine, found from three sources, whether or not its topology file
    still exists: the namespaces whose ``lo`` carries a lab's marker, the containers
    labelled ``topo.lab``, and the lab directories (with the state.json of the last apply).
    With ``hosts`` (a build-host inventory), the marked namespaces of every remote build host
    count too (:func:`topo.hosts.lab_namespaces_remote`; EnvironmentProblem naming a host
    that does not answer). Needs root (it enters every namespace)."""
    from ansible_collections.topo.lab.plugins.module_utils.api import lab_namespaces
    from topo.show import lab_containers
    require_root()
    namespaces, containers = lab_namespaces(), lab_containers()
    present = set(namespaces) | set(containers or {})
    if hosts:
        from topo.hosts import lab_namespaces_remote
        from topo.inventory import build_hosts
        remote = lab_namespaces_remote(build_hosts(hosts))  # {"host:namespace": lab}
        namespaces.update(remote)
        present |= {key.split(":", 1)[1] for key in remote}
    labs = sorted(set(labdir.known_labs()) | set(namespaces.values()) | set((containers or {}).values()))
    entries = []
    for lab in labs:
        state = labdir.read_state(lab)
        mine = sorted(n for n, owner in namespaces.items() if owner == lab)
        boxes = None if containers is None else sorted(n for n, owner in containers.items() if owner == lab)
        recorded = list(state.get("namespaces") or []) + list(state.get("containers") or [] if containers is not None
                                                              else [])
        missing = sorted(set(recorded) - present)
        if not os.path.isdir(labdir.lab_dir(lab)):
            status = "orphan"
        elif not mine and not boxes:
            status = "down"
        else:
            status = "partial" if missing else "up"
        entries.append(LabEntry(lab, status, len(mine), None if boxes is None else len(boxes), state.get("source"),
                                state.get("updated"), missing))
    return ListResult(entries)


def _ready(file: str, hosts: str | None, raw, *, programs: bool, remote_docker: bool = False):
    """``(compiled lab, build-host inventory)`` for a playbook run on ``file`` (see
    :func:`_compile`; ``raw``: the file loaded), once what the run needs is there: root, every
    remote build host answering (:func:`_require_hosts`), with ``remote_docker`` the remote
    ones' dockerd and images (:func:`_require_remote_docker`), on this machine dockerd for
    docker nodes and, with ``programs``, the checks' programs. Raises as those do."""
    c = _compile(file, hosts, placed=True, raw=raw)
    require_root()
    inv_hosts = _hosts_file(c.lab, hosts)
    table = _require_hosts(inv_hosts)
    if remote_docker:
        _require_remote_docker(c, table)
    if _any_local(table):
        require_docker(c.expanded, table)
        if programs:
            require_programs(c.expanded)
    return c, inv_hosts


def apply(file: str, *, verify: bool = True, wait: float = 0.0, progress: Progress | None = None,
          notify: Notify = None, hosts: str | None = None) -> ApplyResult:
    """Build or converge the lab ``file`` describes, then (``verify``) run its checks and
    write the reports. Holds the lab's lock throughout (waiting up to ``wait`` seconds for
    another topo), writes the inventory and state.json (source, namespaces, containers, the
    build-host inventory). ``hosts``: the build-host inventory; every remote host must
    answer before anything is built (EnvironmentProblem naming those that do not)."""
    early = dict(name="site", parts=SITE_PARTS) if verify else dict(name="apply")
    with _started_early(file, **early) as (raw, playbook):
        c, inv_hosts = _ready(file, hosts, raw, programs=verify, remote_docker=True)
        from topo.pipeline import inventory_written

        nodes = c.expanded["nodes"].values()
        with labdir.locked(c.lab, wait=wait, notify=notify), inventory_written(c, inv_hosts) as (inv, started):
            labdir.write_state(c.lab, source=os.path.abspath(c.file), hosts=inv_hosts, namespaces=[
                n["netns"] for n in nodes] + [
                b["netns"] for b in c.expanded["bridges"].values() if not b.get("node")], containers=[
                n["netns"] for n in nodes if n["kind"] == "docker"])
            if verify:
                draw, drawing = _draw(c)
                build, rows, _ = _build_and_verify(playbook(c.lab), inv, progress, _both(started, draw))
            else:
                build, rows = _build(playbook(c.lab), inv, progress=progress, title=f"applying {c.lab}",
                                     started=started), None
    result = ApplyResult(c.lab, c.file, build.changes, build.seconds, build.log, labdir.lab_dir(c.lab), inv,
                         warnings=c.expanded.get("warnings", []))
    if rows is not None:
        result.checks, result.reports = _reports(c, rows, drawing)
        result.check_results = rows
    return result


def plan(file: str, *, progress: Progress | None = None, hosts: str | None = None) -> PlanResult:
    """What :func:`apply` would change, from the apply playbook in check mode; nothing is
    changed (the inventory is rewritten, under the lab's lock). ``hosts`` as for apply."""
    with _started_early(file, "apply", check=True) as (raw, playbook):
        c, inv_hosts = _ready(file, hosts, raw, programs=False)
        from topo.pipeline import inventory_written

        with labdir.locked(c.lab), inventory_written(c, inv_hosts) as (inv, started):
            result = _build(playbook(c.lab), inv, progress=progress, title=f"planning {c.lab}", started=started)
    return PlanResult(c.lab, c.file, result.changes, c.expanded.get("warnings", []))


def verify(file: str, *, progress: Progress | None = None, hosts: str | None = None) -> VerifyResult:
    """Run the checks of the applied lab ``file`` describes and write the reports (as
    today, without taking the lab's lock). ``hosts`` as for apply."""
    with _started_early(file, "verify") as (raw, playbook):
        c, inv_hosts = _ready(file, hosts, raw, programs=True)
        from topo.pipeline import inventory_written

        with inventory_written(c, inv_hosts) as (inv, started):
            draw, drawing = _draw(c)
            rows, log = _verify(playbook(c.lab), inv, progress, _both(started, draw))
    summary, reports = _reports(c, rows, drawing)
    return VerifyResult(c.lab, c.file, summary, rows, log, reports)


def show(file: str, hosts: str | None = None) -> ShowResult:
    """The kernel's view of every node of ``file`` (needs root); nodes on a remote build
    host (``hosts``, or the lab's recorded inventory) are read there, over SSH."""
    c = _compile(file, hosts, placed=True)
    require_root()
    from topo.show import observe
    inv = _hosts_file(c.lab, hosts)
    if inv is None:
        return ShowResult(c.lab, observe(c.expanded))
    from topo.hosts import observe_remote
    from topo.inventory import build_hosts
    return ShowResult(c.lab, observe_remote(c.expanded, build_hosts(inv), observe))


def _require_hosts(hosts: str | None) -> dict:
    """The build hosts of inventory ``hosts`` (``{name: vars}``; this machine when None);
    EnvironmentProblem naming every remote one that does not answer over SSH as root."""
    from topo.inventory import build_hosts
    table = build_hosts(hosts)
    if hosts:
        from topo.hosts import require_reachable
        require_reachable(table)
    return table


def _require_remote_docker(c, table: dict) -> None:
    """EnvironmentProblem (exit 3), before anything is built anywhere, naming every remote
    build host that holds docker nodes and whose dockerd does not answer, or lacks one of its
    nodes' images, with the fix (one SSH call per such host, in parallel:
    :func:`topo.doctor.remote_docker_problems`)."""
    nodes, images = _remote_docker_nodes(c, table)
    if not nodes:
        return
    from topo.doctor import remote_docker_problems
    problems = remote_docker_problems(table, images, nodes)
    if problems:
        raise EnvironmentProblem("docker nodes cannot be built, nothing was built: " + "; ".join(problems))


def _remote_docker_nodes(c, table: dict) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``({host: [docker node]}, {host: [image]})`` of the remote build hosts of ``table``
    that the placed lab ``c`` puts docker nodes on (images sorted, without repeats)."""
    from topo.inventory import is_remote, node_build_host
    nodes: dict[str, list[str]] = {}
    images: dict[str, list[str]] = {}
    for name, n in c.expanded["nodes"].items():
        h = node_build_host(n, table)
        if n["kind"] == "docker" and h in table and is_remote(table[h]):
            nodes.setdefault(h, []).append(name)
            images[h] = sorted(set(images.get(h, [])) | {n["container"]["image"]})
    return nodes, images


def _any_local(table: dict) -> bool:
    """True when some build host of ``table`` is this machine (connection local)."""
    from topo.inventory import is_remote
    return any(not is_remote(v) for v in table.values())


def _node(c, name: str) -> dict:
    node = c.expanded["nodes"].get(name)
    if node is None:
        raise UsageError(f"no node {name!r} in {c.file}; nodes: {', '.join(sorted(c.expanded['nodes']))}")
    return node


def _require_node_exists(c, name: str, node: dict) -> None:
    if not os.path.exists(os.path.join("/run/netns", node["netns"])):
        raise EnvironmentProblem(f"node {name} does not exist; run topo apply {c.file} first")


def exec_in(file: str, node: str, argv: list[str], *, capture_output: bool = False,
            tty: bool = False, hosts: str | None = None) -> ExecResult:
    """Run ``argv`` (no shell; a leading ``--`` is dropped) inside ``node`` of ``file``: in
    its namespace, or ``docker exec`` for a docker node. With ``capture_output`` its output
    is returned, else it shares this terminal (``tty`` asks docker for one). A node on a
    remote build host (``hosts``, or the lab's recorded inventory) is reached over SSH
    through that host (:func:`topo.hosts.ssh_argv`)."""
    c = _compile(file, hosts, placed=True)
    require_root()
    spec = _node(c, node)
    argv = argv[1:] if argv[:1] == ["--"] else list(argv)
    if not argv:
        raise UsageError("no command given; example: topo exec FILE NODE -- ip -br addr")
    from ansible_collections.topo.lab.plugins.module_utils.api import node_argv
    full = node_argv(spec["netns"], spec["kind"], argv, interactive=True, tty=tty)
    remote = _remote_host(c, spec, hosts)
    if remote is not None:
        from topo.hosts import ssh_argv
        full = ssh_argv(*remote, full, tty=tty)
    else:
        _require_node_exists(c, node, spec)
    if capture_output:
        proc = subprocess.run(full, capture_output=True, text=True)
        return ExecResult(node, argv, proc.returncode, proc.stdout, proc.stderr)
    return ExecResult(node, argv, subprocess.call(full))


def capture(file: str, on: str, *, count: int = 50, duration: float = 10.0, bpf: str | None = None,
            notify: Notify = None, hosts: str | None = None) -> CaptureResult:
    """tcpdump on ``on`` (``NODE:IFACE``, IFACE may be ``lo`` or ``any``) inside the node's
    namespace until ``count`` packets or ``duration`` seconds (or Ctrl-C); the pcap is kept
    in the lab directory's ``captures/`` and summarised one row per packet. A node on a
    remote build host (``hosts``, or the lab's recorded inventory) is captured there: that
    host's tcpdump over SSH (as root, or behind sudo with ``ansible_become``), the pcap
    streamed back into this machine's lab directory."""
    c = _compile(file, hosts, placed=True)
    require_root()
    node_name, ifname, node = _node_interface(c, on, also=("lo", "any"))
    if count < 1 or duration <= 0:
        raise UsageError("--count must be at least 1 and --duration positive")
    remote = _remote_host(c, node, hosts)
    if remote is None:
        if shutil.which("tcpdump") is None:
            raise EnvironmentProblem("topo capture needs tcpdump; apt-get install tcpdump")
        _require_node_exists(c, node_name, node)
    directory = os.path.join(labdir.lab_dir(c.lab), "captures")
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, f"{node_name}-{ifname}-{time.strftime('%Y%m%d-%H%M%S')}.pcap")
    where = f" on build host {remote[0]}" if remote else ""
    _say(notify, f"capturing on {node_name}:{ifname}{where} ({count} packets or {duration:g} s; Ctrl-C stops) ...")
    from ansible_collections.topo.lab.plugins.module_utils import api
    stderr = api.capture(node["netns"], ifname, path, count, duration, bpf,
                         ssh={"name": remote[0], **remote[1]} if remote else None)
    if not os.path.exists(path):
        hint = (f" (is the lab applied there, and tcpdump installed on {remote[0]}? apt-get install tcpdump)"
                if remote else "")
        raise UsageError(f"tcpdump could not capture on {node_name}:{ifname}{where}: {stderr.strip()[-300:]}{hint}")
    return CaptureResult(c.lab, on, path, api.summarize_pcap(path))


def _node_interface(c, on: str, also: tuple[str, ...] = ()) -> tuple[str, str, dict]:
    """``(node name, interface, expanded node)`` of ``on`` (``NODE:IFACE``) in compiled lab
    ``c``; ``also``: interface names allowed besides the node's declared ones (``lo``). UsageError
    (exit 2) naming what is wrong and listing what exists: the nodes, or the node's interfaces."""
    node_name, sep, ifname = on.partition(":")
    node = c.expanded["nodes"].get(node_name)
    if not sep or node is None:
        what = f"no node {node_name!r}" if sep else "not NODE:IFACE"
        raise UsageError(f"{on!r}: {what} in {c.file}; nodes: {', '.join(sorted(c.expanded['nodes']))}")
    known = [i["ifname"] for i in node["interfaces"]] + list(also)
    if ifname not in known:
        raise UsageError(f"{on!r}: node {node_name} has no interface {ifname!r}; it has: "
                         f"{', '.join(known) or 'none'}")
    return node_name, ifname, node


def _runtime(file: str, on: str, what: str, key: str, item: dict, *, hosts: str | None, wait: float,
             progress: Progress | None, notify: Notify) -> RuntimeResult:
    """Run playbooks/runtime.yml on the applied lab of ``file`` for one interface ``on``:
    ``key`` (``topo_runtime_links`` or ``topo_runtime_impairments``) gets ``{build host:
    [item + netns, ifname]}``. Under the lab's lock (waiting ``wait`` seconds); UsageError for
    an unknown node or interface, EnvironmentProblem when the lab is not applied."""
    c = _compile(file, hosts, placed=True)
    node_name, ifname, node = _node_interface(c, on)
    require_root()
    inv_hosts = _hosts_file(c.lab, hosts)
    table = _require_hosts(inv_hosts)
    from topo.inventory import node_build_host
    host = node_build_host(node, table)
    applied = labdir.read_state(c.lab)
    if not applied or (_remote_host(c, node, hosts) is None
                       and not os.path.exists(os.path.join("/run/netns", node["netns"]))):
        raise EnvironmentProblem(f"lab {c.lab} is not applied (node {node_name} does not exist); "
                                 f"run topo apply {c.file} first")
    from topo.pipeline import inventory_written
    from topo.runner import run_playbook
    with labdir.locked(c.lab, wait=wait, notify=notify), inventory_written(c, inv_hosts) as (inv, started):
        result = run_playbook(c.lab, "runtime", inventory=inv, progress=progress, title=f"{on} {what}",
                              extravars={key: {host: [dict(item, netns=node["netns"], ifname=ifname)]}},
                              started=started)
    if not result.ok:
        _raise_run_failure(result)
    return RuntimeResult(c.lab, c.file, on, what, result.changes, result.seconds, result.log)


def set_link(file: str, on: str, state: str, *, hosts: str | None = None, wait: float = 0.0,
             progress: Progress | None = None, notify: Notify = None) -> RuntimeResult:
    """Set interface ``on`` (``NODE:IFACE``) of the applied lab ``file`` ``down`` or ``up``,
    at once, on its build host (topo.lab.link through playbooks/runtime.yml). Setting one
    end of a veth down takes the link down both ways. The file is unchanged: ``topo plan``
    lists the interface as a fix (``up False -> True``), ``topo show`` as ``down``, and the
    next apply sets it up again. UsageError (exit 2) for another state, an unknown node or
    interface; EnvironmentProblem (exit 3) when the lab is not applied."""
    if state not in ("up", "down"):
        raise UsageError(f"{state!r} is not a link state; say down or up")
    return _runtime(file, on, state, "topo_runtime_links", {"state": state}, hosts=hosts, wait=wait,
                    progress=progress, notify=notify)


def runtime_impairment(delay: float | None = None, jitter: float | None = None, loss: float | None = None,
                       rate: str | int | None = None, clear: bool = False) -> dict:
    """The impairment ``topo impair`` sets, as topo.lab.impair takes it: ``{delay, jitter,
    loss, rate}`` (ms, ms, percent, bit/s; None unset), validated as a link's ``impair:`` is
    (:class:`topo.model.Impairment`: ``rate`` may be ``20mbit``; jitter needs a delay);
    ``clear`` gives all None (topo's qdisc removed). UsageError (exit 2) for nothing asked,
    ``clear`` with values, or a value out of range, naming the option."""
    given = {k: v for k, v in (("delay", delay), ("jitter", jitter), ("loss", loss), ("rate", rate))
             if v is not None}
    if clear:
        if given:
            raise UsageError(f"--clear removes the impairment; it takes no --{', --'.join(given)}")
        return {"delay": None, "jitter": None, "loss": None, "rate": None}
    if not given:
        raise UsageError("say what to impair: --delay MS, --jitter MS, --loss PCT, --rate RATE (or --clear)")
    from pydantic import ValidationError
    from topo.model import Impairment
    try:
        imp = Impairment.model_validate(given)
    except ValidationError as exc:
        problems = []
        for e in exc.errors():
            where, msg = ".".join(str(p) for p in e["loc"]), e["msg"].removeprefix("Value error, ")
            problems.append(f"--{where}: {msg}" if where else msg)
        raise UsageError("; ".join(problems)) from None
    return imp.model_dump()


def impair(file: str, on: str, *, delay: float | None = None, jitter: float | None = None,
           loss: float | None = None, rate: str | int | None = None, clear: bool = False,
           hosts: str | None = None, wait: float = 0.0, progress: Progress | None = None,
           notify: Notify = None) -> RuntimeResult:
    """Set the egress impairment of interface ``on`` (``NODE:IFACE``) of the applied lab
    ``file`` to exactly the values given (:func:`runtime_impairment`), or remove it
    (``clear``), at once, on its build host (topo.lab.impair through playbooks/runtime.yml,
    the lab's other interfaces untouched). The file is unchanged: ``topo plan`` lists the
    difference and the next apply restores what the file declares. delay, jitter and loss
    need the kernel's netem (RunFailed naming it when missing), rate its tbf."""
    item = runtime_impairment(delay, jitter, loss, rate, clear)
    from ansible_collections.topo.lab.plugins.module_utils.api import fmt_bps
    units = {"delay": " ms", "jitter": " ms", "loss": " %"}
    what = "clear" if clear else ", ".join(
        f"rate {fmt_bps(v)}" if k == "rate" else f"{k} {v:g}{units[k]}" for k, v in item.items() if v is not None)
    return _runtime(file, on, what, "topo_runtime_impairments", item, hosts=hosts, wait=wait,
                    progress=progress, notify=notify)


def lab_name(path: str) -> str:
    """The lab name of topology ``path`` (its ``name:``, else the file name), read without
    validating or expanding the rest: what destroy needs, so destroying a lab whose file is
    huge, or no longer valid, costs a parse, not an expansion. Checked as the model's
    ``LabName`` is (:attr:`topo.load.RawLab.lab_name`), without importing the model and
    pydantic (0.6 s of a destroy on the 2-core reference machine). Raises InputError (exit
    2) when the file cannot be loaded or the name is not a lab name."""
    from topo.errors import Problems
    from topo.load import LAB_NAME_MAX, load

    raw = load(path)
    if raw.lab_name is not None:
        return raw.lab_name
    problems = Problems(raw.file)
    problems.add(raw.line_of(("name",)), "name", f"{raw.name!r} is not a lab name (letters, digits, - and _, "
                                                 f"starting with a letter, at most {LAB_NAME_MAX} characters)")
    problems.gate("validate")
    raise AssertionError("unreachable: Problems.gate raises")


def labs_to_destroy(file: str | None = None, lab: str | None = None, all_labs: bool = False) -> list[str]:
    """The labs ``topo destroy`` names: the lab of ``file``, the lab called ``lab``, or
    (``all_labs``) every lab with a lab directory, a marked namespace or a labelled
    container. Exactly one of the three; UsageError otherwise or for a bad lab name."""
    if sum(bool(x) for x in (file, lab, all_labs)) != 1:
        raise UsageError("name what to destroy: a topology FILE, --lab NAME, or --all")
    if file:
        return [lab_name(file)]
    if lab:
        from ansible_collections.topo.lab.plugins.module_utils.api import NAME_PATTERN  # not topo.model: 0.3 s
        if not re.match(NAME_PATTERN, lab):
            raise UsageError(f"{lab!r} is not a lab name")
        return [lab]
    from ansible_collections.topo.lab.plugins.module_utils.api import labs_in_kernel
    from topo.show import labs_in_docker
    return sorted(set(labdir.known_labs()) | set(labs_in_kernel()) | set(labs_in_docker()))


def destroy(lab: str, *, wait: float = 0.0, progress: Progress | None = None, notify: Notify = None,
            hosts: str | None = None) -> DestroyResult:
    """Remove everything lab ``lab`` made (containers labelled with it, namespaces carrying
    its marker) and its lab directory, under its lock, on every build host of ``hosts`` (or
    of the inventory its last apply recorded; default this machine).

    With build hosts, the destroy playbook runs on each (``topo.lab.lab`` with ``state:
    absent``). On this machine alone (no inventory given or recorded: the default), the same
    removal runs in this process (:func:`_destroy_here`), without ansible-playbook.
    RunFailed (exit 3) when the removal failed on a host."""
    inv_hosts = _hosts_file(lab, hosts)
    with labdir.locked(lab, wait=wait, notify=notify):
        if inv_hosts is None and _only_this_machine():
            changes, seconds, warnings = _destroy_here(lab, progress)
        else:
            from topo.inventory import destroy_inventory
            from topo.runner import run_playbook
            result = run_playbook(lab, "destroy", inventory=destroy_inventory(lab, inv_hosts), progress=progress,
                                  title=f"destroying {lab}")
            if not result.ok:
                _raise_run_failure(result)
            changes, seconds, warnings = result.changes, result.seconds, result.warnings
        removed: dict[str, list[str]] = {}
        for ch in changes:
            if ch["action"] == "remove":
                removed.setdefault(ch["resource"], []).append(ch["name"])
        labdir.remove(lab)
    return DestroyResult(lab, removed, seconds, warnings)


def _only_this_machine() -> bool:
    """True when the default build-host inventory (``inventories/localhost.yml``) names one
    host, reached without SSH: this machine."""
    from topo.inventory import build_hosts, is_remote
    table = build_hosts()
    return len(table) == 1 and not is_remote(next(iter(table.values())))


def _destroy_here(lab: str, progress: Progress | None) -> tuple[list[dict], float, list[str]]:
    """``(changes, seconds, warnings)`` of removing ``lab`` from this machine in this process:
    the collection's ``remove_lab``, the two passes ``topo.lab.lab`` runs with ``state:
    absent`` (containers by label, then namespaces by marker), under the same lab lock.

    Why not ansible-playbook here: the removal itself takes 0.13 s for a 200-node star on the
    2-core reference machine, while ansible-runner, ansible-playbook's start-up, its worker and
    the module's start-up took 2.2 s of the 2.7 s destroy (timed from the playbook's events).
    A remote build host still needs the playbook; ``ansible-playbook destroy.yml`` runs the
    same code in the module.
    RunFailed (exit 3, as when the playbook's task fails) when the kernel or dockerd refuses."""
    from ansible_collections.topo.lab.plugins.module_utils.api import NetnsError, remove_lab

    started = time.monotonic()
    if progress:
        progress.start(f"destroying {lab}")
    try:
        result = remove_lab(lab)
    except (NetnsError, OSError, ValueError) as exc:
        raise RunFailed(f"the destroy run failed: localhost: {exc}")
    finally:
        if progress:
            progress.stop()
    return result["changes"], time.monotonic() - started, list(result.get("warnings") or [])


def doctor(file: str | None = None, hosts: str | None = None) -> DoctorResult:
    """Every doctor check; with ``file``, what its docker nodes need is required (a missing
    dockerd or image fails rather than warns). With ``hosts`` (a build-host inventory),
    each of its remote hosts is checked too (:func:`topo.doctor.host_checks`), and with
    ``file`` as well, the lab is placed on them and each remote host holding docker nodes is
    asked for its dockerd and their images (:func:`topo.doctor.docker_host_checks`); those
    nodes then need nothing of this machine's dockerd."""
    from topo.doctor import docker_host_checks, host_checks, run_checks
    from topo.inventory import build_hosts
    table = build_hosts(hosts) if hosts else {}
    images, remote_images = None, {}
    if file:
        c = _compile(file, hosts, placed=bool(hosts))
        remote_nodes, remote_images = _remote_docker_nodes(c, table)
        elsewhere = {n for names in remote_nodes.values() for n in names}
        images = sorted({n["container"]["image"] for name, n in c.expanded["nodes"].items()
                         if n["kind"] == "docker" and name not in elsewhere})
    findings = run_checks(images or None, bool(images))
    if hosts:
        findings += host_checks(table)
        findings += docker_host_checks(table, remote_images)
    return DoctorResult(findings)


def build_image(tag: str | None = None, *, offline: bool = False, mirror: str | None = None,
                notify: Notify = None, kind: str = "node") -> ImageResult:
    """Build the node image ``tag`` (default ``topo.model.DEFAULT_IMAGE``), or with ``kind``
    ``host`` the simulated build host's (default ``topo.image.HOST_IMAGE``), from the shipped
    Dockerfile or (``offline``) from Debian packages; ``notify`` gets one line per step."""
    require_root()
    from topo import image
    default = image.HOST_IMAGE if kind == "host" else image.DEFAULT_IMAGE
    result = image.build(tag or default, offline=offline, mirror=mirror, kind=kind,
                         say=lambda line: _say(notify, line))
    return ImageResult(**result)
