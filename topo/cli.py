"""The ``topo`` command line.

Every command takes ``--json`` (one JSON document on stdout, progress on stderr) and exits
0 on success, 1 when a verification failed, 2 on bad input or usage, 3 when the machine
cannot do it (not root, missing program or kernel feature), naming the fix.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter

from rich.console import Console
from rich.table import Table

import topo
from topo import labdir
from topo.errors import (EXIT_ENV, EXIT_INPUT, EXIT_OK, EXIT_VERIFY, EnvironmentProblem, InputError,
                         RunFailed, TopoError, UsageError)

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

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

exit codes: 0 ok, 1 a check failed, 2 bad input or usage, 3 environment problem
lab directories: $TOPO_HOME/labs/<lab> (default /var/lib/topo/labs/<lab>)
"""


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
        return sp

    sp = cmd("apply", "build or converge a lab, then verify it",
             "Build the lab FILE describes, or converge an existing one to it: create what is\n"
             "missing, repair what drifted, remove what the lab owns but no longer declares.\n"
             "Then run its checks (ping every node to every address it should reach, or the\n"
             "checks under verify:). Safe to re-run: a lab that matches reports 0 changed.\n"
             "Before building, the kernel is asked for every link type and qdisc the lab uses\n"
             "(vxlan, gre, gretap, netem, tbf); a missing one stops it with exit 3, nothing built.",
             "examples:\n  topo apply examples/clusters.csv\n  topo apply lab.yml --no-verify --json\n\n"
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
             "examples:\n  topo doctor\n  topo doctor examples/clusters-docker.yml --json", file=False)
    sp.add_argument("file", metavar="FILE", nargs="?", help="a topology whose needs are required")
    sp = cmd("image", "build the default node image for docker nodes (topo-node)",
             "Build topo-node, the image docker nodes run by default: Debian bookworm with iproute2,\n"
             "iputils-ping, iperf3, python3 and tcpdump. From the Dockerfile shipped with topo\n"
             "(needs a registry for debian:bookworm-slim), or with --offline from Debian packages\n"
             "alone: debootstrap, then docker import (about a minute, about 160 MB).",
             "examples:\n  topo image build --offline\n  topo image build --tag topo-node:test", file=False)
    sp.add_argument("action", choices=["build"], help="what to do: build")
    sp.add_argument("--offline", action="store_true", help="from Debian packages (debootstrap), no registry")
    sp.add_argument("--tag", default=None, metavar="IMAGE", help="image name (default topo-node:latest)")
    sp.add_argument("--mirror", default=None, metavar="URL", help="Debian mirror for --offline (default: apt's)")
    sp = cmd("validate", "check a topology file without building anything (no root needed)",
             "Load, validate and expand FILE and print the result: every problem with its file,\n"
             "line and field (exit 2), or a summary of the expanded lab.",
             "examples:\n  topo validate lab.csv\n  topo validate lab.yml --json   # the expanded lab")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``topo``; returns the exit code."""
    args = _parser().parse_args(argv)
    if not args.command:
        _parser().print_help()
        return EXIT_INPUT
    handler = {"apply": cmd_apply, "plan": cmd_plan, "verify": cmd_verify, "show": cmd_show,
               "exec": cmd_exec, "destroy": cmd_destroy, "capture": cmd_capture, "validate": cmd_validate, "doctor": cmd_doctor,
               "image": cmd_image}[args.command]
    try:
        return handler(args)
    except TopoError as exc:
        return _fail(args, exc)
    except KeyboardInterrupt:
        err.print("[red]interrupted[/]; run the same command again to finish, or topo destroy to remove the lab")
        return 130


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


def _require_root() -> None:
    if os.geteuid() != 0:
        raise EnvironmentProblem("topo needs root to create namespaces and interfaces; run it with sudo")
    if shutil.which("ip") is None:
        raise EnvironmentProblem("the ip command (iproute2) is missing; apt-get install iproute2")


#: Programs the checks run, by check type, with the Debian package that has them.
CHECK_PROGRAMS = {"ping": ("ping", "iputils-ping"), "capture": ("tcpdump", "tcpdump"),
                  "iperf3": ("iperf3", "iperf3"), **{t: ("python3", "python3") for t in
                                                     ("unicast", "broadcast", "multicast", "anycast", "relay")}}


def _require_programs(expanded: dict) -> None:
    """Exit 3 before anything is built when a program the lab's checks need is missing."""
    kinds = {c["type"] for c in expanded["checks"]}
    if any(c.get("capture") for c in expanded["checks"]):
        kinds.add("capture")
    for kind in sorted(kinds):
        program, package = CHECK_PROGRAMS[kind]
        if shutil.which(program) is None:
            raise EnvironmentProblem(f"the lab's {kind} checks need {program}, which is missing; "
                                     f"apt-get install {package} (or apply with --no-verify)")


