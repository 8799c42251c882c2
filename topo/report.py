"""Verification reports in the lab directory, written after every ``topo verify`` and
``topo apply`` that ran checks (DESIGN.md 6):

* ``verify.json``: the lab, when, the summary and every check row as the CLI's ``--json``
  has them;
* ``junit.xml``: one ``<testcase>`` per check (classname ``topo.<lab>.<type>``), a
  ``<failure>`` with expected/observed for each failed one, so CI systems show them;
* ``report.md``: first the lab as a student should see it before the results, its picture
  (``lab.png`` beside the report, drawn by :mod:`topo.graph`; a note instead where
  Graphviz's ``dot`` is missing) and its address plan (node, interface, address, segment,
  peer); then the tables (pings per source, each cast and iperf3 check with expected,
  observed and figures), the capture summaries, and a PNG plot of iperf3 throughput against
  buffer length per check with a sweep (``throughput-<check>.png``, matplotlib).

Check rows are those of :mod:`topo.results` (ping, capture and step rows; shapes there).
Rates print as everywhere else, through ``api.fmt_bps``.
"""

from __future__ import annotations

import json
import os
import time
import xml.etree.ElementTree as ET
from typing import Callable


def _name(c: dict) -> str:
    if c["type"] == "ping":
        return f"{c['from']} -> {c['node']} {c['address']}"
    if c["type"] == "capture":
        return f"{c['on']} ({c['description']})"
    return c["name"]


def expected_text(c: dict) -> str:
    """What check row ``c`` expected, in one line."""
    if c["type"] == "ping":
        return f"ping {c['expect']}"
    if c["type"] == "capture":
        exp = c["expect"]
        return " / ".join(exp["layers"]) + "".join(f", {k} {exp[k]}" for k in ("vni", "gre_key") if k in exp)
    return c.get("expected", "")


def _observed(c: dict) -> str:
    if c["type"] == "ping":
        rtt = f", rtt {c['rtt_ms']:.3f} ms" if c.get("rtt_ms") is not None else ""
        return f"ping {c['observed']}{rtt}"
    if c["type"] == "capture":
        return f"{c.get('matched', 0)}/{c.get('total', 0)} packets matched; {c.get('seen') or c.get('msg') or ''}"
    return c.get("observed", "")


def ping_rows(pings: list[dict]) -> list[dict]:
    """Ping rows summed up per source, in name order: {from, targets, passed, avg_rtt_ms
    (None without a reply), failed: "node address (expected X, got Y), ..."}."""
    by_src: dict[str, list] = {}
    for c in pings:
        by_src.setdefault(c["from"], []).append(c)
    rows = []
    for src in sorted(by_src):
        items = by_src[src]
        rtts = [c["rtt_ms"] for c in items if c.get("rtt_ms") is not None]
        rows.append({"from": src, "targets": len(items), "passed": sum(1 for c in items if c["ok"]),
                     "avg_rtt_ms": sum(rtts) / len(rtts) if rtts else None,
                     "failed": ", ".join(f"{c['node']} {c['address']} (expected {c['expect']}, got {c['observed']})"
                                         for c in items if not c["ok"])})
    return rows


