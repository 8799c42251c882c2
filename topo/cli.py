"""The ``topo`` command line: it parses arguments, calls one use case of
:mod:`topo.usecases` and renders its result (rich tables on stdout, progress on stderr).

Every command takes ``--json`` (one JSON document on stdout, progress on stderr) and exits
0 on success, 1 when a verification failed, 2 on bad input or usage, 3 when the machine
cannot do it (not root, missing program or kernel feature), naming the fix.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter

from typing import TYPE_CHECKING

import topo
from topo import usecases
from topo.errors import EXIT_ENV, EXIT_INPUT, EXIT_OK, EXIT_VERIFY, InputError, TopoError

if TYPE_CHECKING:
    from rich.console import Console


class _Console:
    """A rich Console, made (and rich imported: about 0.1 s) on first use: a command with
    ``--json`` that prints no warning needs none."""

    def __init__(self, **options):
        self._options = options
        self._console = None

    def __getattr__(self, name):
        if self._console is None:
            from rich.console import Console
            self._console = Console(**self._options)
        return getattr(self._console, name)


def Table(*args, **kwargs):  # noqa: N802 (rich's class, imported when a table is drawn)
    """A ``rich.table.Table``."""
    from rich.table import Table as RichTable
    return RichTable(*args, **kwargs)


def escape(text: str) -> str:
    """``text`` with rich's markup escaped (``rich.markup.escape``)."""
    from rich.markup import escape as rich_escape
    return rich_escape(text)


out = _Console(highlight=False, soft_wrap=True, emoji=False)  # IPv6 addresses hold ":a:", ":cd:"
#: Problems go to a pipe or file one per line (grep, CI logs); only a terminal gets them wrapped.
err = _Console(stderr=True, highlight=False, emoji=False, soft_wrap=not sys.stderr.isatty())


def _notice(text: str) -> None:
    """A use case's one-line notice on stderr (its ``notify``); rich is imported only when
    there is one."""
    err.print(text)

MAIN_HELP = """\
topo builds network labs from a topology file, with Ansible, and proves they work.

A topology (YAML, or CSV with one row per link) declares nodes, bridges, links and
tunnels; topo expands it (names, addresses from pools, routes, tunnel MTUs) into an
Ansible inventory and runs the topo.lab playbooks: one network namespace (or, with
kind: docker, one container) per node, veth pairs, bridges, VXLAN/GRE/gretap tunnels,
impairments (delay, jitter, loss, rate), addresses, routes, then the checks: pings,
unicast/broadcast/multicast/anycast casts, iperf3 sweeps, and captures that prove what
crosses a wire, with reports (verify.json, junit.xml, report.md) in the lab directory.
Re-running changes only what differs; destroy removes exactly what topo made.

quick start (as root):
  topo apply examples/clusters.csv     build the lab and verify it
  topo show examples/clusters.csv      nodes, interfaces, addresses, state
  topo exec examples/clusters.csv a-master -- ping -c1 192.18.0.10
  topo destroy examples/clusters.csv   remove it
  topo apply examples/vxlan.yml        a LAN stretched over VXLAN, with a capture check
  topo apply examples/casts.yml        anycast and multicast, proved by what arrives where
  topo image build --offline           the node image, then: topo apply examples/clusters-docker.yml
  topo doctor                          what this machine can build, and the fixes
  topo graph examples/vxlan.yml -o vxlan.svg   a picture of the lab (also .png .mmd .html)
  topo list                            every lab on this machine and its state
  topo link examples/routed.yml r1:eth1 down    fail a link at runtime (topo apply restores it)
  topo impair examples/routed.yml r1:eth1 --rate 1mbit   shape it at runtime (--clear removes)

exit codes: 0 ok, 1 a check failed, 2 bad input or usage, 3 environment problem
lab directories: $TOPO_HOME/labs/<lab> (default /var/lib/topo/labs/<lab>)
"""


