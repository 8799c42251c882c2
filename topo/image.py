"""Node images for ``kind: docker`` nodes: ``topo image build``.

The default node image, :data:`DEFAULT_IMAGE`, is Debian bookworm with the programs topo's
checks run inside a node (:data:`PACKAGES`). Two ways to build the same image:

* from the Dockerfile shipped in ``topo/images/node`` (needs a reachable registry for
  ``debian:bookworm-slim``), with the Docker SDK;
* ``offline``: from Debian packages alone, for hosts that reach an apt mirror but no
  registry - ``debootstrap --variant=minbase --include=PACKAGES``, apt caches cleaned, the
  tree imported with ``docker import`` (the SDK's ``import_image_from_file``). Measured on
  the 2-core reference machine: about 55 s and 169 MB.

Errors are :class:`~topo.errors.EnvironmentProblem` (exit 3) naming the fix.
"""

from __future__ import annotations

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
#: Label on topo-built images.
IMAGE_LABEL = "topo.image"


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
          say: Callable[[str], None] = print) -> dict:
    """Build the node image ``tag``; returns {image, id, size_mb, seconds, method}.

    ``say`` receives one line per step (progress for a minute-long build).
    """
    client = docker_client(timeout=600)
    start = time.monotonic()
    if offline:
        _build_offline(client, tag, mirror or apt_mirror(), say)
        method = "debootstrap"
    else:
        _build_dockerfile(client, tag, say)
        method = "Dockerfile"
    img = client.images.get(tag)
    return {"image": tag, "id": img.id, "size_mb": round(img.attrs["Size"] / 1e6, 1),
            "seconds": round(time.monotonic() - start, 1), "method": method}


def _build_dockerfile(client, tag: str, say) -> None:
    import docker.errors

    from ansible_collections.topo.lab.plugins.module_utils.api import first_line
    say(f"building {tag} from {DOCKERFILE_DIR}/Dockerfile")
    try:
        client.images.build(path=DOCKERFILE_DIR, tag=tag, rm=True, pull=False)
    except (docker.errors.BuildError, docker.errors.APIError) as exc:
        raise EnvironmentProblem(
            f"docker build of {tag} failed ({first_line(exc)}); where no registry is reachable, "
            "build it from Debian packages: topo image build --offline") from None


def _build_offline(client, tag: str, mirror: str, say) -> None:
    if shutil.which("debootstrap") is None:
        raise EnvironmentProblem("topo image build --offline needs debootstrap; apt-get install debootstrap")
    repo, _, version = tag.rpartition(":") if ":" in tag.split("/")[-1] else (tag, "", "latest")
    with tempfile.TemporaryDirectory(prefix="topo-image-") as tmp:
        root = os.path.join(tmp, "rootfs")
        say(f"debootstrap {SUITE} (minbase + {', '.join(PACKAGES)}) from {mirror}")
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, root, mirror],
             "debootstrap")
        say("cleaning apt caches and documentation")
        _run(["chroot", root, "apt-get", "clean"], "apt-get clean in the image")
        for sub in ("var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/info"):
            path = os.path.join(root, sub)
            if os.path.isdir(path):
                for entry in os.listdir(path):
                    p = os.path.join(path, entry)
                    shutil.rmtree(p) if os.path.isdir(p) and not os.path.islink(p) else os.unlink(p)
        tarball = os.path.join(tmp, "rootfs.tar")
        say("packing the tree")
        _run(["tar", "--numeric-owner", "--xattrs", "-C", root, "-cf", tarball, "."], "tar")
        say(f"docker import as {tag}")
        client.api.import_image_from_file(
            tarball, repository=repo, tag=version,
            changes=[f"CMD {json.dumps(DEFAULT_CMD)}", f'LABEL {IMAGE_LABEL}="node"'])


def _run(argv: list[str], what: str) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
        raise EnvironmentProblem(f"{what} failed (exit {proc.returncode}):\n{tail}")