def write(lab: str, directory: str, file: str, checks: list[dict], summary: dict,
          expanded: dict | None = None, drawing: Callable[[], str | None] | None = None) -> dict:
    """Write verify.json, junit.xml, report.md (and the iperf3 plots) into ``directory``
    (created if missing; each file replaced atomically). ``checks`` are check rows,
    ``summary`` is ``{total, passed, failed}``; ``expanded``, the expanded lab, gives
    report.md its picture (``lab.png``) and address plan. ``drawing``: the picture already
    being drawn (:func:`draw`), else it is drawn here. Returns ``{json, junit, markdown:
    path, plots: {check name: png path}, picture: png path or None}``.

    verify.json holds one check row per line, each compact: a file for programs (and grep),
    written with the json module's C encoder (an indented dump goes through its Python
    encoder: 0.2 s for the 2,450 rows of a 50-node star on this project's build host)."""
    os.makedirs(directory, exist_ok=True)
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    if drawing is not None:
        picture = drawing()
    else:
        picture = _picture(expanded, directory) if expanded else None
    paths = {"json": os.path.join(directory, "verify.json"), "junit": os.path.join(directory, "junit.xml"),
             "markdown": os.path.join(directory, "report.md")}
    plots = _plots(directory, checks, expanded)
    _atomic(paths["json"], rows_json({"lab": lab, "file": file, "when": when, "summary": summary,
                                      "checks": checks, "plots": plots}, "checks"))
    _atomic(paths["junit"], junit(lab, checks))
    _atomic(paths["markdown"], markdown(lab, file, when, checks, summary, plots, directory, expanded, picture))
    paths["plots"] = plots
    paths["picture"] = picture
    return paths


def rows_json(doc: dict, rows: str) -> str:
    """``doc`` as JSON text: one key a line, and the list under key ``rows`` one item a line;
    every value compact (``default=str`` for what JSON has no type for)."""
    def one(value) -> str:
        return json.dumps(value, default=str)

    items = [f" {one(k)}: " + ("[\n" + ",\n".join(f"  {one(r)}" for r in v) + "\n ]" if k == rows and v else one(v))
             for k, v in doc.items()]
    return "{\n" + ",\n".join(items) + "\n}\n"


def draw(expanded: dict, directory: str) -> Callable[[], str | None]:
    """Start drawing the lab's picture into ``directory`` (:func:`_picture`) in a thread of its
    own, so that Graphviz runs while the checks do; returns the function :func:`write` takes
    as ``drawing``, which waits for it and gives what :func:`_picture` gives (or raises what
    it raised). The thread imports topo.graph and graphviz itself (0.06 s of CPU), so a
    caller that starts it once ansible-playbook was spawned (topo.usecases) does not wait for
    them."""
    import threading

    done: dict = {}

    def run() -> None:
        try:
            done["path"] = _picture(expanded, directory)
        except BaseException as exc:  # handed to the caller by wait()
            done["error"] = exc

    thread = threading.Thread(target=run, name="topo-picture")
    thread.start()

    def wait() -> str | None:
        thread.join()
        if "error" in done:
            raise done["error"]
        return done["path"]
    return wait


#: The lab's picture beside report.md.
PICTURE = "lab.png"
#: The DOT source ``lab.png`` was drawn from, beside it: the same source is not drawn again.
PICTURE_SOURCE = "lab.dot"


def _picture(expanded: dict, directory: str) -> str | None:
    """Draw the lab into ``directory/lab.png`` (topo.graph); None where Graphviz's ``dot``
    is missing (report.md then says how to get it).

    The picture is drawn again only when the lab's DOT source differs from ``lab.dot``, the
    source of the ``lab.png`` already there (Graphviz takes about 0.3-0.5 s for 50 nodes
    on this project's build host, every verify of an unchanged lab paid it)."""
    import shutil

    from topo.errors import EnvironmentProblem
    from topo.graph import dot_source, render
    path, source_path = os.path.join(directory, PICTURE), os.path.join(directory, PICTURE_SOURCE)
    source = dot_source(expanded)
    if shutil.which("dot") is not None and os.path.exists(path):
        try:
            with open(source_path) as f:
                if f.read() == source:
                    return path
        except OSError:
            pass
    for stale in (source_path, path):  # never show the picture of an earlier lab
        if os.path.exists(stale):
            os.remove(stale)
    try:
        render(expanded, path)
    except EnvironmentProblem:
        return None
    _atomic(source_path, source)
    return path


