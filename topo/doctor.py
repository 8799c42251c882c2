"""``topo doctor``: can this machine build labs, and what stands in the way?

Each check returns a :class:`Finding` ``(check, status, detail, fix)`` with status ``ok``,
``warn`` (a feature some labs need is missing, or a trap topo avoids) or ``fail`` (nothing
can be built, or the lab given cannot). ``topo apply`` checks what its lab needs
(:func:`topo.usecases.require_docker`) before anything is built, and stops with exit 3 and the fix.

``topo doctor --hosts INV`` adds, per remote build host of the inventory, what
:func:`host_checks` finds (one SSH call per host, in parallel): reachable, root, Python,
kernel link types, underlay MTU, clock skew; and, for a lab given with it, per remote host
that holds docker nodes, whether its dockerd answers and has the nodes' images
(:func:`docker_host_checks`, what ``topo apply`` requires before it builds anything).

The br_netfilter trap: Docker's daemon sets the root namespace's iptables FORWARD policy to
DROP, and with ``br_netfilter`` loaded and ``net.bridge.bridge-nf-call-iptables=1`` frames
crossing a Linux bridge pass through that chain, so a bridge *in the root namespace* silently
drops lab traffic. topo never puts a bridge in the root namespace: every bridge lives in its
own namespace or inside a node, each with its own (empty, ACCEPT) netfilter tables and its own
copy of the bridge-nf sysctls (per namespace since Linux 5.3), so no DOCKER-USER rule is
needed and topo adds none. The check reports the trap so a user who bridges by hand knows.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field

from topo.errors import EnvironmentProblem
from topo.image import DEFAULT_IMAGE

#: Programs and the Debian package that has them; ``needed`` programs fail the doctor.
PROGRAMS = [("ip", "iproute2", True), ("ping", "iputils-ping", False), ("tcpdump", "tcpdump", False),
            ("iperf3", "iperf3", False), ("docker", "docker.io", False)]


@dataclass
class Finding:
    """One check's outcome: ``status`` ok, warn or fail; ``fix`` says what to do (or "")."""

    check: str
    status: str  # ok | warn | fail
    detail: str
    fix: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def run_checks(images: list[str] | None = None, needs_docker: bool = False) -> list[Finding]:
    """Every check, in the order shown. ``images``: node images to look for (default
    topo-node); ``needs_docker``: a lab with docker nodes is at stake, so a missing dockerd
    or image is a failure rather than a warning."""
    out = [_root()]
    out += _programs()
    out += _kernel()
    out += _docker(images or [DEFAULT_IMAGE], needs_docker)
    out.append(br_netfilter_trap())
    return out


def _root() -> Finding:
    if os.geteuid() == 0:
        return Finding("root", "ok", "running as root")
    return Finding("root", "fail", "not running as root; namespaces and interfaces need it", "run topo with sudo")


def _programs() -> list[Finding]:
    out = []
    for program, package, needed in PROGRAMS:
        path = shutil.which(program)
        if path:
            out.append(Finding(f"program {program}", "ok", path))
        else:
            uses = {"ping": "ping checks", "tcpdump": "captures", "iperf3": "throughput checks",
                    "docker": "Ansible's connection to docker nodes"}.get(program, "every lab")
            out.append(Finding(f"program {program}", "fail" if needed else "warn", f"missing; {uses} need it",
                               f"apt-get install {package}"))
    return out


def _kernel() -> list[Finding]:
    from ansible_collections.topo.lab.plugins.module_utils import api as nl
    if os.geteuid() != 0:
        return [Finding("kernel features", "warn", "not probed (needs root)")]
    kinds = ["vxlan", "gre", "gretap", "netem", "tbf"]
    try:
        missing = nl.missing_features(kinds)
    except OSError as exc:
        return [Finding("kernel features", "warn", f"could not probe: {exc}")]
    out = [Finding("kernel veth, bridge, netns", "ok", os.uname().release)]
    for kind in kinds:
        if kind in missing:
            module, option = nl.KERNEL_FEATURES[kind]
            out.append(Finding(f"kernel {kind}", "warn", f"missing ({option}); labs using {kind} cannot run here",
                               f"modprobe {module}, or {nl.ALTERNATIVES[kind]}"))
        else:
            out.append(Finding(f"kernel {kind}", "ok", "available"))
    return out