def _require_docker(expanded: dict) -> None:
    """Exit 3 before anything is built when the lab's docker nodes cannot run here."""
    from topo.doctor import require_docker
    require_docker(expanded)


def _compile(args):
    from topo.pipeline import compile_file
    return compile_file(args.file, sticky=True)


# --------------------------------------------------------------------------- validate

def cmd_validate(args) -> int:
    c = _compile(args)
    if args.json:
        _emit(args, {"lab": c.lab, "file": c.file, "expanded": c.expanded})
        return EXIT_OK
    e = c.expanded
    n_if = sum(len(n["interfaces"]) for n in e["nodes"].values())
    out.print(f"[green]✓[/] {c.file}: lab [bold]{c.lab}[/] is valid: {len(e['nodes'])} nodes, "
              f"{len(e['bridges'])} bridges, {len(e['veths'])} links, {n_if} interfaces, "
              f"{sum(len(ch['targets']) for ch in e['checks'] if ch['type'] == 'ping')} ping checks"
              + "".join(f", {n} {t} checks" for t, n in _count_types(e["checks"], exclude="ping")))
    return EXIT_OK


# --------------------------------------------------------------------------- apply / plan

def _summary_table(changes: list[dict], title: str) -> Table:
    counts = Counter((c["resource"], c["action"]) for c in changes)
    table = Table(title=title, title_justify="left")
    table.add_column("resource")
    for action in ("create", "fix", "remove"):
        table.add_column(action, justify="right")
    for resource in dict.fromkeys(c["resource"] for c in changes):
        table.add_row(resource, *(str(counts.get((resource, a), 0) or "") for a in ("create", "fix", "remove")))
    return table


def _check_summary(checks: list[dict]) -> dict:
    passed = sum(1 for c in checks if c.get("ok"))
    return {"total": len(checks), "passed": passed, "failed": len(checks) - passed}


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


def _raise_build_failure(result) -> None:
    text = "; ".join(f"{f.host}: {f.task}: {f.message}" for f in result.failures)
    raise RunFailed(f"the {result.playbook} run failed: {text}", result.log)


def cmd_apply(args) -> int:
    c = _compile(args)
    _require_root()
    _require_docker(c.expanded)
    if not args.no_verify:
        _require_programs(c.expanded)
    from topo.pipeline import write_inventory
    from topo.runner import run_playbook

    with labdir.locked(c.lab, wait=args.wait, notify=err.print):
        inv = write_inventory(c)
        labdir.write_state(c.lab, source=os.path.abspath(c.file), namespaces=[
            n["netns"] for n in c.expanded["nodes"].values()] + [
            b["netns"] for b in c.expanded["bridges"].values() if not b.get("node")], containers=[
            n["netns"] for n in c.expanded["nodes"].values() if n["kind"] == "docker"])
        build = run_playbook(c.lab, "apply", inventory=inv, quiet=args.json, title=f"applying {c.lab}")
        if not build.ok:
            _raise_build_failure(build)
        checks = None
        if not args.no_verify:
            ver = run_playbook(c.lab, "verify", inventory=inv, quiet=args.json, title=f"verifying {c.lab}")
            checks = ver.checks
            _verify_errors(ver)
    changed = len(build.changes)
    data = {"lab": c.lab, "file": c.file, "changed": changed, "changes": build.changes,
            "seconds": round(build.seconds, 2), "log": build.log, "lab_dir": labdir.lab_dir(c.lab),
            "inventory": inv}
    if checks is not None:
        data["checks"] = _check_summary(checks)
        data["check_results"] = checks
        data["reports"] = _write_reports(c, checks, data["checks"])
    if args.json:
        _emit(args, data)
    else:
        if changed:
            out.print(_summary_table(build.changes, f"lab {c.lab}: {changed} changed in {build.seconds:.1f} s"))
        else:
            out.print(f"lab [bold]{c.lab}[/]: [green]0 changed[/] - the kernel already matches {c.file} "
                      f"({build.seconds:.1f} s)")
        if checks is not None:
            _print_checks(checks)
            s = data["checks"]
            colour = "green" if not s["failed"] else "red"
            out.print(f"[{colour}]{s['passed']}/{s['total']} checks passed[/]")
            out.print(f"[dim]report: {data['reports']['markdown']}[/]")
        out.print(f"[dim]inventory: {inv}\nlog: {build.log}[/]")
    if checks is not None and any(not ch["ok"] for ch in checks):
        return EXIT_VERIFY
    return EXIT_OK


