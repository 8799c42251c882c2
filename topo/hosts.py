"""Build hosts reached over SSH: the front end's own calls to them (not Ansible's).

``topo exec`` into a node on a remote build host, ``topo doctor --hosts`` and the
reachability check before ``topo apply --hosts`` run one ``ssh`` command per host, with the
host's settings from the build-host inventory (``ansible_host``, ``ansible_user``,
``ansible_port``, ``ansible_ssh_private_key_file``, ``ansible_ssh_common_args``) and the same
ControlMaster/ControlPersist socket directory as Ansible's ssh connection
(``~/.ansible/cp``), so they share its master connections. The remote command is always an
argv, quoted with :func:`shlex.join` for the remote shell.

:func:`probe` asks a host in one SSH call (a Python script on its stdin) what ``topo doctor``
reports: root (or whether ``sudo -n`` makes it root, for a host reached as an ordinary user
with ``ansible_become``), Python version, clock, kernel link types (tried for real in a
scratch namespace, removed at once) and the MTU of the underlay interface.

Every other command runs as root there: behind ``sudo -n -u root --`` when the host's
inventory sets ``ansible_become`` and another ``ansible_user`` (:func:`become_argv`).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from topo.errors import EnvironmentProblem
from topo.inventory import is_remote

#: Where the ControlMaster sockets live: Ansible's control_path_dir (its default, or
#: ANSIBLE_SSH_CONTROL_PATH_DIR), shared with it.
CONTROL_DIR = os.path.expanduser(os.environ.get("ANSIBLE_SSH_CONTROL_PATH_DIR") or "~/.ansible/cp")
#: Link types a build host's kernel must make: nodes (veth), bridges, cross-host stitching (vxlan).
LINK_TYPES = ("veth", "bridge", "vxlan")
#: Smallest Python a build host may have (Ansible modules and topo's module_utils).
MIN_PYTHON = (3, 9)
#: Largest clock difference between controller and build host, in seconds, that topo accepts
#: without a warning (logs, captures and reports of several hosts are compared by time).
MAX_SKEW = 2.0
#: Smallest underlay MTU that carries a 1500-byte frame in VXLAN (1500 + 50 bytes of
#: outer IPv4, UDP and VXLAN headers, RFC 7348 section 5) without lowering the lab's MTU.
VXLAN_OVERHEAD = 50


def ssh_argv(name: str, host: dict, argv: list[str], *, tty: bool = False, become: bool = True) -> list[str]:
    """The ``ssh`` argv that runs ``argv`` on build host ``name`` (its inventory ``host``
    variables), batch mode (never a password prompt), sharing Ansible's master connection
    directory, as root there (``sudo -n`` first when the host is reached as another user
    with ``ansible_become``; ``become=False``: as the login user): the collection's own
    (``api.ssh_argv``), which the check modules use too."""
    from ansible_collections.topo.lab.plugins.module_utils.api import ssh_argv as argv_of
    return argv_of(name, host, argv, tty=tty, become=become)


def become_argv(host: dict) -> list[str]:
    """``sudo -n -u USER --`` for a build host reached as an ordinary user with
    ``ansible_become``, else ``[]`` (``api.become_argv``)."""
    from ansible_collections.topo.lab.plugins.module_utils.api import become_argv as prefix
    return prefix(host)


def run(name: str, host: dict, argv: list[str], *, stdin: str | None = None,
        timeout: float = 60, become: bool = True) -> subprocess.CompletedProcess:
    """Run ``argv`` on build host ``name`` (as root there, see :func:`ssh_argv`); its exit
    code (255: ssh itself failed), stdout and stderr as text."""
    os.makedirs(CONTROL_DIR, mode=0o700, exist_ok=True)
    try:
        return subprocess.run(ssh_argv(name, host, argv, become=become), input=stdin, capture_output=True,
                              text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(argv, 255, "", f"no answer within {timeout:g} s")


_PROBE = r"""
import json, os, pwd, subprocess, sys, time
root = json.loads(sys.argv[2])  # [] or the become prefix (sudo -n -u root --)
out = {"uid": os.geteuid(), "user": pwd.getpwuid(os.geteuid()).pw_name, "become": None,
       "python": list(sys.version_info[:3]), "time": time.time(),
       "kernel": os.uname().release, "links": {}, "mtu": None, "ifname": None}
if root:
    p = subprocess.run(root + ["id", "-u"], capture_output=True, text=True, stdin=subprocess.DEVNULL)
    out["become"] = True if p.stdout.strip() == "0" else (
        (p.stderr.strip().splitlines() or ["exit %d" % p.returncode])[-1])
ns = "topo-doctor-%d" % os.getpid()
if out["become"] in (None, True) and subprocess.run(root + ["ip", "netns", "add", ns],
                                                   capture_output=True).returncode == 0:
    try:
        for kind, extra in (("veth", ["peer", "name", "p1"]), ("bridge", []),
                            ("vxlan", ["id", "1", "dstport", "4789", "local", "127.0.0.1"])):
            p = subprocess.run(root + ["ip", "-n", ns, "link", "add", "t0", "type", kind] + extra,
                               capture_output=True, text=True)
            out["links"][kind] = p.returncode == 0 or p.stderr.strip()
            subprocess.run(root + ["ip", "-n", ns, "link", "del", "t0"], capture_output=True)
    finally:
        subprocess.run(root + ["ip", "netns", "del", ns], capture_output=True)