def docker_client_or_none():
    """A Docker SDK client when a dockerd answers, else None (no error)."""
    try:
        from topo.image import docker_client
        return docker_client(timeout=10)
    except EnvironmentProblem:
        return None


def _docker(images: list[str], needs: bool) -> list[Finding]:
    bad = "fail" if needs else "warn"
    from topo.image import docker_client, image_present
    try:
        client = docker_client(timeout=10)
    except EnvironmentProblem as exc:
        return [Finding("dockerd", bad, str(exc).split(";")[0] + "; docker nodes cannot run",
                        "apt-get install docker.io; then systemctl start docker (or start dockerd)")]
    version = client.version().get("Version", "?")
    out = [Finding("dockerd", "ok", f"Docker {version} answers")]
    for image in images:
        if image_present(client, image):
            out.append(Finding(f"image {image}", "ok", "in the local image store"))
        else:
            fix = ("topo image build --offline   (or topo image build, where a registry is reachable)"
                   if image == DEFAULT_IMAGE else f"docker pull {image}, or build it")
            out.append(Finding(f"image {image}", bad, "not in the local image store", fix))
    return out


#: What a remote build host with docker nodes is asked, as root, in one SSH call
#: (:func:`remote_docker`): the docker CLI (``topo exec`` and the checks run ``docker exec``
#: there), the daemon's version, then each image's presence; one line each.
_DOCKER_PROBE = r"""
command -v docker >/dev/null 2>&1 || { echo "nocli"; exit 0; }
if ! v=$(docker version --format '{{.Server.Version}}' 2>&1); then
  echo "nodaemon $(printf '%s' "$v" | tr '\n' ' ')"; exit 0
fi
echo "daemon $v"
for i; do
  if docker image inspect --format '{{.Id}}' "$i" >/dev/null 2>&1; then echo "image $i"; else echo "noimage $i"; fi
done
"""


@dataclass
class RemoteDocker:
    """What :func:`remote_docker` learnt of the dockerd on build host ``host``: ``version``
    when it answers; else ``problem`` (why not, in words) and ``fix``; ``missing``: the images
    asked for that its image store lacks."""

    host: str
    version: str | None = None
    problem: str = ""
    fix: str = ""
    missing: list = field(default_factory=list)

    def image_fix(self, address: str, user: str) -> str:
        """How to put the missing images there: from this machine's image store over SSH."""
        return "; ".join(f"docker save {i} | ssh {user}@{address} docker load" for i in self.missing) + \
            (" (or build it there: topo image build --offline)" if DEFAULT_IMAGE in self.missing else "")


def remote_docker(name: str, host: dict, images: list[str]) -> RemoteDocker:
    """Ask build host ``name`` (inventory variables ``host``) over SSH, as root, whether its
    dockerd answers and which of ``images`` it lacks (:data:`_DOCKER_PROBE`)."""
    from topo import hosts as remote
    proc = remote.run(name, host, ["sh", "-c", _DOCKER_PROBE, "sh", *images], timeout=60)
    found = RemoteDocker(name)
    if proc.returncode != 0:
        found.problem = "it did not answer: " + (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        found.fix = "check it with: topo doctor --hosts INV"
        return found
    for line in proc.stdout.splitlines():
        word, _, rest = line.partition(" ")
        if word == "nocli":
            found.problem = "Docker is not installed (no docker command)"
            found.fix = f"install and start Docker on {name}: apt-get install docker.io"
        elif word == "nodaemon":
            found.problem = f"no Docker daemon answers ({rest.strip()[:200] or 'docker version failed'})"
            found.fix = f"start dockerd on {name}: systemctl start docker"
        elif word == "daemon":
            found.version = rest.strip()
        elif word == "noimage":
            found.missing.append(rest.strip())
    return found


def remote_docker_all(hosts: dict, images: dict[str, list[str]]) -> list[RemoteDocker]:
    """:func:`remote_docker` of every build host named in ``images`` (``{host: [image]}``;
    ``hosts``: ``{name: inventory variables}``), in parallel, in ``images``' order."""
    if not images:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(images))) as pool:
        return list(pool.map(lambda h: remote_docker(h, hosts[h], images[h]), images))


