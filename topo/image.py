"""Images topo builds: ``topo image build [--host]``.

* the node image for ``kind: docker`` nodes, :data:`DEFAULT_IMAGE`: Debian bookworm with the
  programs topo's checks run inside a node (:data:`PACKAGES`);
* the build-host image, :data:`HOST_IMAGE`: what a simulated build host of the multi-host
  tests (``tests/multihost``) runs - sshd, python3, iproute2 and sudo (:data:`HOST_PACKAGES`;
  sudo for a build host reached as an ordinary user with ``ansible_become``), deliberately
  without pyroute2 (topo brings it to its build hosts); each container makes its own SSH
  host keys when it starts (:data:`HOST_CMD`). Measured on the 2-core reference machine
  (offline, while other builds and tests ran: load 8): 215 s wall, 64 s of CPU, 164 MB.

Every image topo builds carries its recipe's digest (:func:`recipe`: suite, packages, main
process) in the label :data:`RECIPE_LABEL`, so an image built from an older recipe is known
as stale (:func:`image_current`): the multi-host tests' fixture and ``.ci/run`` rebuild
``topo-host`` when its label differs, rather than testing against a host without sudo.

Two ways to build either image:

* from the Dockerfile shipped in ``topo/images/node`` (``topo/images/host``) (needs a reachable registry for
  ``debian:bookworm-slim``), with the Docker SDK;
* ``offline``: from Debian packages alone, for hosts that reach an apt mirror but no
  registry - ``debootstrap --variant=minbase --include=PACKAGES``, apt caches cleaned, the
  tree imported with ``docker import`` (the SDK's ``import_image_from_file``). Measured on
  the 2-core reference machine: about 55 s and 169 MB.

Errors are :class:`~topo.errors.EnvironmentProblem` (exit 3) naming the fix.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from typing import Callable

from topo.errors import EnvironmentProblem
from topo.model import DEFAULT_IMAGE  # noqa: F401 (its one home is the model)

#: What a node needs: iproute2 (ip), iputils-ping (ping checks), iperf3 (throughput checks),
#: python3 (Ansible modules run inside docker nodes), tcpdump (captures).
PACKAGES = ("iproute2", "iputils-ping", "iperf3", "python3", "tcpdump")
SUITE = "bookworm"
DOCKERFILE_DIR = os.path.join(os.path.dirname(__file__), "images", "node")
#: A node's main process when the lab sets no ``cmd``: it only keeps the container alive.
DEFAULT_CMD = ["sleep", "infinity"]
#: Label on topo-built images; its value is the image's kind (``node`` or ``host``).
IMAGE_LABEL = "topo.image"
#: Label on topo-built images: the digest of the recipe they were built from (:func:`recipe`).
RECIPE_LABEL = "topo.image.recipe"

#: The simulated build host's image (tests/multihost): a machine with only what a build host
#: needs (sshd, root or become, python3 >= 3.9) plus iproute2 (ip netns) and ping; sudo for
#: the host the tests reach as an ordinary user with ``ansible_become``; no pyroute2.
HOST_IMAGE = "topo-host:latest"
HOST_PACKAGES = ("iproute2", "iputils-ping", "openssh-server", "python3", "sudo")
#: A build host's main process: fresh SSH host keys (the image ships none), then sshd in the
#: foreground, logging to stderr (``docker logs``).
HOST_CMD = ["/bin/sh", "-c", "ssh-keygen -A >/dev/null && mkdir -p /run/sshd && exec /usr/sbin/sshd -D -e"]
#: Per kind: (Debian packages, main process, Dockerfile directory).
KINDS = {
    "node": (PACKAGES, DEFAULT_CMD, DOCKERFILE_DIR),
    "host": (HOST_PACKAGES, HOST_CMD, os.path.join(os.path.dirname(__file__), "images", "host")),
}


def docker_client(timeout: int = 120):
    """A Docker SDK client for the local dockerd (the modules' own connection,
    ``_docker.client``); EnvironmentProblem naming the fix when none answers."""
    from ansible_collections.topo.lab.plugins.module_utils.api import DockerError, docker_client as client
    try:
        return client(required=True, timeout=timeout)
    except DockerError as exc:
        why = str(exc)
        if why.startswith("no Docker daemon answers"):  # the CLI's user may not have Docker yet
            why = why.split("; start it")[0] + ("; install docker.io (apt-get install docker.io) and start it "
                                                "(systemctl start docker, or run dockerd)")
        raise EnvironmentProblem(why) from None


def recipe(kind: str = "node") -> str:
    """The digest (16 hex digits of SHA-256) of what image ``kind`` is built from: the Debian
    suite, its packages and its main process (:data:`KINDS`). Written into the image's
    :data:`RECIPE_LABEL` by :func:`build`; a different value means the image is stale."""
    import hashlib
    packages, cmd, _ = KINDS[kind]
    text = json.dumps({"suite": SUITE, "packages": sorted(packages), "cmd": cmd}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def image_current(client, name: str, kind: str) -> bool:
    """True when image ``name`` is in the local image store and was built from the current
    recipe of ``kind`` (its :data:`RECIPE_LABEL` equals :func:`recipe`); False when it is
    missing or stale (an image from before the label has none)."""
    import docker.errors
    try:
        labels = client.images.get(name).labels or {}
    except docker.errors.ImageNotFound:
        return False
    return labels.get(RECIPE_LABEL) == recipe(kind)


def image_present(client, name: str) -> bool:
    """True when image ``name`` (``repo:tag``) is in the local image store."""
    import docker.errors
    try:
        client.images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


def apt_mirror() -> str:
    """The Debian mirror this host's apt uses (its first ``deb``/``URIs`` entry that is not a
    security or backports archive), so debootstrap fetches from where apt can; else
    deb.debian.org."""
    paths = ["/etc/apt/sources.list"]
    d = "/etc/apt/sources.list.d"
    if os.path.isdir(d):
        paths += sorted(os.path.join(d, f) for f in os.listdir(d) if f.endswith((".list", ".sources")))
    for path in paths:
        try:
            text = open(path).read()
        except OSError:
            continue
        for m in re.finditer(r"^(?:deb\s+(?:\[[^\]]*\]\s+)?|URIs:\s*)(https?://\S+)", text, re.M):
            url = m.group(1).rstrip("/")
            if url.endswith("/debian"):
                return url
    return "http://deb.debian.org/debian"


def build(tag: str = DEFAULT_IMAGE, offline: bool = False, mirror: str | None = None,
          say: Callable[[str], None] = print, kind: str = "node") -> dict:
    """Build image ``tag`` of ``kind`` (``node`` or ``host``, see :data:`KINDS`); returns
    {image, id, size_mb, seconds, method}.

    ``say`` receives one line per step (progress for a minute-long build).
    """
    client = docker_client(timeout=600)
    start = time.monotonic()
    if offline:
        _build_offline(client, tag, mirror or apt_mirror(), say, kind)
        method = "debootstrap"
    else:
        _build_dockerfile(client, tag, say, kind)
        method = "Dockerfile"
    img = client.images.get(tag)
    return {"image": tag, "id": img.id, "size_mb": round(img.attrs["Size"] / 1e6, 1),
            "seconds": round(time.monotonic() - start, 1), "method": method}


def _build_dockerfile(client, tag: str, say, kind: str = "node") -> None:
    import docker.errors

    from ansible_collections.topo.lab.plugins.module_utils.api import first_line
    directory = KINDS[kind][2]
    say(f"building {tag} from {directory}/Dockerfile")
    try:
        client.images.build(path=directory, tag=tag, rm=True, pull=False, labels={RECIPE_LABEL: recipe(kind)})
    except (docker.errors.BuildError, docker.errors.APIError) as exc:
        raise EnvironmentProblem(
            f"docker build of {tag} failed ({first_line(exc)}); where no registry is reachable, "
            "build it from Debian packages: topo image build --offline") from None


def _build_offline(client, tag: str, mirror: str, say, kind: str = "node") -> None:
    packages, cmd, _ = KINDS[kind]
    if shutil.which("debootstrap") is None:
        raise EnvironmentProblem("topo image build --offline needs debootstrap; apt-get install debootstrap")
    repo, _, version = tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "latest")
    with tempfile.TemporaryDirectory(prefix="topo-image-") as tmp:
        root = os.path.join(tmp, "rootfs")
        say(f"debootstrap {SUITE} (minbase + {', '.join(packages)}) from {mirror}")
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", SUITE, root, mirror],
             "debootstrap")
        say("cleaning apt caches and documentation")
        _run(["chroot", root, "apt-get", "clean"], "apt-get clean in the image")
        for sub in ("var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info"):
            path = os.path.join(root, sub)
            if os.path.isdir(path):
                for entry in os.listdir(path):
                    p = os.path.join(path, entry)
                    shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)
        for key in glob.glob(os.path.join(root, "etc", "ssh", "ssh_host_*")):
            os.unlink(key)  # every build host makes its own at start (HOST_CMD)
        tarball = os.path.join(tmp, "rootfs.tar")
        say("packing the tree")
        _run(["tar", "--numeric-owner", "--xattrs", "-C", root, "-cf", tarball, "."], "tar")
        say(f"docker import as {tag}")
        client.api.import_image_from_file(
            tarball, repository=repo, tag=version,
            changes=[f"CMD {json.dumps(cmd)}", f'LABEL {IMAGE_LABEL}="{kind}"',
                     f'LABEL {RECIPE_LABEL}="{recipe(kind)}"'])


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise EnvironmentProblem(f"{what} failed (exit {proc.returncode}):\n{tail}")