def _write_reports(c, checks: list[dict], summary: dict) -> dict:
    """verify.json, junit.xml and report.md (with plots) in the lab directory."""
    from topo import report
    return report.write(c.lab, labdir.lab_dir(c.lab), c.file, checks, summary)


def _verify_errors(ver) -> None:
    """A verify run whose failures are not check results is an environment problem."""
    hosts_with_checks = {c["from"] for c in ver.checks}  # a capture check's "from" is the build host
    other = [f for f in ver.failures if f.host not in hosts_with_checks]
    if other:
        raise RunFailed("verification could not run: " + "; ".join(
            f"{f.host}: {f.message}" for f in other), ver.log)


def cmd_plan(args) -> int:
    c = _compile(args)
    _require_root()
    _require_docker(c.expanded)
    from topo.pipeline import write_inventory
    from topo.runner import run_playbook

    with labdir.locked(c.lab):
        inv = write_inventory(c)
        result = run_playbook(c.lab, "apply", inventory=inv, check=True, quiet=True, title=f"planning {c.lab}")
    if not result.ok:
        _raise_build_failure(result)
    if args.json:
        _emit(args, {"lab": c.lab, "file": c.file, "changes": result.changes, "count": len(result.changes)})
        return EXIT_OK
    if not result.changes:
        out.print(f"lab [bold]{c.lab}[/]: nothing to do - the kernel matches {c.file}")
        return EXIT_OK
    sign = {"create": "[green]+[/]", "fix": "[yellow]~[/]", "remove": "[red]-[/]"}
    for ch in result.changes:
        detail = f"  [dim]{ch['detail']}[/]" if ch.get("detail") else ""
        out.print(f"{sign[ch['action']]} {ch['resource']:8} {ch['name']}{detail}")
    counts = Counter(ch["action"] for ch in result.changes)
    out.print(f"\nplan: {counts.get('create', 0)} to create, {counts.get('fix', 0)} to fix, "
              f"{counts.get('remove', 0)} to remove")
    return EXIT_OK


# --------------------------------------------------------------------------- verify

def cmd_verify(args) -> int:
    c = _compile(args)
    _require_root()
    _require_docker(c.expanded)
    _require_programs(c.expanded)
    from topo.pipeline import write_inventory
    from topo.runner import run_playbook

    inv = write_inventory(c)
    ver = run_playbook(c.lab, "verify", inventory=inv, quiet=args.json, title=f"verifying {c.lab}")
    _verify_errors(ver)
    summary = _check_summary(ver.checks)
    reports = _write_reports(c, ver.checks, summary)
    if args.json:
        _emit(args, {"lab": c.lab, "checks": summary, "check_results": ver.checks, "log": ver.log,
                     "reports": reports})
    else:
        _print_checks(ver.checks)
        colour = "green" if not summary["failed"] else "red"
        out.print(f"[{colour}]{summary['passed']}/{summary['total']} checks passed[/]")
        out.print(f"[dim]report: {reports['markdown']} (also verify.json, junit.xml)[/]")
    return EXIT_VERIFY if summary["failed"] else EXIT_OK