addr = sys.argv[1]
p = subprocess.run(["ip", "-j", "addr"], capture_output=True, text=True)
for link in json.loads(p.stdout or "[]"):
    if any(a.get("local") == addr for a in link.get("addr_info", [])) or (
            addr == "" and link.get("ifname") != "lo" and link.get("addr_info")):
        out["mtu"], out["ifname"] = link.get("mtu"), link.get("ifname")
        break
print(json.dumps(out))
"""


@dataclass
class Probe:
    """What :func:`probe` learnt of a build host. ``error`` is why it could not be asked
    (unreachable, no python3); the other fields are None then."""

    host: str
    address: str
    error: str = ""
    uid: int | None = None  #: the login user's (before become)
    user: str | None = None  #: the login user's name
    #: None: no become asked (root, or no ``ansible_become``); True: ``sudo -n`` made it root;
    #: else why it did not (sudo's message, e.g. "sudo: a password is required")
    become: bool | str | None = None
    python: tuple | None = None
    skew: float | None = None  #: seconds the host's clock is ahead of the controller's
    kernel: str | None = None
    links: dict = field(default_factory=dict)  #: {link type: True or the kernel's error}
    ifname: str | None = None  #: the underlay interface (carrying the underlay address)
    mtu: int | None = None


def underlay_address(name: str, host: dict) -> str:
    """The address VXLAN leaves a build host from: ``topo_underlay``, else ``ansible_host``
    (else the host's name)."""
    return str(host.get("topo_underlay") or host.get("ansible_host") or name)


def probe(name: str, host: dict) -> Probe:
    """Ask build host ``name`` in one SSH call what :mod:`topo.doctor` reports."""
    address = underlay_address(name, host)
    before = time.time()
    # as the login user (become=False): the script tries the become prefix itself, so a
    # sudo that asks for a password is named rather than taken for an unreachable host
    proc = run(name, host, ["sh", "-c", 'command -v python3 >/dev/null || { echo "no python3" >&2; exit 127; }; '
                            'exec python3 - "$0" "$1"', address, json.dumps(become_argv(host))],
               stdin=_PROBE, timeout=30, become=False)
    after = time.time()
    if proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        return Probe(name, address, error=("unreachable: " if proc.returncode == 255 else "") + why)
    try:
        data = json.loads(proc.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return Probe(name, address, error=f"unexpected answer: {proc.stdout.strip()[:200]}")
    return Probe(name, address, uid=data["uid"], user=data["user"], become=data["become"],
                 python=tuple(data["python"]),
                 skew=data["time"] - (before + after) / 2, kernel=data["kernel"], links=data["links"],
                 ifname=data["ifname"], mtu=data["mtu"])


def probe_all(hosts: dict) -> list[Probe]:
    """:func:`probe` every remote build host of ``hosts`` (``{name: vars}``), in parallel,
    in the inventory's order."""
    remote = [(n, v) for n, v in hosts.items() if is_remote(v)]
    if not remote:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(remote))) as pool:
        return list(pool.map(lambda nv: probe(*nv), remote))


def with_underlay_mtus(hosts: dict) -> dict:
    """``hosts`` (``{name: vars}``) with ``topo_underlay_mtu`` read from each remote build host
    that does not set it: the MTU of the interface holding its underlay address
    (:func:`underlay_address`), asked in one SSH call per host, the hosts in parallel. A host
    that does not answer, or has no interface with that address, keeps the default
    (stitch.DEFAULT_UNDERLAY_MTU); :func:`require_reachable` then names an unreachable one.
    Cross-host links get this MTU minus VXLAN's 50 bytes (topo/expand/stitch.py)."""
    ask = [(n, v) for n, v in hosts.items() if is_remote(v) and "topo_underlay_mtu" not in v]
    if not ask:
        return hosts

    def mtu(nv):
        name, v = nv
        proc = run(name, v, ["ip", "-j", "addr", "show", "to", underlay_address(name, v)], timeout=30)
        try:
            links = json.loads(proc.stdout) if proc.returncode == 0 else []
        except ValueError:
            links = []
        return name, next((link["mtu"] for link in links if isinstance(link.get("mtu"), int)), None)

    with ThreadPoolExecutor(max_workers=min(16, len(ask))) as pool:
        found = dict(pool.map(mtu, ask))
    return {n: (dict(v, topo_underlay_mtu=found[n]) if found.get(n) else v) for n, v in hosts.items()}