def docker_host_checks(hosts: dict, images: dict[str, list[str]]) -> list[Finding]:
    """Findings ``host H: dockerd`` and ``host H: image I`` for every remote build host that
    holds docker nodes (``images``: ``{host: [the images of its docker nodes]}``)."""
    out = []
    for d in remote_docker_all(hosts, images):
        v = hosts[d.host]
        label = f"host {d.host}"
        if d.version is None:
            out.append(Finding(f"{label}: dockerd", "fail", f"{d.problem}; its docker nodes cannot run", d.fix))
            continue
        out.append(Finding(f"{label}: dockerd", "ok", f"Docker {d.version} answers"))
        for image in images[d.host]:
            if image in d.missing:
                out.append(Finding(f"{label}: image {image}", "fail", "not in its image store",
                                   RemoteDocker(d.host, missing=[image]).image_fix(
                                       v.get("ansible_host", d.host), v.get("ansible_user", "root"))))
            else:
                out.append(Finding(f"{label}: image {image}", "ok", "in its image store"))
    return out


def remote_docker_problems(hosts: dict, images: dict[str, list[str]], nodes: dict[str, list[str]]) -> list[str]:
    """What stops the docker nodes of remote build hosts, one sentence per host that has a
    problem (its name, what is wrong, its docker nodes and the fix); ``[]`` when every host of
    ``images`` (``{host: [image]}``) answers with all its images. ``nodes``: ``{host: [docker
    node]}``, named in the sentences."""
    out = []
    for d in remote_docker_all(hosts, images):
        v = hosts[d.host]
        few = ", ".join(nodes[d.host][:3]) + (", ..." if len(nodes[d.host]) > 3 else "")
        if d.version is None:
            out.append(f"build host {d.host}: {d.problem}, and docker nodes are placed there ({few}); {d.fix}")
        elif d.missing:
            out.append(f"build host {d.host}: image {', '.join(d.missing)} is not in its image store "
                       f"(docker nodes {few}); put it there: "
                       f"{d.image_fix(v.get('ansible_host', d.host), v.get('ansible_user', 'root'))}")
    return out


def br_netfilter_trap() -> Finding:
    """The br_netfilter trap in this (the root) namespace; see the module docstring."""
    try:
        with open("/proc/sys/net/bridge/bridge-nf-call-iptables") as f:
            call = f.read().strip() == "1"
    except OSError:
        return Finding("br_netfilter", "ok", "not loaded: bridged frames never reach iptables")
    policy = forward_policy()
    if call and policy == "DROP":
        return Finding("br_netfilter", "warn",
                       "bridge-nf-call-iptables=1 and the FORWARD policy is DROP (Docker sets it): a bridge "
                       "in the root namespace drops traffic silently. topo's bridges live in the lab's own "
                       "namespaces and are not affected; topo adds no rule",
                       "for a bridge you make by hand in the root namespace: "
                       "iptables -I DOCKER-USER -i BRIDGE -o BRIDGE -j ACCEPT")
    return Finding("br_netfilter", "ok", f"bridge-nf-call-iptables={'1' if call else '0'}, FORWARD policy "
                                         f"{policy or 'unknown'}: bridged traffic is not dropped")