# --------------------------------------------------------------------------- show

def cmd_show(args) -> int:
    c = _compile(args)
    _require_root()
    from topo.show import observe
    rows = observe(c.expanded)
    if args.json:
        _emit(args, {"lab": c.lab, "nodes": rows})
        return EXIT_OK
    table = Table(title=f"lab {c.lab}", title_justify="left")
    for col in ("node", "kind", "interface", "address", "peer", "state"):
        table.add_column(col)
    colours = {"up": "green", "missing": "red", "drift": "yellow", "down": "yellow"}
    for node in rows:
        ifaces = node["interfaces"] or [{"ifname": "-", "address": "", "peer": "", "state": node["state"]}]
        for k, iface in enumerate(ifaces):
            state = iface["state"]
            text = f"[{colours.get(state.split(':')[0], 'white')}]{state}[/]"
            table.add_row(node["node"] if k == 0 else "", node["kind"] if k == 0 else "", iface["ifname"],
                          iface.get("address") or "", iface.get("peer") or "", text)
    out.print(table)
    return EXIT_OK


# --------------------------------------------------------------------------- exec

def cmd_exec(args) -> int:
    c = _compile(args)
    _require_root()
    node = c.expanded["nodes"].get(args.node)
    if node is None:
        raise UsageError(f"no node {args.node!r} in {c.file}; nodes: {', '.join(sorted(c.expanded['nodes']))}")
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        raise UsageError("no command given; example: topo exec FILE NODE -- ip -br addr")
    if not os.path.exists(os.path.join("/run/netns", node["netns"])):
        raise EnvironmentProblem(f"node {args.node} does not exist; run topo apply {c.file} first")
    from ansible_collections.topo.lab.plugins.module_utils.api import node_argv
    full = node_argv(node["netns"], node["kind"], argv, interactive=True,
                     tty=sys.stdin.isatty() and sys.stdout.isatty() and not args.json)
    if args.json:
        proc = subprocess.run(full, capture_output=True, text=True)
        _emit(args, {"node": args.node, "argv": argv, "rc": proc.returncode,
                     "stdout": proc.stdout, "stderr": proc.stderr})
        return proc.returncode
    return subprocess.call(full)


# --------------------------------------------------------------------------- capture

def cmd_capture(args) -> int:
    c = _compile(args)
    _require_root()
    node_name, sep, ifname = args.on.partition(":")
    node = c.expanded["nodes"].get(node_name)
    if not sep or node is None:
        raise UsageError(f"{args.on!r} is not NODE:IFACE of {c.file}; nodes: {', '.join(sorted(c.expanded['nodes']))}")
    known = [i["ifname"] for i in node["interfaces"]] + ["lo", "any"]
    if ifname not in known:
        raise UsageError(f"node {node_name} has no interface {ifname!r}; it has: {', '.join(known)}")
    if args.count < 1 or args.duration <= 0:
        raise UsageError("--count must be at least 1 and --duration positive")
    if shutil.which("tcpdump") is None:
        raise EnvironmentProblem("topo capture needs tcpdump; apt-get install tcpdump")
    if not os.path.exists(os.path.join("/run/netns", node["netns"])):
        raise EnvironmentProblem(f"node {node_name} does not exist; run topo apply {c.file} first")
    directory = os.path.join(labdir.lab_dir(c.lab), "captures")
    os.makedirs(directory, exist_ok=True)
    import time
    path = os.path.join(directory, f"{node_name}-{ifname}-{time.strftime('%Y%m%d-%H%M%S')}.pcap")
    if not args.json:
        err.print(f"[dim]capturing on {node_name}:{ifname} ({args.count} packets or {args.duration:g} s; "
                  f"Ctrl-C stops) ...[/]")
    from ansible_collections.topo.lab.plugins.module_utils.api import capture
    stderr = capture(node["netns"], ifname, path, args.count, args.duration, args.filter)
    if not os.path.exists(path):
        raise UsageError(f"tcpdump could not capture on {node_name}:{ifname}: {stderr.strip()[-300:]}")
    from ansible_collections.topo.lab.plugins.module_utils.api import summarize_pcap
    rows = summarize_pcap(path)
    if args.json:
        _emit(args, {"lab": c.lab, "on": args.on, "path": path, "packets": len(rows), "rows": rows})
    else:
        _print_capture_rows(f"{args.on}: {len(rows)} packets ({path})", rows, limit=args.count)
    return EXIT_OK