#: Commands that take --hosts INV (a build-host inventory).
HOSTS_COMMANDS = ("apply", "plan", "verify", "show", "exec", "destroy", "list", "doctor", "link", "impair",
                  "capture")


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="topo", description=MAIN_HELP, formatter_class=fmt)
    p.add_argument("--version", action="version", version=f"topo {topo.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def cmd(name, help_, description, epilog, file=True):
        sp = sub.add_parser(name, help=help_, description=description, epilog=epilog, formatter_class=fmt)
        if file:
            sp.add_argument("file", metavar="FILE", help="topology file: .yml/.yaml or .csv")
        sp.add_argument("--json", action="store_true", help="print one JSON document on stdout")
        if name in HOSTS_COMMANDS:
            sp.add_argument("--hosts", metavar="INV", default=None,
                            help="build-host inventory (topo_hosts; e.g. inventories/three-hosts.yml); "
                                 "default: this machine, or the inventory of the lab's last apply")
        return sp

    sp = cmd("apply", "build or converge a lab, then verify it",
             "Build the lab FILE describes, or converge an existing one to it: create what is\n"
             "missing, repair what drifted, remove what the lab owns but no longer declares.\n"
             "Then run its checks (ping every node to every address it should reach, or the\n"
             "checks under verify:). Safe to re-run: a lab that matches reports 0 changed.\n"
             "Before building, the kernel is asked for every link type and qdisc the lab uses\n"
             "(vxlan, gre, gretap, netem, tbf); a missing one stops it with exit 3, nothing built.",
             "examples:\n  topo apply examples/clusters.csv\n  topo apply lab.yml --no-verify --json\n"
             "  topo apply lab.yml --hosts inventories/three-hosts.yml   # on build hosts over SSH\n\n"
             "The same apply without this CLI:\n"
             "  ansible-playbook -i $TOPO_HOME/labs/<lab>/inventory topo.lab.site")
    sp.add_argument("--no-verify", action="store_true", help="build only; skip the checks")
    sp.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                    help="if another topo holds this lab, wait this long (default: refuse at once)")
    sp = cmd("plan", "show what apply would change, changing nothing",
             "Compare FILE with the kernel and list what apply would do:\n"
             "  + create   ~ fix (drifted attribute)   - remove (no longer declared)\n"
             "Runs the apply playbook in Ansible check mode; nothing is changed.",
             "example:\n  topo plan examples/routed.yml")
    sp = cmd("verify", "run the lab's checks",
             "Run the checks of an applied lab and report each; exit 1 if any failed.",
             "example:\n  topo verify examples/clusters.csv --json")
    sp = cmd("show", "list nodes, interfaces, addresses and their state",
             "Read the kernel and show, for every node of FILE, its interfaces, addresses and\n"
             "state: up, down, missing, or drift where the kernel differs from the file.",
             "example:\n  topo show examples/clusters.csv")
    sp = cmd("exec", "run a command inside a node",
             "Run CMD inside NODE, as argv (no shell): in its network namespace, or for a docker\n"
             "node inside its container (docker exec). Use -- before CMD.",
             "examples:\n  topo exec examples/clusters.csv a-master -- ip -br addr\n"
             "  topo exec --hosts inventories/three-hosts.yml lab.yml h1 -- ip -br addr   (options before FILE)\n"
             "  topo exec lab.yml h1 -- ping -c3 172.16.0.2")
    sp.add_argument("node", metavar="NODE")
    sp.add_argument("argv", nargs=argparse.REMAINDER, metavar="CMD")
    sp = cmd("capture", "capture packets on a node's interface, keep the pcap, summarise it",
             "Run tcpdump on NODE's interface IFACE (inside the node's namespace) until --count\n"
             "packets were seen or --duration seconds passed, keep the pcap in the lab directory\n"
             "(captures/), and print one row per packet read with scapy: time, source,\n"
             "destination, protocol, length, kind (unicast/broadcast/multicast), and the VXLAN\n"
             "VNI or GRE key of encapsulated packets. Run traffic meanwhile (topo exec, topo verify).",
             "examples:\n  topo capture examples/vxlan.yml r1:eth0 --count 20\n"
             "  topo capture examples/clusters.yml b-m4:eth0 --filter 'udp port 5007' --duration 30")
    sp.add_argument("on", metavar="NODE:IFACE", help="node and interface, e.g. r1:eth0 (or NODE:any)")
    sp.add_argument("--count", type=int, default=50, metavar="N", help="stop after N packets (default 50)")
    sp.add_argument("--duration", type=float, default=10.0, metavar="SECONDS",
                    help="stop after this long at most (default 10)")
    sp.add_argument("--filter", default=None, metavar="BPF", help="tcpdump filter, e.g. 'udp port 4789'")
    def runtime_args(sp):
        """NODE:IFACE and --wait, of topo link and topo impair."""
        sp.add_argument("on", metavar="NODE:IFACE", help="node and interface, e.g. r1:eth1")
        sp.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                        help="if another topo holds this lab, wait this long (default: refuse at once)")

    sp = cmd("link", "take a link down or up at runtime (topo apply restores the file's state)",
             "Set interface IFACE of NODE down or up at once, in the applied lab FILE describes, on\n"
             "the build host that holds it. Down on one end of a link takes the link down both\n"
             "ways (the peer loses its carrier): traffic stops, routes through it go. The file is\n"
             "not changed: topo show lists the interface as down, topo plan as a fix, and the\n"
             "next topo apply sets it up again. To prove what depends on a link in the checks\n"
             "themselves, give a check during: {down: [NODE:IFACE]} instead.",
             "examples:\n  topo link examples/routed.yml r1:eth1 down\n"
             "  topo exec examples/routed.yml h1 -- ping -c2 172.16.1.10   # no longer answers\n"
             "  topo plan examples/routed.yml      # ~ veth ...r1/eth1  up False -> True\n"
             "  topo link examples/routed.yml r1:eth1 up     # or: topo apply examples/routed.yml\n\n"
             "NODE:IFACE names an interface of the file (topo show lists them); an unknown one is\n"
             "refused with what exists (exit 2); a lab not applied yet, with exit 3.")
    runtime_args(sp)
    sp.add_argument("state", choices=["down", "up"], help="down or up")
    sp = cmd("impair", "delay, jitter, loss or rate-limit an interface at runtime (--clear removes)",
             "Set the egress impairment of IFACE of NODE, at once, in the applied lab FILE\n"
             "describes, to exactly the values given (what is not given is unset), or remove it\n"
             "with --clear. Only that interface's egress is shaped (the link's other end keeps its\n"
             "own); the same qdiscs as a link's impair: in the file (netem for delay, jitter and\n"
             "loss; tbf for rate). The file is not changed: topo plan lists the difference, and the\n"
             "next topo apply restores what the file declares (its impair:, or none).",
             "examples:\n  topo impair examples/routed.yml r1:eth1 --rate 1mbit\n"
             "  topo impair examples/routed.yml r1:eth1 --delay 50 --jitter 5 --loss 1\n"
             "  topo plan examples/routed.yml       # - impair ...r1/eth1  no longer declared\n"
             "  topo impair examples/routed.yml r1:eth1 --clear   # or: topo apply examples/routed.yml\n\n"
             "Delay, jitter and loss need the kernel's netem (sch_netem), rate its tbf (sch_tbf);\n"
             "topo doctor says which this machine has.")
    runtime_args(sp)
    sp.add_argument("--delay", type=float, metavar="MS", help="added one-way delay, milliseconds")
    sp.add_argument("--jitter", type=float, metavar="MS",
                    help="random variation of the delay, milliseconds (needs --delay)")
    sp.add_argument("--loss", type=float, metavar="PCT", help="random loss, percent (0 to 100)")
    sp.add_argument("--rate", metavar="RATE", help="rate limit: bits per second, or 500kbit, 20mbit, 1gbit")
    sp.add_argument("--clear", action="store_true", help="remove the interface's impairment")
    sp = cmd("destroy", "remove everything a lab made",
             "Remove every container labelled topo.lab=<lab> and every namespace (with its\n"
             "interfaces, bridges and routes) that carries the lab's ownership marker, and the lab\n"
             "directory. Objects topo did not make are never\n"
             "touched, even with a look-alike name. Works with the topology file gone: --lab NAME.",
             "examples:\n  topo destroy examples/clusters.csv\n  topo destroy --lab clusters\n"
             "  topo destroy --all", file=False)
    sp.add_argument("file", metavar="FILE", nargs="?", help="topology file (or use --lab / --all)")
    sp.add_argument("--lab", metavar="NAME", help="destroy lab NAME without its topology file")
    sp.add_argument("--all", action="store_true", help="destroy every lab that has a lab directory")
    sp.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait for a lab held by another topo")
    sp = cmd("doctor", "check this machine: root, programs, kernel features, Docker, traps",
             "Report what this machine can build: root, the programs checks run (ping, tcpdump,\n"
             "iperf3, docker), kernel link types and qdiscs (vxlan, gre, gretap, netem, tbf, each\n"
             "tried for real in a scratch namespace), dockerd and the node image, and the\n"
             "br_netfilter trap (Docker's FORWARD DROP policy and bridged traffic). Each problem\n"
             "comes with its fix. With FILE, what that lab needs is required; exit 3 if it is missing.",
             "examples:\n  topo doctor\n  topo doctor examples/clusters-docker.yml --json\n"
             "  topo doctor --hosts inventories/three-hosts.yml   # also each build host: reachable, root,\n"
             "                                                   # python, link types, underlay MTU, clock", file=False)
    sp.add_argument("file", metavar="FILE", nargs="?", help="a topology whose needs are required")
    sp = cmd("image", "build the default node image for docker nodes (topo-node)",
             "Build topo-node, the image docker nodes run by default: Debian bookworm with iproute2,\n"
             "iputils-ping, iperf3, python3 and tcpdump. From the Dockerfile shipped with topo\n"
             "(needs a registry for debian:bookworm-slim), or with --offline from Debian packages\n"
             "alone: debootstrap, then docker import (about a minute, about 160 MB).\n"
             "With --host, topo-host instead: a simulated build host for the multi-host tests\n"
             "(sshd, python3, iproute2, iputils-ping; no pyroute2, which topo brings).",
             "examples:\n  topo image build --offline\n  topo image build --tag topo-node:test\n"
             "  topo image build --host --offline", file=False)
    sp.add_argument("action", choices=["build"], help="what to do: build")
    sp.add_argument("--offline", action="store_true", help="from Debian packages (debootstrap), no registry")
    sp.add_argument("--tag", default=None, metavar="IMAGE",
                    help="image name (default topo-node:latest, with --host topo-host:latest)")
    sp.add_argument("--host", action="store_true", help="the build-host image (topo-host) for tests/multihost")
    sp.add_argument("--mirror", default=None, metavar="URL", help="Debian mirror for --offline (default: apt's)")
    sp = cmd("graph", "draw the lab: SVG, PNG, DOT, Mermaid or one HTML page (no root needed)",
             "Draw the lab FILE describes, as expanded (names and addresses included): nodes shaped\n"
             "by kind (rounded box: namespace, 3-D box: docker, octagon: router), bridges as grey\n"
             "ellipses with their subnet, each link labelled with both ends' interfaces and\n"
             "addresses, tunnels dashed with type and VNI/key, impaired links orange with their\n"
             "delay/loss/rate, groups as colours. The format follows -o's suffix: .svg .png (need\n"
             "Graphviz's dot: apt-get install graphviz), .dot, .mmd (Mermaid, for Markdown), .html\n"
             "(one self-contained page: the picture, each node's interfaces on hover, the address\n"
             "plan). Without -o, the DOT source goes to stdout. report.md carries the same picture.",
             "examples:\n  topo graph examples/vxlan.yml -o vxlan.svg\n"
             "  topo graph examples/clusters.csv -o clusters.html\n"
             "  topo graph lab.yml -o lab.mmd          # paste into Markdown\n"
             "  topo graph lab.yml | dot -Tpdf > lab.pdf")
    sp.add_argument("-o", "--output", metavar="OUT", default=None,
                    help="where to write: lab.svg, lab.png, lab.dot, lab.mmd or lab.html (default: DOT on stdout)")
    sp = cmd("list", "every lab on this machine and its state",
             "List every lab on this machine, whether or not its topology file still exists, found\n"
             "from the namespaces marked as a lab's, the containers labelled topo.lab and the lab\n"
             "directories: lab, state, namespaces and containers that exist, the topology file and\n"
             "time of its last apply. States: up (all that the last apply made exists), partial\n"
             "(some of it is missing), down (nothing of it exists), orphan (objects but no lab\n"
             "directory: a crashed or half-destroyed lab). topo destroy --lab NAME cleans any of them.",
             "examples:\n  topo list\n  topo list --json", file=False)
    sp = cmd("validate", "check a topology file without building anything (no root needed)",
             "Load, validate and expand FILE and print the result: every problem with its file,\n"
             "line and field (exit 2), or a summary of the expanded lab.",
             "examples:\n  topo validate lab.csv\n  topo validate lab.yml --json   # the expanded lab")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``topo``; returns the exit code."""
    args = _parser().parse_args(argv)
    _warn_ignored_input()
    if not args.command:
        _parser().print_help()
        return EXIT_INPUT
    handler = {"apply": cmd_apply, "plan": cmd_plan, "verify": cmd_verify, "show": cmd_show,
               "exec": cmd_exec, "destroy": cmd_destroy, "capture": cmd_capture, "validate": cmd_validate, "doctor": cmd_doctor,
               "image": cmd_image, "graph": cmd_graph, "list": cmd_list,
               "link": cmd_link, "impair": cmd_impair}[args.command]
    try:
        return handler(args)
    except TopoError as exc:
        return _fail(args, exc)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]; run the same command again to finish, or topo destroy to remove the lab")
        return 130
    except BrokenPipeError:
        # stdout closed early (topo list --json | head): quiet, as the Python docs advise
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK


def _warn_ignored_input() -> None:
    """Print what a loader ignored (containerlab's ``mgmt``, ...) as ``warning: file:line: ...``
    on stderr, every time; other Python warnings keep their default display."""
    import warnings

    from topo.load.clab import IgnoredInput

    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, IgnoredInput):
            err.print(f"[yellow]warning:[/] {escape(str(message))}")
        else:
            default(message, category, filename, lineno, file, line)
    warnings.simplefilter("always", IgnoredInput)
    warnings.showwarning = show


def _fail(args, exc: TopoError) -> int:
    if getattr(args, "json", False):
        print(json.dumps(exc.to_json(), indent=2))
    else:
        err.print(f"[bold red]error:[/] {exc}", markup=True)
        if isinstance(exc, InputError):
            for p in exc.problems:
                err.print(f"  {p}", markup=False)
    return exc.exit_code


def _emit(args, data: dict) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str))


class RichProgress:
    """A playbook run's progress on stderr (:class:`topo.runner.Progress`): a live status
    line with the task and how many hosts are done, on a terminal, and one line per
    finished task with its time (a red cross when a host failed it)."""

    def __init__(self, console: Console):
        self.console = console
        self.status = None
        self.task = None
        self.task_start = 0.0
        self.done = 0
        self.failed = False

    def start(self, title: str) -> None:
        if self.console.is_terminal:
            self.status = self.console.status(title)
            self.status.start()

    def task_started(self, name: str) -> None:
        self._finish_task()
        self.task, self.task_start, self.done, self.failed = name, time.monotonic(), 0, False
        self._show()

    def host_done(self, failed: bool = False) -> None:
        self.done += 1
        self.failed |= failed
        self._show()

    def _show(self) -> None:
        if self.status is not None and self.task:
            self.status.update(f"{self.task}  [dim]({self.done} host{'s' if self.done != 1 else ''} done)[/]")

    def _finish_task(self) -> None:
        if self.task:
            mark = "[red]✗[/]" if self.failed else "[green]✓[/]"
            self.console.print(f"  {mark} {self.task} [dim]{time.monotonic() - self.task_start:.1f} s[/]",
                               highlight=False)
        self.task = None

    def stop(self) -> None:
        self._finish_task()
        if self.status is not None:
            self.status.stop()


def _progress(args) -> RichProgress | None:
    """Progress on stderr, none with --json."""
    return None if args.json else RichProgress(err)


# --------------------------------------------------------------------------- validate

def _print_warnings(r) -> None:
    """The expansion's warnings (what is built anyway, see ``mtu_check``), one per line."""
    for w in r.warnings:
        err.print(f"[yellow]warning:[/] {escape(w)}", markup=True, highlight=False)


def cmd_validate(args) -> int:
    r = usecases.validate(args.file)
    if args.json:
        _emit(args, r.to_json())
        return EXIT_OK
    _print_warnings(r)
    e = r.expanded
    n_if = sum(len(n["interfaces"]) for n in e["nodes"].values())
    out.print(f"[green]✓[/] {r.file}: lab [bold]{r.lab}[/] is valid: {len(e['nodes'])} nodes, "
              f"{len(e['bridges'])} bridges, {len(e['veths'])} links, {n_if} interfaces, "
              f"{sum(len(ch['targets']) for ch in e['checks'] if ch['type'] == 'ping')} ping checks"
              + "".join(f", {n} {t} checks" for t, n in _count_types(e["checks"], exclude="ping")))
    return EXIT_OK


def cmd_graph(args) -> int:
    r = usecases.graph(args.file, args.output)
    if args.json:
        _emit(args, r.to_json())
    elif r.path:
        out.print(f"lab [bold]{r.lab}[/]: drawn in {r.path}")
    else:
        print(r.dot, end="")
    return EXIT_OK


def cmd_list(args) -> int:
    r = usecases.list_labs(hosts=args.hosts)
    if args.json:
        _emit(args, r.to_json())
        return EXIT_OK
    if not r.labs:
        out.print("no labs on this machine")
        return EXIT_OK
    table = Table(title="labs on this machine", title_justify="left")
    for col in ("lab", "state", "namespaces", "containers", "file", "last apply"):
        table.add_column(col, justify="right" if col in ("namespaces", "containers") else "left")
    colours = {"up": "green", "partial": "yellow", "down": "dim", "orphan": "red"}
    for e in r.labs:
        state = f"[{colours[e.state]}]{e.state}[/]" + (f" [dim](missing {len(e.missing)})[/]" if e.missing else "")
        table.add_row(e.lab, state, str(e.namespaces), "-" if e.containers is None else str(e.containers),
                      e.file or "-", e.applied or "-")
    out.print(table)
    return EXIT_OK


# --------------------------------------------------------------------------- apply / plan / verify

def _summary_table(changes: list[dict], title: str) -> Table:
    counts = Counter((c["resource"], c["action"]) for c in changes)
    table = Table(title=title, title_justify="left")
    table.add_column("resource")
    for action in ("create", "fix", "remove"):
        table.add_column(action, justify="right")
    for resource in dict.fromkeys(c["resource"] for c in changes):
        table.add_row(resource, *(str(counts.get((resource, a), 0) or "") for a in ("create", "fix", "remove")))
    return table


def _count_types(checks: list[dict], exclude: str) -> list[tuple[str, int]]:
    counts: dict[str, int] = {}
    for c in checks:
        if c["type"] != exclude:
            counts[c["type"]] = counts.get(c["type"], 0) + 1
    return sorted(counts.items())


def _print_checks(checks: list[dict]) -> None:
    captures = [c for c in checks if c["type"] == "capture"]
    steps = [c for c in checks if c["type"] not in ("ping", "capture")]
    checks = [c for c in checks if c["type"] == "ping"]
    if checks:
        _print_pings(checks)
    if captures:
        _print_captures(captures)
    if steps:
        _print_steps(steps)


def _print_steps(checks: list[dict]) -> None:
    """Cast and iperf3 checks: one row each - what should happen, what did."""
    table = Table(title="checks: casts and throughput", title_justify="left")
    for col in ("check", "expected", "observed", "result"):
        table.add_column(col, overflow="fold")
    for c in checks:
        verdict = "[green]pass[/]" if c["ok"] else "[red]FAIL[/]"
        table.add_row(f"{c['type']} {c['name']}\n[dim]{c['description']}[/]", c["expected"], c["observed"], verdict)
    out.print(table)
    for c in checks:
        cap = c.get("capture")
        if cap and cap.get("rows"):
            _print_capture_rows(f"capture during {c['name']}: {cap.get('on', '')} ({cap.get('total', 0)} packets, "
                                f"{cap.get('path', '')})", cap["rows"])


def _print_capture_rows(title: str, rows: list[dict], limit: int = 12) -> None:
    table = Table(title=title, title_justify="left")
    for col in ("time", "src", "dst", "protocol", "length", "kind", "vni/key"):
        table.add_column(col, justify="right" if col in ("time", "length") else "left")
    for r in rows[:limit]:
        tunnel = r.get("vni") if r.get("vni") is not None else r.get("gre_key")
        table.add_row(f"{r.get('time', 0):.3f}", str(r.get("src") or ""), str(r.get("dst") or ""),
                      str(r.get("protocol") or ""), str(r.get("length") or ""), str(r.get("kind") or ""),
                      "" if tunnel is None else str(tunnel))
    if len(rows) > limit:
        table.add_row("...", "", "", "", "", "", "")
    out.print(table)


def _print_captures(captures: list[dict]) -> None:
    table = Table(title="checks: capture", title_justify="left")
    for col in ("on", "traffic", "expected", "matched", "seen"):
        table.add_column(col, justify="right" if col == "matched" else "left")
    from topo.report import expected_text
    for c in captures:
        want = expected_text(c)
        seen = c.get("seen") or c.get("msg") or ""
        table.add_row(c["on"], c["description"], want,
                      f"[{'green' if c['ok'] else 'red'}]{c.get('matched', 0)}/{c.get('total', 0)}[/]", seen)
    out.print(table)


def _print_pings(checks: list[dict]) -> None:
    from topo.report import ping_rows
    table = Table(title="checks: ping", title_justify="left")
    for col in ("from", "targets", "passed", "avg rtt ms", "failed"):
        table.add_column(col, justify="right" if col in ("targets", "passed", "avg rtt ms") else "left")
    for r in ping_rows(checks):
        table.add_row(r["from"], str(r["targets"]), str(r["passed"]),
                      "-" if r["avg_rtt_ms"] is None else f"{r['avg_rtt_ms']:.3f}",
                      f"[red]{r['failed']}[/]" if r["failed"] else "")
    out.print(table)


def _print_verdict(summary) -> None:
    colour = "green" if not summary.failed else "red"
    out.print(f"[{colour}]{summary.passed}/{summary.total} checks passed[/]")


def cmd_apply(args) -> int:
    r = usecases.apply(args.file, verify=not args.no_verify, wait=args.wait, progress=_progress(args),
                       notify=_notice, hosts=args.hosts)
    if args.json:
        _emit(args, r.to_json())
    else:
        _print_warnings(r)
        if r.changes:
            out.print(_summary_table(r.changes, f"lab {r.lab}: {len(r.changes)} changed in {r.seconds:.1f} s"))
        else:
            out.print(f"lab [bold]{r.lab}[/]: [green]0 changed[/] - the kernel already matches {r.file} "
                      f"({r.seconds:.1f} s)")
        if r.checks is not None:
            _print_checks(r.check_results)
            _print_verdict(r.checks)
            out.print(f"[dim]report: {r.reports['markdown']}[/]")
        out.print(f"[dim]inventory: {r.inventory}\nlog: {r.log}[/]")
    return EXIT_VERIFY if r.failed else EXIT_OK


#: How a change's action is marked on screen (plan, link, impair).
SIGNS = {"create": "[green]+[/]", "fix": "[yellow]~[/]", "remove": "[red]-[/]"}


def cmd_plan(args) -> int:
    r = usecases.plan(args.file, hosts=args.hosts)
    if args.json:
        _emit(args, r.to_json())
        return EXIT_OK
    _print_warnings(r)
    if not r.changes:
        out.print(f"lab [bold]{r.lab}[/]: nothing to do - the kernel matches {r.file}")
        return EXIT_OK
    for ch in r.changes:
        detail = f"  [dim]{ch['detail']}[/]" if ch.get("detail") else ""
        out.print(f"{SIGNS[ch['action']]} {ch['resource']:8} {ch['name']}{detail}")
    counts = Counter(ch["action"] for ch in r.changes)
    out.print(f"\nplan: {counts.get('create', 0)} to create, {counts.get('fix', 0)} to fix, "
              f"{counts.get('remove', 0)} to remove")
    return EXIT_OK


def cmd_verify(args) -> int:
    r = usecases.verify(args.file, progress=_progress(args), hosts=args.hosts)
    if args.json:
        _emit(args, r.to_json())
    else:
        _print_checks(r.check_results)
        _print_verdict(r.checks)
        out.print(f"[dim]report: {r.reports['markdown']} (also verify.json, junit.xml)[/]")
    return EXIT_VERIFY if r.failed else EXIT_OK


# --------------------------------------------------------------------------- show

def cmd_show(args) -> int:
    r = usecases.show(args.file, hosts=args.hosts)
    if args.json:
        _emit(args, r.to_json())
        return EXIT_OK
    table = Table(title=f"lab {r.lab}", title_justify="left")
    for col in ("node", "kind", "interface", "address", "peer", "state"):
        table.add_column(col)
    colours = {"up": "green", "missing": "red", "drift": "yellow", "down": "yellow"}
    for node in r.nodes:
        ifaces = node["interfaces"] or [{"ifname": "-", "address": "", "peer": "", "state": node["state"]}]
        for k, iface in enumerate(ifaces):
            state = iface["state"]
            text = f"[{colours.get(state.split(':')[0], 'white')}]{state}[/]"
            table.add_row(node["node"] if k == 0 else "", node["kind"] if k == 0 else "", iface["ifname"],
                          iface.get("address") or "", iface.get("peer") or "", text)
    out.print(table)
    return EXIT_OK


# --------------------------------------------------------------------------- exec, capture

def cmd_exec(args) -> int:
    r = usecases.exec_in(args.file, args.node, args.argv, capture_output=args.json,
                         tty=sys.stdin.isatty() and sys.stdout.isatty() and not args.json, hosts=args.hosts)
    if args.json:
        _emit(args, r.to_json())
    return r.rc


def cmd_capture(args) -> int:
    r = usecases.capture(args.file, args.on, count=args.count, duration=args.duration, bpf=args.filter,
                         notify=None if args.json else lambda text: err.print(f"[dim]{text}[/]"), hosts=args.hosts)
    if args.json:
        _emit(args, r.to_json())
    else:
        _print_capture_rows(f"{r.on}: {len(r.rows)} packets ({r.path})", r.rows, limit=args.count)
    return EXIT_OK


# --------------------------------------------------------------------------- link, impair

def _print_runtime(args, r) -> int:
    if args.json:
        _emit(args, r.to_json())
        return EXIT_OK
    if r.changes:
        out.print(f"lab [bold]{r.lab}[/]: {escape(r.on)} {escape(r.what)} ({r.seconds:.1f} s)")
        for ch in r.changes:  # the interface, and what coming up again brought back
            out.print(f"  {SIGNS[ch['action']]} {ch['resource']:8} {escape(ch['name'])}  "
                      f"[dim]{escape(ch.get('detail') or '')}[/]")
        out.print(f"[dim]topo plan {r.file} shows the difference from the file; topo apply {r.file} restores it[/]")
    else:
        out.print(f"lab [bold]{r.lab}[/]: {escape(r.on)} already {escape(r.what)} - [green]0 changed[/]")
    return EXIT_OK


def cmd_link(args) -> int:
    r = usecases.set_link(args.file, args.on, args.state, hosts=args.hosts, wait=args.wait,
                          progress=_progress(args), notify=_notice)
    return _print_runtime(args, r)


def cmd_impair(args) -> int:
    r = usecases.impair(args.file, args.on, delay=args.delay, jitter=args.jitter, loss=args.loss, rate=args.rate,
                        clear=args.clear, hosts=args.hosts, wait=args.wait, progress=_progress(args),
                        notify=_notice)
    return _print_runtime(args, r)


# --------------------------------------------------------------------------- doctor, image

def cmd_doctor(args) -> int:
    r = usecases.doctor(args.file, hosts=args.hosts)
    if args.json:
        _emit(args, r.to_json())
    else:
        table = Table(title="topo doctor", title_justify="left")
        for col in ("check", "status", "detail", "fix"):
            table.add_column(col, overflow="fold")
        colours = {"ok": "green", "warn": "yellow", "fail": "red"}
        for f in r.findings:
            table.add_row(f.check, f"[{colours[f.status]}]{f.status}[/]", f.detail, f.fix)
        out.print(table)
        out.print(f"[red]{len(r.failed)} problem(s) stop topo here[/]" if r.failed else "[green]ready[/]")
    return EXIT_ENV if r.failed else EXIT_OK


def cmd_image(args) -> int:
    r = usecases.build_image(args.tag, offline=args.offline, mirror=args.mirror, kind="host" if args.host else "node",
                             notify=lambda line: err.print(f"[dim]{line}[/]"))
    if args.json:
        _emit(args, r.to_json())
    else:
        out.print(f"built [bold]{r.image}[/] ({r.method}): {r.size_mb} MB in {r.seconds} s")
    return EXIT_OK


# --------------------------------------------------------------------------- destroy

def cmd_destroy(args) -> int:
    usecases.require_root()
    labs = usecases.labs_to_destroy(args.file, args.lab, args.all)
    report = []
    for lab in labs:
        r = usecases.destroy(lab, wait=args.wait, progress=_progress(args), notify=_notice, hosts=args.hosts)
        report.append(r.to_json())
        if args.json:
            continue
        for warning in r.warnings:
            err.print(f"[yellow]warning:[/] {warning}")
        if r.removed:
            words = {"netns": "namespaces", "container": "containers"}
            out.print(f"lab [bold]{lab}[/]: removed ({r.seconds:.1f} s) " + "; ".join(
                f"{len(names)} {words.get(kind, kind)}: {', '.join(names)}"
                for kind, names in sorted(r.removed.items())))
        else:
            out.print(f"lab [bold]{lab}[/]: nothing of it was left to remove")
    if args.json:
        _emit(args, {"labs": report})
    elif not labs:
        out.print("no labs to destroy")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