def _atomic(path: str, text: str) -> None:
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def junit(lab: str, checks: list[dict]) -> str:
    """JUnit XML: one testsuite (the lab), one testcase per check."""
    failures = sum(1 for c in checks if not c["ok"])
    suite = ET.Element("testsuite", name=f"topo.{lab}", tests=str(len(checks)), failures=str(failures),
                       errors="0", skipped="0")
    for c in checks:
        case = ET.SubElement(suite, "testcase", classname=f"topo.{lab}.{c['type']}", name=_name(c))
        seconds = (c.get("figures") or {}).get("seconds")
        if seconds is not None:
            case.set("time", f"{seconds:.3f}")
        if not c["ok"]:
            fail = ET.SubElement(case, "failure", message=c.get("msg") or f"expected {expected_text(c)}, observed {_observed(c)}")
            fail.text = f"expected: {expected_text(c)}\nobserved: {_observed(c)}\n"
        out = ET.SubElement(case, "system-out")
        out.text = f"{c.get('description', '')}\nexpected: {expected_text(c)}\nobserved: {_observed(c)}\n"
    ET.indent(suite)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def markdown(lab: str, file: str, when: str, checks: list[dict], summary: dict, plots: dict, directory: str,
             expanded: dict | None = None, picture: str | None = None) -> str:
    """report.md: the summary; with ``expanded``, the lab's picture (``picture``, a PNG in
    ``directory``) and its address plan; the ping table per source, one row per other check,
    an iperf3 section per sweep (with its plot from ``plots``) and the packets of each
    capture."""
    lines = [f"# Verification of lab `{lab}`", "",
             f"From `{file}`, {when}: **{summary['passed']}/{summary['total']} checks passed**"
             + (f", {summary['failed']} failed." if summary["failed"] else "."), ""]
    if expanded and expanded.get("warnings"):
        lines += ["## Warnings", "", "Built anyway, but not as a user may expect:", "",
                  *(f"- {w}" for w in expanded["warnings"]), ""]
    if expanded:
        lines += _lab_section(expanded, picture)
    pings = [c for c in checks if c["type"] == "ping"]
    if pings:
        lines += ["## Ping", "", "| from | targets | passed | avg rtt ms | failed |", "|---|---:|---:|---:|---|"]
        for r in ping_rows(pings):
            rtt = "-" if r["avg_rtt_ms"] is None else f"{r['avg_rtt_ms']:.3f}"
            lines.append(f"| {r['from']} | {r['targets']} | {r['passed']} | {rtt} | {_cell(r['failed'])} |")
        lines.append("")
    others = [c for c in checks if c["type"] != "ping"]
    if others:
        lines += ["## Checks", "", "| check | type | expected | observed | result |", "|---|---|---|---|---|"]
        for c in others:
            lines.append(f"| {_cell(_name(c))} | {c['type']} | {_cell(expected_text(c))} | {_cell(_observed(c))} | "
                         f"{'pass' if c['ok'] else '**FAIL**'} |")
        lines.append("")
    refs = references(checks, expanded)
    for c in checks:
        if c["type"] == "iperf3":
            lines += _iperf_section(c, plots.get(c["name"]), refs.get(c["name"]))
    for c in checks:
        if c["type"] == "multicast" and (c.get("figures") or {}).get("wire") is not None:
            lines += silent_section(c, expanded)
    for c in checks:
        rows, title = None, None
        intro = []
        if c["type"] == "capture":
            rows, title = c.get("rows"), f"capture on {c['on']} ({c['description']})"
            intro = [matched_explained(c), ""]
        elif c.get("capture"):
            cap = c["capture"]
            rows, title = cap.get("rows"), f"capture during `{c['name']}`"
            if cap.get("path"):
                title += f" ({cap.get('total', len(rows or []))} packets, `{os.path.basename(cap['path'])}`)"
        if rows:
            lines += _capture_section(title, rows, intro)
    return "\n".join(lines) + "\n"


