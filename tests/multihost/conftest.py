"""Simulated build hosts for the multi-host tests (DESIGN.md 7, issue 12).

One session fixture, :func:`sim`, makes on this one machine:

* three build hosts ``bh1``..``bh3`` (build hosts and nodes share Ansible's host names, so
  not h1..): containers of the ``topo-host`` image (sshd, python3,
  iproute2, no pyroute2; built offline by ``topo image build --host --offline`` when
  missing), each with its own network and mount namespace (so its own ``/run/netns``), run
  with ``--network none``, NET_ADMIN and SYS_ADMIN, AppArmor and seccomp unconfined and
  ``systempaths=unconfined`` (so topo can write ``net.*`` sysctls in the namespaces it makes
  there; never ``--privileged``), labelled ``topo.test=multihost``;
* the underlay: a bridge ``br0`` in a test namespace (:data:`UNDERLAY_NS`, never the root
  namespace), with a veth into each host (its ``eth0``, 192.0.2.11..13/24, TEST-NET-1) and
  one into the controller namespace (:data:`CONTROLLER_NS`, 192.0.2.1/24);
* an SSH key made for the session (ssh-keygen), authorized for root on every host; build-host
  inventories naming the hosts (``one`` = bh1 alone, ``three`` = all three) with the SSH
  options topo's inventory also sets (pipelining, ControlPersist);
* on bh2 two ordinary users with the same key: :data:`BECOME_USER` with passwordless sudo
  (``/etc/sudoers.d``) and :data:`PLAIN_USER` with no sudo rights, for build hosts reached
  with ``ansible_become`` (:meth:`Sim.write_inventory`'s ``users``).

Opt-in, for the test that needs it (it costs about 15 s): :meth:`Sim.add_docker_host`, one
more host on the underlay that runs its own dockerd (see there), removed again by
:meth:`Sim.remove_host`.

:meth:`Sim.topo` runs the real CLI inside the controller namespace, so topo and Ansible reach
the hosts over real SSH. Teardown closes the SSH master connections and removes the
containers and both namespaces, also after a failure; containers left by a crashed earlier
run (found by their label) are removed first.
"""

from __future__ import annotations

import glob
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

import pytest

from tests.conftest import ROOT

HOST_IMAGE = "topo-host:latest"
LABEL = {"topo.test": "multihost"}
UNDERLAY_NS = "topo-mhul"
CONTROLLER_NS = "topo-mhctl"
CONTROLLER_ADDR = "192.0.2.1"
HOSTS = {f"bh{i}": f"192.0.2.{10 + i}" for i in (1, 2, 3)}
#: Ordinary users on bh2 (same key as root): one with passwordless sudo, one without sudo rights.
BECOME_USER = "topo"
PLAIN_USER = "plain"
#: Programs the checks run on a build host beyond what the topo-host image has (a real
#: build host installs them: apt-get install tcpdump iperf3); :meth:`Sim.give_tools`.
TOOLS = ("/usr/bin/tcpdump", "/usr/bin/iperf3")
#: ssh options of the test inventories: the hosts' keys are new every session.
SSH_COMMON = "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
#: The programs a simulated host runs its own dockerd with (:meth:`Sim.add_docker_host`),
#: bind-mounted read-only from this machine (Debian 12's docker.io, like the image's Debian).
DOCKER_PROGRAMS = ("dockerd", "containerd", "containerd-shim-runc-v2", "runc", "docker", "docker-init")
#: The inner dockerd: no bridge, no iptables or forwarding (topo's containers have no Docker
#: network), vfs storage (no overlay inside overlay), its data on a tmpfs of the host
#: container, its containers' cgroups under ``/<host container>`` (:meth:`Sim.remove_host`
#: removes that directory).
DOCKERD = ("dockerd --storage-driver=vfs --bridge=none --iptables=false --ip6tables=false "
           "--ip-forward=false --data-root /var/lib/docker --cgroup-parent=/{parent}")


def sh(*argv, check=True, **kw):
    """Run ``argv``; its CompletedProcess (text), AssertionError with stderr when ``check``."""
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, argv))} exited {proc.returncode}: "
                             f"{proc.stdout.strip()[-3000:]}\n{proc.stderr.strip()[-3000:]}")
    return proc