# --------------------------------------------------------------------------- doctor, image

def cmd_doctor(args) -> int:
    from topo.doctor import run_checks
    images, needs = None, False
    if args.file:
        c = _compile(args)
        images = sorted({n["container"]["image"] for n in c.expanded["nodes"].values() if n["kind"] == "docker"})
        needs = bool(images)
    findings = run_checks(images or None, needs)
    failed = [f for f in findings if f.status == "fail"]
    if args.json:
        _emit(args, {"findings": [f.as_dict() for f in findings], "ok": not failed})
    else:
        table = Table(title="topo doctor", title_justify="left")
        for col in ("check", "status", "detail", "fix"):
            table.add_column(col, overflow="fold")
        colours = {"ok": "green", "warn": "yellow", "fail": "red"}
        for f in findings:
            table.add_row(f.check, f"[{colours[f.status]}]{f.status}[/]", f.detail, f.fix)
        out.print(table)
        out.print(f"[red]{len(failed)} problem(s) stop topo here[/]" if failed else "[green]ready[/]")
    return EXIT_ENV if failed else EXIT_OK


def cmd_image(args) -> int:
    _require_root()
    from topo import image
    tag = args.tag or image.DEFAULT_IMAGE
    result = image.build(tag, offline=args.offline, mirror=args.mirror,
                         say=lambda line: err.print(f"[dim]{line}[/]"))
    if args.json:
        _emit(args, result)
    else:
        out.print(f"built [bold]{result['image']}[/] ({result['method']}): {result['size_mb']} MB "
                  f"in {result['seconds']} s")
    return EXIT_OK


# --------------------------------------------------------------------------- destroy

def cmd_destroy(args) -> int:
    _require_root()
    from topo.pipeline import compile_file, destroy_inventory
    from topo.runner import run_playbook

    if sum(bool(x) for x in (args.file, args.lab, args.all)) != 1:
        raise UsageError("name what to destroy: a topology FILE, --lab NAME, or --all")
    if args.file:
        labs = [compile_file(args.file).lab]
    elif args.lab:
        from topo.model import NAME_RE
        import re
        if not re.match(NAME_RE, args.lab):
            raise UsageError(f"{args.lab!r} is not a lab name")
        labs = [args.lab]
    else:
        from topo.show import labs_in_docker, labs_in_kernel
        labs = sorted(set(labdir.known_labs()) | set(labs_in_kernel()) | set(labs_in_docker()))
    report = []
    for lab in labs:
        with labdir.locked(lab, wait=args.wait, notify=err.print):
            result = run_playbook(lab, "destroy", inventory=destroy_inventory(lab), quiet=args.json,
                                  title=f"destroying {lab}")
            if not result.ok:
                _raise_build_failure(result)
            by_kind: dict[str, list[str]] = {}
            for ch in result.changes:
                if ch["action"] == "remove":
                    by_kind.setdefault(ch["resource"], []).append(ch["name"])
            labdir.remove(lab)
        removed = by_kind.get("netns", [])
        report.append({"lab": lab, "removed": removed, "containers": by_kind.get("container", []),
                       "seconds": round(result.seconds, 2), "warnings": result.warnings})
        if not args.json:
            for warning in result.warnings:
                err.print(f"[yellow]warning:[/] {warning}")
        if not args.json:
            if by_kind:
                words = {"netns": "namespaces", "container": "containers"}
                out.print(f"lab [bold]{lab}[/]: removed ({result.seconds:.1f} s) " + "; ".join(
                    f"{len(names)} {words.get(kind, kind)}: {', '.join(names)}"
                    for kind, names in sorted(by_kind.items())))
            else:
                out.print(f"lab [bold]{lab}[/]: nothing of it was left to remove")
    if args.json:
        _emit(args, {"labs": report})
    elif not labs:
        out.print("no labs to destroy")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