def _lab_section(expanded: dict, picture: str | None) -> list[str]:
    """The lab before its results: its picture and its address plan (topo.graph.address_plan)."""
    from topo.graph import address_plan
    lines = ["## The lab", ""]
    lines += ([f"![lab {expanded['lab']}]({os.path.basename(picture)})", ""] if picture else
              ["(No picture: Graphviz's `dot` is missing; `apt-get install graphviz`, or draw it with "
               "`topo graph FILE -o lab.mmd` for Mermaid.)", ""])
    plan = address_plan(expanded)
    v6 = any("address6" in row for row in plan)
    keys = ("node", "ifname", "address", *(("address6",) if v6 else ()), "segment", "peer")
    heads = {"ifname": "interface", "address": "IPv4 address" if v6 else "address", "address6": "IPv6 address"}
    lines += ["### Address plan", "", "| " + " | ".join(heads.get(k, k) for k in keys) + " |",
              "|" + "---|" * len(keys)]
    for row in plan:
        lines.append("| " + " | ".join(_cell(row.get(k) or "") for k in keys) + " |")
    return lines + [""]


def _iperf_section(c: dict, plot: str | None, ref: dict | None = None) -> list[str]:
    """An iperf3 check's section: per length, the throughput - with repeats, the median, the
    lowest and highest run and how many ran - and retransmits (TCP) or jitter and loss (UDP);
    the reference run (``ref``, the row of another check, see :func:`references`) named and
    given; the plot."""
    from ansible_collections.topo.lab.plugins.module_utils.api import fmt_bps
    runs = (c.get("figures") or {}).get("runs") or []
    lines = [f"## iperf3 `{c['name']}`", "", c.get("description", ""), ""]
    if runs:
        udp = any(r.get("jitter_ms") is not None for r in runs)
        repeated = any((r.get("repeats") or 1) > 1 for r in runs)
        head = ("| length (B) | median | min | max | runs | " if repeated else "| length (B) | throughput | ") + \
            ("jitter ms | loss % |" if udp else "retransmits |")
        lines += [head, "|---:|---:|" + ("---:|---:|---:|" if repeated else "") + ("---:|---:|" if udp else "---:|")]
        for r in runs:
            length = r.get("length") or "default"
            spread = (f"{fmt_bps(r.get('min_bps'))} | {fmt_bps(r.get('max_bps'))} | {r.get('repeats', 1)} | "
                      if repeated else "")
            extra = (f"{r.get('jitter_ms', '-')} | {r.get('lost_percent', '-')} |" if udp
                     else f"{r.get('retransmits', '-')} |")
            lines.append(f"| {length} | {fmt_bps(r.get('bits_per_second'))} | {spread}{extra}")
        lines.append("")
        if repeated:
            lines += [f"Each length ran {max(r.get('repeats') or 1 for r in runs)} times, the whole sweep over "
                      "and over: the throughput is the median of its runs, min and max their spread.", ""]
    if ref:
        run = ref["figures"]["runs"][0]
        spread = (f" (min {fmt_bps(run.get('min_bps'))}, max {fmt_bps(run.get('max_bps'))}, "
                  f"{run.get('repeats')} runs)" if (run.get("repeats") or 1) > 1 else "")
        lines += [f"Reference: check `{ref['name']}`, the same path at iperf3's default length "
                  f"({run.get('length')} B): {fmt_bps(run.get('bits_per_second'))}{spread}"
                  + (", the dashed line on the plot." if plot else "."), ""]
    if plot:
        lines += [f"![throughput against buffer length]({os.path.basename(plot)})", ""]
    return lines