class Sim:
    """The simulated hosts (see the module docstring). ``inventory[name]`` are build-host
    inventory paths (``one``, ``three``); ``containers[host]`` the Docker containers."""

    def __init__(self, client, workdir: str):
        self.client = client
        self.workdir = workdir
        self.home = os.path.join(workdir, "home")
        self.control_dir = tempfile.mkdtemp(prefix="mhcp-")  # short: ControlPath sockets (108 bytes)
        self.key = os.path.join(workdir, "id_ed25519")
        self.containers: dict = {}
        self.inventory: dict[str, str] = {}
        self.image_seconds: float | None = None
        #: underlay address of every host, :data:`HOSTS` and those added later
        self.addresses: dict[str, str] = dict(HOSTS)

    # ------------------------------------------------------------------ commands

    def env(self) -> dict:
        return dict(os.environ, TOPO_HOME=self.home, ANSIBLE_SSH_CONTROL_PATH_DIR=self.control_dir)

    def controller(self, *argv, check=True, timeout=600) -> subprocess.CompletedProcess:
        """Run ``argv`` in the controller namespace (cwd: the repository)."""
        return sh("ip", "netns", "exec", CONTROLLER_NS, *argv, check=check, cwd=ROOT, env=self.env(),
                  timeout=timeout)

    def topo(self, *args, check=True, timeout=900) -> subprocess.CompletedProcess:
        """The real ``topo`` CLI in the controller namespace, with the session's TOPO_HOME."""
        return self.controller(sys.executable, "-m", "topo", *args, check=check, timeout=timeout)

    def topo_json(self, *args, **kw):
        return json.loads(self.topo(args[0], "--json", *args[1:], **kw).stdout)

    def on_host(self, host: str, *argv) -> str:
        """Run ``argv`` inside host container ``host`` (docker exec); its stdout, AssertionError
        when it fails."""
        code, out = self.containers[host].exec_run([str(a) for a in argv], demux=True)
        stdout, stderr = (out or (b"", b""))
        if code != 0:
            raise AssertionError(f"{host}: {argv} exited {code}: {(stderr or b'').decode()}")
        return (stdout or b"").decode()

    def netns_on(self, host: str) -> list[str]:
        """Names under /run/netns of build host ``host``."""
        return sorted(line.split()[0] for line in self.on_host(host, "ip", "netns", "list").splitlines()
                      if line.strip())

    # ------------------------------------------------------------------ set-up

    def start(self) -> None:
        os.makedirs(self.home, exist_ok=True)
        self.image_seconds = ensure_image(self.client)
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "topo-multihost-test", "-f", self.key)
        keys = os.path.join(self.workdir, "ssh")
        os.makedirs(keys, mode=0o700)
        shutil.copyfile(self.key + ".pub", os.path.join(keys, "authorized_keys"))
        os.chmod(os.path.join(keys, "authorized_keys"), 0o600)
        api = self.client.api
        for host in HOSTS:
            config = api.create_host_config(
                network_mode="none", cap_add=["NET_ADMIN", "SYS_ADMIN"],
                security_opt=["apparmor=unconfined", "seccomp=unconfined"], binds={keys: {"bind": "/root/.ssh",
                                                                                       "mode": "ro"}})
            # what `docker run --security-opt systempaths=unconfined` sends (the SDK has no
            # parameter for it): /proc/sys writable, so net.* sysctls can be set in the
            # namespaces topo makes inside the host
            config.update(MaskedPaths=[], ReadonlyPaths=[])
            made = api.create_container(HOST_IMAGE, name=f"topo-mh-{host}", hostname=host, labels=LABEL,
                                        host_config=config, volumes=["/root/.ssh"])
            api.start(made["Id"])
            self.containers[host] = self.client.containers.get(made["Id"])
        sh("ip", "netns", "add", UNDERLAY_NS)
        sh("ip", "netns", "add", CONTROLLER_NS)
        ul = ["ip", "-n", UNDERLAY_NS]
        sh(*ul, "link", "add", "br0", "type", "bridge")
        sh(*ul, "link", "set", "br0", "up")
        sh(*ul, "link", "add", "ul-ctl", "type", "veth", "peer", "name", "eth0", "netns", CONTROLLER_NS)
        ctl = ["ip", "-n", CONTROLLER_NS]
        sh(*ctl, "addr", "add", f"{CONTROLLER_ADDR}/24", "dev", "eth0")
        sh(*ctl, "link", "set", "eth0", "up")
        sh(*ctl, "link", "set", "lo", "up")
        sh(*ul, "link", "set", "ul-ctl", "master", "br0", "up")
        for host in HOSTS:
            self.plug(host)
        self.add_users("bh2")
        self.inventory["one"] = self.write_inventory("one", ["bh1"])
        self.inventory["three"] = self.write_inventory("three", list(HOSTS))
        self.wait_for_ssh(list(HOSTS))

    def plug(self, host: str) -> None:
        """Join host container ``host`` to the underlay: a veth from ``br0`` to its ``eth0``,
        which gets its address (:attr:`addresses`)."""
        ul = ["ip", "-n", UNDERLAY_NS]
        c = self.containers[host]
        c.reload()
        pid = c.attrs["State"]["Pid"]
        sh(*ul, "link", "add", f"ul-{host}", "type", "veth", "peer", "name", "eth0", "netns", pid)
        sh(*ul, "link", "set", f"ul-{host}", "master", "br0", "up")
        self.on_host(host, "ip", "addr", "add", f"{self.addresses[host]}/24", "dev", "eth0")
        self.on_host(host, "ip", "link", "set", "eth0", "up")
        self.on_host(host, "ip", "link", "set", "lo", "up")

    def add_docker_host(self, host: str, addr: str, image: str = "topo-node:latest") -> None:
        """One more build host ``host`` (underlay address ``addr``) that runs its own dockerd,
        with ``image`` loaded into it (``docker save | docker load``, about 10 s).

        The runtime here refuses ``--privileged``; what a dockerd inside a container needs
        instead (measured): every capability but SYS_RESOURCE, AppArmor, seccomp and the
        masked /proc paths off, the cgroup hierarchy writable (``/sys/fs/cgroup`` bound
        read-write: the inner dockerd puts its containers under ``/topo-mh-HOST``, which
        :meth:`remove_host` removes), exec allowed on its data directory (a tmpfs). The
        programs (:data:`DOCKER_PROGRAMS`) are this machine's, bound read-only at the same
        paths; the shared libraries they need that the image lacks are copied in."""
        which = {p: shutil.which(p) for p in DOCKER_PROGRAMS}
        missing = sorted(p for p, path in which.items() if path is None)
        if missing:
            pytest.fail(f"a simulated host with its own dockerd needs {', '.join(missing)} on this machine "
                        "(apt-get install docker.io)", pytrace=False)
        binds = {os.path.join(self.workdir, "ssh"): {"bind": "/root/.ssh", "mode": "ro"},
                 "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"}}
        binds.update({os.path.realpath(path): {"bind": path, "mode": "ro"} for path in which.values()})
        api = self.client.api
        config = api.create_host_config(
            network_mode="none", cap_add=["ALL"], cap_drop=["SYS_RESOURCE"],
            security_opt=["apparmor=unconfined", "seccomp=unconfined"], binds=binds,
            tmpfs={"/var/lib/docker": "exec"})
        config.update(MaskedPaths=[], ReadonlyPaths=[])  # systempaths=unconfined, as in start()
        name = f"topo-mh-{host}"
        made = api.create_container(HOST_IMAGE, name=name, hostname=host, labels=LABEL, host_config=config,
                                    volumes=[b["bind"] for b in binds.values()])
        api.start(made["Id"])
        self.containers[host] = self.client.containers.get(made["Id"])
        self.addresses[host] = addr
        self.copy_libraries([host], sorted(which.values()))
        self.plug(host)
        self.start_dockerd(host)
        with subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE) as save:
            sh("docker", "exec", "-i", name, "docker", "load", stdin=save.stdout, timeout=300)
        self.wait_for_ssh([host])

    def start_dockerd(self, host: str, seconds: float = 30) -> None:
        """Start the dockerd of a host made by :meth:`add_docker_host` (its log:
        /var/log/dockerd.log there) and wait until it answers."""
        command = DOCKERD.format(parent=self.containers[host].name)
        self.containers[host].exec_run(["sh", "-c", f"exec {command} >/var/log/dockerd.log 2>&1"], detach=True)
        deadline = time.monotonic() + seconds
        while self.containers[host].exec_run(["docker", "version"]).exit_code != 0:
            if time.monotonic() > deadline:
                log = self.containers[host].exec_run(["tail", "-20", "/var/log/dockerd.log"]).output.decode()
                raise AssertionError(f"the dockerd of {host} does not answer: {log}")
            time.sleep(0.3)

    def stop_dockerd(self, host: str, seconds: float = 30) -> None:
        """Stop that dockerd by its PID (/var/run/docker.pid there) and wait until it is gone."""
        self.on_host(host, "sh", "-c", "kill $(cat /var/run/docker.pid)")
        deadline = time.monotonic() + seconds
        while self.containers[host].exec_run(["test", "-e", "/var/run/docker.pid"]).exit_code == 0:
            if time.monotonic() > deadline:
                raise AssertionError(f"the dockerd of {host} did not stop")
            time.sleep(0.3)

    def remove_host(self, host: str) -> None:
        """Remove a host added by :meth:`add_docker_host`: close the SSH master connections,
        remove its container (its inner dockerd and containers die with it) and its veth,
        and the cgroups its dockerd made (:func:`remove_cgroups`)."""
        self.close_masters()
        c = self.containers.pop(host)
        c.remove(force=True)
        remove_cgroups(c.name)
        sh("ip", "-n", UNDERLAY_NS, "link", "del", f"ul-{host}", check=False)
        self.addresses.pop(host, None)

    def add_users(self, host: str) -> None:
        """:data:`BECOME_USER` (passwordless sudo) and :data:`PLAIN_USER` (no sudo) on ``host``,
        both logging in with the session's key."""
        for user in (BECOME_USER, PLAIN_USER):
            # '*': no password at all (not locked), so sshd lets the key in
            self.on_host(host, "useradd", "--create-home", "--shell", "/bin/sh", "--password", "*", user)
            self.on_host(host, "install", "-d", "-m", "0700", "-o", user, "-g", user, f"/home/{user}/.ssh")
            self.on_host(host, "install", "-m", "0600", "-o", user, "-g", user, "/root/.ssh/authorized_keys",
                         f"/home/{user}/.ssh/authorized_keys")
        self.on_host(host, "sh", "-c", f"echo '{BECOME_USER} ALL=(ALL) NOPASSWD: ALL' > /etc/sudoers.d/topo-test "
                     "&& chmod 0440 /etc/sudoers.d/topo-test && visudo -c -q")

    def host_vars(self, host: str, user: str = "root", become: bool | None = None) -> dict:
        """Inventory variables of build host ``host``, logging in as ``user``; ``become``:
        ``ansible_become`` (None: not set)."""
        out = {"ansible_host": self.addresses[host], "ansible_user": user, "ansible_ssh_private_key_file": self.key,
               "ansible_ssh_common_args": SSH_COMMON}
        return out if become is None else dict(out, ansible_become=become)

    def write_inventory(self, name: str, hosts: list[str], users: dict | None = None) -> str:
        """A build-host inventory ``name``.yml of ``hosts``; ``users``: ``{host: (user,
        become)}`` for hosts not reached as root (:meth:`host_vars`)."""
        users = users or {}
        path = os.path.join(self.workdir, f"{name}.yml")
        with open(path, "w") as f:
            json.dump({"all": {"children": {"topo_hosts": {"hosts": {
                h: self.host_vars(h, *users.get(h, ("root", None))) for h in hosts}}}}}, f)
        return path

    def wait_for_ssh(self, hosts: list[str], seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        for host in hosts:
            while True:
                proc = self.controller("ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=2", *SSH_COMMON.split(),
                                       "-i", self.key, f"root@{self.addresses[host]}", "true", check=False, timeout=30)
                if proc.returncode == 0:
                    break
                if time.monotonic() > deadline:
                    raise AssertionError(f"sshd of {host} does not answer: {proc.stderr.strip()}; "
                                         f"logs: {self.containers[host].logs()[-500:]!r}")
                time.sleep(0.3)

    def give_tools(self) -> None:
        """Copy :data:`TOOLS` and the shared libraries they need that a host lacks from this
        machine (Debian 12, like the image) into every simulated host, and add the ``tcpdump``
        user tcpdump drops to. Files a host has are never overwritten."""
        self.copy_libraries(list(HOSTS), list(TOOLS), with_programs=True)
        for host in HOSTS:
            self.on_host(host, "sh", "-c", "grep -q '^tcpdump:' /etc/passwd || { echo 'tcpdump:x:990:990::"
                         "/nonexistent:/usr/sbin/nologin' >> /etc/passwd; echo 'tcpdump:x:990:' >> /etc/group; }")

    def copy_libraries(self, hosts: list[str], programs: list[str], *, with_programs: bool = False) -> None:
        """Copy into every host of ``hosts`` the shared libraries ``programs`` (paths on this
        machine) need (``ldd``) that the host lacks, and ``with_programs`` the programs
        themselves. Files a host has are never overwritten."""
        needed = set(programs) if with_programs else set()
        for tool in programs:
            for line in sh("ldd", tool, check=False).stdout.splitlines():
                parts = line.split()
                if "=>" in parts and len(parts) > 2 and parts[2].startswith("/"):
                    needed.add(parts[2])
        for host in hosts:
            missing = self.on_host(host, "sh", "-c", 'for f in "$@"; do [ -e "$f" ] || echo "$f"; done', "sh",
                                   *sorted(needed)).split()
            if missing:
                buf = io.BytesIO()
                with tarfile.open(fileobj=buf, mode="w") as tar:
                    for path in missing:
                        tar.add(os.path.realpath(path), arcname=path.lstrip("/"))
                self.containers[host].put_archive("/", buf.getvalue())

    def freeze(self, host: str) -> None:
        """Make ``host`` stop answering (its container paused: the machine is frozen, its
        address silent), after closing the SSH master connections, which would hang on it."""
        self.close_masters()
        self.containers[host].pause()

    def thaw(self, host: str) -> None:
        """Undo :meth:`freeze`."""
        self.containers[host].unpause()

    # ------------------------------------------------------------------ teardown

    def close_masters(self) -> None:
        """End the SSH master connections (ControlPersist) of topo, Ansible and the tests."""
        for sock in os.listdir(self.control_dir) if os.path.isdir(self.control_dir) else []:
            sh("ip", "netns", "exec", CONTROLLER_NS, "ssh", "-o", f"ControlPath={os.path.join(self.control_dir, sock)}",
               "-O", "exit", "x", check=False, timeout=10)

    def close(self) -> None:
        self.close_masters()
        shutil.rmtree(self.control_dir, ignore_errors=True)
        remove_leftovers(self.client)


def remove_leftovers(client) -> None:
    """Remove every container labelled as this fixture's (and the cgroups of the dockerd one
    of them ran, :func:`remove_cgroups`) and both test namespaces."""
    for c in client.containers.list(all=True, filters={"label": [f"{k}={v}" for k, v in LABEL.items()]}):
        if c.status == "paused":
            c.unpause()
        c.remove(force=True)
        remove_cgroups(c.name)
    for ns in (UNDERLAY_NS, CONTROLLER_NS):
        if os.path.exists(os.path.join("/run/netns", ns)):
            sh("ip", "netns", "del", ns, check=False)


def cgroups_of(parent: str) -> list[str]:
    """The cgroup directories (every hierarchy, v1 or v2) named ``parent`` under
    /sys/fs/cgroup: where the dockerd of host container ``parent`` put its containers."""
    return sorted(glob.glob(f"/sys/fs/cgroup/{parent}") + glob.glob(f"/sys/fs/cgroup/*/{parent}"))


def remove_cgroups(parent: str, seconds: float = 10) -> None:
    """Remove the cgroup directories :func:`cgroups_of` ``parent``, deepest first (a cgroup
    is removed with rmdir once its processes are gone: retried for ``seconds`` while the
    killed containers' processes exit). AssertionError when one stays."""
    deadline = time.monotonic() + seconds
    while True:
        busy = []
        for top in cgroups_of(parent):
            for folder, _dirs, _files in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
                try:
                    os.rmdir(folder)
                except OSError as exc:
                    busy.append(f"{folder}: {exc.strerror}")
        if not busy:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"cgroups left by the dockerd of {parent}: {busy[:5]}")
        time.sleep(0.2)


def ensure_image(client) -> float | None:
    """Build ``topo-host`` offline when it is missing or stale (built from another recipe:
    its ``topo.image.recipe`` label differs, e.g. an image from before sudo was in it); the
    seconds it took (None: cached)."""
    from topo.image import image_current
    if image_current(client, HOST_IMAGE, "host"):
        return None
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "topo", "image", "build", "--host", "--offline"], cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        pytest.fail(f"topo image build --host --offline failed: {proc.stderr[-800:]}", pytrace=False)
    return time.monotonic() - start


@pytest.fixture(scope="session")
def sim(docker_client, tmp_path_factory):
    """The simulated build hosts, underlay and controller (see :class:`Sim`), for the session."""
    if shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
        pytest.fail("the multi-host tests need OpenSSH's client: apt-get install openssh-client", pytrace=False)
    remove_leftovers(docker_client)
    s = Sim(docker_client, str(tmp_path_factory.mktemp("multihost")))
    try:
        s.start()
        yield s
    finally:
        s.close()