def require_reachable(hosts: dict) -> None:
    """EnvironmentProblem (exit 3) naming every remote build host of ``hosts`` that does not
    answer over SSH as root (or with become: ``sudo -n`` must make it root there), before
    anything is built anywhere."""
    remote = [(n, v) for n, v in hosts.items() if is_remote(v)]
    if not remote:
        return

    def ask(nv):
        name, v = nv
        proc = run(name, v, ["id", "-u"], timeout=30)  # behind sudo -n with become
        if proc.returncode != 0:
            why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
            if proc.returncode != 255 and become_argv(v):
                why = f"become failed ({why}): topo needs passwordless sudo for {v.get('ansible_user')} there"
            return f"{name} ({v.get('ansible_host', name)}): {why}"
        if proc.stdout.strip() != "0":
            return f"{name}: " + (f"becomes uid {proc.stdout.strip()} (ansible_become_user), not root"
                                  if become_argv(v) else
                                  f"logs in as uid {proc.stdout.strip()}: not root and no become "
                                  "(set ansible_become: true, with passwordless sudo there)")
        return None

    with ThreadPoolExecutor(max_workers=min(16, len(remote))) as pool:
        problems = [p for p in pool.map(ask, remote) if p]
    if problems:
        raise EnvironmentProblem("build host unreachable, nothing was built: " + "; ".join(problems)
                                 + "; start it or fix its entry in the build-host inventory "
                                 "(check with: topo doctor --hosts INV)")


_NAMESPACES = r"""
import json, os, subprocess, sys
want = json.loads(sys.argv[1]) if len(sys.argv) > 1 else None
out = {}
for ns in sorted(os.listdir("/run/netns") if os.path.isdir("/run/netns") else []):
    if want is not None and ns not in want:
        continue
    p = subprocess.run(["ip", "-n", ns, "-j", "-d", "addr"], capture_output=True, text=True)
    if p.returncode == 0:
        out[ns] = json.loads(p.stdout or "[]")
print(json.dumps(out))
"""


def namespaces_remote(name: str, host: dict, only: list[str] | None = None) -> dict[str, list]:
    """``{namespace: ip -j addr inside it}`` of build host ``name`` (only those of ``only``
    when given), in one SSH call; EnvironmentProblem when the host does not answer."""
    argv = ["python3", "-"] + ([json.dumps(only)] if only is not None else [])
    proc = run(name, host, argv, stdin=_NAMESPACES, timeout=60)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"build host {name} did not answer: "
                                 + (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def lab_namespaces_remote(hosts: dict) -> dict[str, str]:
    """``{"host:namespace": lab}`` of the namespaces marked as a lab's (the ``topo:LAB:NODE``
    alias on their ``lo``) on every remote build host of ``hosts``, read over SSH."""
    from ansible_collections.topo.lab.plugins.module_utils.api import MARKER
    out = {}
    for name, v in hosts.items():
        if not is_remote(v):
            continue
        for ns, links in namespaces_remote(name, v).items():
            for link in links:
                alias = link.get("ifalias") or ""
                if link.get("ifname") == "lo" and alias.startswith(MARKER):
                    out[f"{name}:{ns}"] = alias[len(MARKER):].split(":")[0]
    return out


def observe_remote(expanded: dict, hosts: dict, observe_local) -> list[dict]:
    """``topo show``'s rows (as :func:`topo.show.observe`) for a lab over several build
    hosts: nodes on a local host read by ``observe_local``, nodes on each remote host from
    ``ip -j addr`` in their namespaces there (one SSH call per host)."""
    from topo.inventory import node_build_host
    from topo.show import outside_peers
    outside = outside_peers(expanded)
    by_host: dict[str | None, list[str]] = {}
    for node_name, node in expanded["nodes"].items():
        host = node_build_host(node, hosts)
        by_host.setdefault(host if host in hosts and is_remote(hosts[host]) else None, []).append(node_name)
    rows = {}
    for host, names in by_host.items():
        if host is None:
            local = observe_local({**expanded, "nodes": {n: expanded["nodes"][n] for n in names}})
            rows.update((r["node"], r) for r in local)
            continue
        seen = namespaces_remote(host, hosts[host], [expanded["nodes"][n]["netns"] for n in names])
        for n in names:
            rows[n] = _row(n, expanded["nodes"][n], seen.get(expanded["nodes"][n]["netns"]),
                           expanded.get("autoaddress", True), outside)
    return [rows[n] for n in expanded["nodes"]]


def _row(name: str, node: dict, links: list | None, managed: bool = True,
         outside: dict[tuple[str, str], str] | None = None) -> dict:
    """One ``topo show`` row from ``ip -j addr`` of the node's namespace (None: missing);
    ``managed``, ``outside``: see :func:`topo.show.interface_rows`."""
    from topo.show import interface_rows
    from topo.show import LOOPBACK
    observed = {link["ifname"]: {
        "addresses": sorted(f"{a['local']}/{a['prefixlen']}" for a in link.get("addr_info", [])
                            if (a.get("family") == "inet" or (a.get("family") == "inet6" and a.get("scope") != "link"
                                                              and not a.get("dynamic")))
                            and f"{a['local']}/{a['prefixlen']}" not in LOOPBACK),
        "mtu": link.get("mtu"), "up": "UP" in link.get("flags", [])} for link in links or []}
    return {"node": name, "kind": node["kind"], "netns": node["netns"],
            "state": "up" if links is not None else "missing",
            "interfaces": interface_rows(node, observed, managed, outside=outside)}