def silent_section(c: dict, expanded: dict | None = None) -> list[str]:
    """For multicast check row ``c`` whose silent nodes' wires were captured (figures
    ``wire``): per silent node, what reached its sockets and what reached its wire, and why
    a datagram on its wire was not delivered - it did not join the group, so its kernel
    dropped it; the bridge flooded it, for the reason the bridge's settings in ``expanded``
    give (no IGMP/MLD snooping; snooping without a querier; a querier not settled yet)."""
    fig = c.get("figures") or {}
    wire, received = fig.get("wire") or {}, fig.get("received") or {}
    group = fig.get("group")
    proto = "MLD" if group and ":" in group else "IGMP"
    lines = [f"## Multicast `{c['name']}`: the silent nodes", "",
             "What reached each silent node: its sockets (delivered to the program listening on the "
             "check's port) and its wire (captured on its interface).", "",
             "| silent node | delivered to its sockets | on its wire | why |", "|---|---:|---:|---|"]
    for node in sorted(wire):
        w = ((c.get("details") or {}).get(node, {}).get("silent") or {}).get("wire") or {}
        where = ", ".join(w.get("interfaces") or [])
        on_wire = f"{wire[node]}" + (f" ({where})" if where else "")
        lines.append(f"| {node} | {received.get(node, 0)} | {on_wire} | {_cell(_why(node, wire[node], received.get(node, 0), group, proto, expanded))} |")
    lines.append("")
    if any(wire.values()):
        lines += [f"A datagram to a group reaches the wire of a node that did not join it when the bridge "
                  f"floods; the node's kernel then drops it, because no socket of the node joined the group "
                  f"(the listeners set IP_MULTICAST_ALL=0), so nothing is delivered. A bridge floods every "
                  f"multicast to every port when it does no {proto} snooping, and a snooping Linux bridge floods "
                  f"too while no querier is on the segment. With `querier: true` on the bridge it learns the "
                  f"members from their {proto} reports and forwards the group to them only; `wire: clean` on "
                  f"the check then makes a datagram on a silent node's wire a failure.", ""]
    if fig.get("wire_attempts"):
        lines += [f"`wire: clean`: {fig['wire_attempts']} attempt(s) over {fig.get('wire_waited', 0)} s "
                  f"(a Linux bridge counts its own querier 10 s after it is switched on, "
                  f"mcast_query_response_interval; the check tries again while a wire is not clean, for up to "
                  f"{fig.get('wire_settle', 12)} s).", ""]
    return lines


def _why(node: str, on_wire: int, delivered: int, group: str | None, proto: str, expanded: dict | None) -> str:
    """Why silent ``node`` got what it got (see :func:`silent_section`)."""
    if delivered:
        return "delivered: the check fails (see its problems)"
    if not on_wire:
        return "nothing on its wire: the bridge forwarded the group to its members only"
    text = f"not delivered: {node} did not join {group or 'the group'}, so its kernel dropped it"
    causes = []
    for b in _bridges_of(node, expanded):
        if not b["mcast_snooping"]:
            causes.append(f"bridge {b['name']} does no {proto} snooping (`igmp_snooping: false`) and floods "
                          f"every multicast")
        elif not b["mcast_querier"]:
            causes.append(f"bridge {b['name']} snoops {proto} but has no querier (`querier: true` is not set), "
                          f"so it floods multicast to every port")
        else:
            causes.append(f"bridge {b['name']} is declared with a querier but flooded: its querier had not "
                          f"taken over yet (10 s after it is switched on), or its settings were changed "
                          f"outside topo (`topo plan` shows that)")
    return text + "; on the wire because " + ("; ".join(causes) if causes else "no snooping bridge is between it and the sender")


def _bridges_of(node: str, expanded: dict | None) -> list[dict]:
    """The bridges (``{name, mcast_snooping, mcast_querier}``) on the segments of ``node``'s
    interfaces in ``expanded``."""
    if not expanded or node not in expanded.get("nodes", {}):
        return []
    segs = {i["segment"] for i in expanded["nodes"][node]["interfaces"]}
    return [dict(b, name=name) for name, b in (expanded.get("bridges") or {}).items() if b["segment"] in segs]


def references(checks: list[dict], expanded: dict | None) -> dict:
    """{sweep check name: the row of its reference check}: for each iperf3 check with two or
    more lengths, the first iperf3 check of the same lab without lengths (iperf3's default
    length: what the path carries at best) between the same client and server, with the same
    protocol and address family, that ran. The pairing needs the expanded lab (``expanded``;
    None: no reference)."""
    if not expanded:
        return {}
    spec = {c.get("name"): c for c in expanded.get("checks") or [] if c.get("type") == "iperf3"}

    def path(c):
        return (c["client"]["node"], c["server"]["node"], c.get("proto"), c.get("family"))
    rows = {c["name"]: c for c in checks if c["type"] == "iperf3" and c.get("name") in spec}
    out = {}
    for name, row in rows.items():
        if len(spec[name].get("lengths") or []) < 2:
            continue
        for other, cand in rows.items():
            runs = (cand.get("figures") or {}).get("runs") or []
            if not spec[other].get("lengths") and path(spec[other]) == path(spec[name]) and len(runs) == 1 \
                    and runs[0].get("bits_per_second") is not None:
                out[name] = cand
                break
    return out