def forward_policy() -> str | None:
    """The iptables FORWARD chain's policy in this namespace (``ACCEPT``/``DROP``), read with
    ``iptables -S FORWARD``; None when iptables is missing or fails."""
    exe = shutil.which("iptables")
    if exe is None:
        return None
    proc = subprocess.run([exe, "-w", "5", "-S", "FORWARD"], capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts[:2] == ["-P", "FORWARD"] and len(parts) > 2:
            return parts[2]
    return None


def host_checks(hosts: dict) -> list[Finding]:
    """Findings for every remote build host of ``hosts`` (``{name: vars}``, a build-host
    inventory's topo_hosts), from :func:`topo.hosts.probe_all`: reachable over SSH, root (or
    become), Python >= 3.9, the link types a lab needs (veth, bridge, vxlan, tried for real in
    a scratch namespace), the underlay MTU (below 1550 a 1500-byte frame no longer fits in
    VXLAN) and the clock's skew from the controller's. An unreachable host gives one failed
    row (the rest cannot be asked)."""
    from topo import hosts as remote
    out = []
    for p in remote.probe_all(hosts):
        v = hosts[p.host]
        label = f"host {p.host}"
        if p.error:
            fix = (f"start it / its sshd, or fix ansible_host, ansible_user and the key in the inventory; "
                   f"try: ssh {v.get('ansible_user', 'root')}@{v.get('ansible_host', p.host)} true")
            if not p.error.startswith("unreachable"):
                fix = "apt-get install python3 on it" if "python3" in p.error else fix
            out.append(Finding(f"{label}: reachable", "fail", p.error, fix))
            continue
        out.append(Finding(f"{label}: reachable", "ok", f"ssh to {v.get('ansible_host', p.host)}, kernel {p.kernel}"))
        out.append(_root_finding(label, p, v))
        if p.become not in (None, True):
            continue  # the rest needs root
        version = ".".join(map(str, p.python))
        if tuple(p.python) >= remote.MIN_PYTHON:
            out.append(Finding(f"{label}: python", "ok", f"python3 {version}"))
        else:
            out.append(Finding(f"{label}: python", "fail", f"python3 {version}; Ansible and topo need >= 3.9",
                               "install python3 >= 3.9 (Debian 11+, Ubuntu 20.04+)"))
        if not p.links:
            out.append(Finding(f"{label}: kernel links", "fail", "could not make a scratch namespace",
                               "log in as root; iproute2 (ip netns) must be installed"))
        else:
            bad = {k: why for k, why in p.links.items() if why is not True}
            if bad:
                out.append(Finding(f"{label}: kernel links", "fail", "; ".join(f"{k}: {why}" for k, why in bad.items()),
                                   "modprobe " + " ".join(sorted(bad)) + " (or a kernel with them)"))
            else:
                out.append(Finding(f"{label}: kernel links", "ok", ", ".join(p.links)))
        if p.mtu is None:
            out.append(Finding(f"{label}: underlay MTU", "fail", f"{p.address} is not an address of the host",
                               "set topo_underlay (or ansible_host) to the address VXLAN should leave from"))
        elif p.mtu < 1500 + remote.VXLAN_OVERHEAD:
            out.append(Finding(f"{label}: underlay MTU", "warn",
                               f"MTU {p.mtu} on {p.ifname}: cross-host links get MTU {p.mtu - remote.VXLAN_OVERHEAD}",
                               f"for 1500 across hosts: ip link set {p.ifname} mtu 1550 (every host of the underlay)"))
        else:
            out.append(Finding(f"{label}: underlay MTU", "ok", f"MTU {p.mtu} on {p.ifname}"))
        if abs(p.skew) <= remote.MAX_SKEW:
            out.append(Finding(f"{label}: clock", "ok", f"{p.skew:+.2f} s from this machine"))
        else:
            out.append(Finding(f"{label}: clock", "warn", f"{p.skew:+.1f} s from this machine; logs and "
                               "captures of several hosts do not line up", "sync it: apt-get install chrony"))
    return out


def _root_finding(label: str, p, v: dict) -> Finding:
    """The ``root`` row of build host probe ``p`` (inventory vars ``v``): root at login, root
    through passwordless sudo (``ansible_become``: topo's own SSH commands run ``sudo -n``),
    or what is missing with the fix."""
    user = p.user or v.get("ansible_user") or f"uid {p.uid}"
    sudoers = f"echo '{user} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/topo on it"
    if p.uid == 0:
        return Finding(f"{label}: root", "ok", "uid 0")
    if p.become is None:
        return Finding(f"{label}: root", "fail", f"logs in as {user} (uid {p.uid}): not root and no become",
                       "in the inventory: ansible_user: root, or ansible_become: true (with passwordless "
                       f"sudo for {user}: {sudoers})")
    if p.become is True:
        method = str(v.get("ansible_become_method") or "sudo")
        if method != "sudo":
            return Finding(f"{label}: root", "fail", f"ansible_become_method {method}: topo's own commands "
                           "(checks, exec, show, capture) become root with sudo", "ansible_become_method: sudo")
        return Finding(f"{label}: root", "ok", f"become: sudo as {user}")
    return Finding(f"{label}: root", "fail", f"logs in as {user}; become: sudo -n failed: {p.become}",
                   f"passwordless sudo for {user} (topo's own commands never type a password): {sudoers}")