def matched_explained(c: dict) -> str:
    """One sentence saying what "matched/total" of capture row ``c`` counts: the packets seen
    on the wire whose layer stack holds the expected layers in order (and the VNI or GRE
    key, and for tunnelled traffic the traffic's own inner source and destination), against
    every packet captured; and how many the check needs (``min_packets``)."""
    exp = c["expect"]
    what = [f"its layers include {' / '.join(exp['layers'])} in that order"]
    what += [f"its {k.replace('_', ' ').upper() if k == 'vni' else 'GRE key'} is {exp[k]}"
             for k in ("vni", "gre_key") if exp.get(k) is not None]
    if exp.get("inner_src") or exp.get("inner_dst"):
        what.append(f"its innermost source and destination are {exp.get('inner_src') or 'any'} and "
                    f"{exp.get('inner_dst') or 'any'}, the traffic's own (so the replies and other traffic "
                    f"on the same wire do not count)")
    need = exp.get("min_packets", 1)
    return (f"**{c.get('matched', 0)} of the {c.get('total', 0)} packets captured on {c['on']} matched.** "
            f"A packet matches when {'; '.join(what)}. The check needs at least {need} "
            f"matching packet{'s' if need != 1 else ''}.")


def _capture_section(title: str, rows: list[dict], intro: list[str] = (), limit: int = 30) -> list[str]:
    """A capture's packets as a table; tunnelled packets (two or more IP headers) also show
    their innermost source and destination beside the outer ones."""
    inner = any(r.get("inner_src") or r.get("inner_dst") for r in rows)
    head = ["time s", "src", "dst", *(["inner src", "inner dst"] if inner else []), "protocol", "length", "kind",
            "VNI / GRE key"]
    lines = [f"## {title}", "", *intro, "| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if h in ("time s", "length") else "---" for h in head) + "|"]
    for r in rows[:limit]:
        tunnel = r.get("vni") if r.get("vni") is not None else r.get("gre_key")
        cells = [f"{r.get('time', 0):.3f}", r.get("src") or "", r.get("dst") or "",
                 *([r.get("inner_src") or "", r.get("inner_dst") or ""] if inner else []),
                 r.get("protocol") or "", r.get("length") or "", r.get("kind") or "",
                 "" if tunnel is None else tunnel]
        lines.append("| " + " | ".join(str(x) for x in cells) + " |")
    if len(rows) > limit:
        lines.append("| ... | " + " | ".join([f"{len(rows) - limit} more"] + [""] * (len(head) - 2)) + " |")
    return lines + [""]


def _plots(directory: str, checks: list[dict], expanded: dict | None = None) -> dict:
    """PNG plots of iperf3 sweeps (two or more lengths): {check name: path}; each with its
    reference run (:func:`references`) when there is one."""
    out = {}
    refs = references(checks, expanded)
    for c in checks:
        runs = [r for r in (c.get("figures") or {}).get("runs") or [] if r.get("length") and r.get("bits_per_second")]
        if c["type"] != "iperf3" or len(runs) < 2:
            continue
        from topo.plot import throughput_plot
        path = os.path.join(directory, f"throughput-{c['name']}.png")
        ref = refs.get(c["name"])
        out[c["name"]] = throughput_plot(runs, path, f"{c['name']}: {c.get('description', '').split(',')[0]}",
                                         ref["figures"]["runs"][0] if ref else None,
                                         f"reference {ref['name']}" if ref else "reference")
    return out
