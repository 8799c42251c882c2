# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: Docker for ``kind: docker`` nodes - the connection (:func:`client`, which topo's
CLI uses too), the labels topo puts on containers, and the calls the container kind
(:mod:`._resources.container`, which converges them) makes: create, start, remove, list by
label, run in parallel.

Creating and starting run :data:`PARALLEL` at a time: Docker serialises part of the work, and
on the 2-core reference machine 50 containers took 12.1 s one by one and 7.6 s eight at a
time (issue 5's measurement).
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import sys
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

from ansible_collections.topo.lab.plugins.module_utils._netns import NetnsError

#: The zip of the Docker SDK and what it requires that topo brings to a remote build host
#: with docker nodes (roles/lab/tasks/pyroute2.yml, lookup topo.lab.python_zip), in the
#: directory of the pyroute2 zip its modules run with on PYTHONPATH.
SDK_ZIP = "docker.zip"


def brought_sdk(path=None):
    """The path of :data:`SDK_ZIP` beside a zip on ``path`` (default ``sys.path``), or None:
    where a remote build host keeps the Docker SDK topo brought it."""
    for entry in sys.path if path is None else path:
        if entry.endswith(".zip") and os.path.isfile(entry):
            candidate = os.path.join(os.path.dirname(entry), SDK_ZIP)
            if os.path.isfile(candidate):
                return candidate
    return None


def _find_sdk():
    """Whether the Docker SDK can be imported: installed, or brought by topo (:func:`brought_sdk`,
    then appended to ``sys.path``, after anything installed)."""
    if importlib.util.find_spec("docker") is not None:
        return True
    zipped = brought_sdk()
    if zipped is None:
        return False
    sys.path.append(zipped)
    return importlib.util.find_spec("docker") is not None


#: The Docker SDK module, imported by :func:`client` on first use: the import costs about
#: 0.3 s on the project's 2-core reference machine (0.5 s from the zip topo brings to a
#: remote build host), which a run without docker nodes (a destroy of a lab without
#: containers, every netns-only apply) need not pay.
docker = None
#: Whether the Docker SDK is installed or brought (found, not yet imported).
HAS_DOCKER = _find_sdk()
DOCKER_IMPORT_ERROR = None if HAS_DOCKER else ImportError("No module named 'docker'")

LAB_LABEL = "topo.lab"
NODE_LABEL = "topo.node"
SPEC_LABEL = "topo.spec"
CAPS = ["NET_ADMIN", "NET_RAW"]
PARALLEL = 8
DOCKER_SOCKET = "/var/run/docker.sock"


class DockerError(NetnsError):
    """Docker refused or is unreachable; the message names the container and the fix."""


def client(required=True, timeout=120):
    """A Docker SDK client of the local dockerd (API calls time out after ``timeout``
    seconds), or None when ``required`` is false and none answers. DockerError (with the
    fix) when required and unreachable. topo's CLI connects through here too."""
    if not _import_sdk():
        if not required:
            return None
        raise DockerError("the Docker SDK is missing on the build host (%s); pip install docker, or "
                          "apply again from topo (it brings the SDK to a remote build host with docker nodes)"
                          % DOCKER_IMPORT_ERROR)
    if not required and not os.path.exists(DOCKER_SOCKET) and not os.environ.get("DOCKER_HOST"):
        return None
    try:
        c = docker.from_env(timeout=timeout, max_pool_size=PARALLEL * 2)
        c.ping()
        return c
    except Exception as exc:  # DockerException, requests' and socket errors
        if not required:
            return None
        raise DockerError("no Docker daemon answers %s; start it (systemctl start docker, or dockerd) "
                          "- docker nodes need it" % unreachable(exc))


def _import_sdk():
    """Import the Docker SDK into :data:`docker` once; False (and :data:`DOCKER_IMPORT_ERROR`
    set) when it cannot be imported."""
    global docker, DOCKER_IMPORT_ERROR, HAS_DOCKER
    if docker is None and HAS_DOCKER:
        try:
            import docker as sdk
            import docker.errors  # noqa: F401 - sdk.errors below
            docker = sdk
        except ImportError as exc:
            HAS_DOCKER, DOCKER_IMPORT_ERROR = False, exc
    return docker is not None


def labelled(lab, timeout=30):
    """IDs of the containers (running or not) labelled with ``lab``, in one HTTP request to
    the local dockerd's socket, without the Docker SDK (:data:`docker`): the question every
    run of a lab without declared containers asks (destroy, prune), answered in milliseconds.

    [] when there is no socket (no dockerd: nothing topo could have left running); None when
    ``DOCKER_HOST`` names another daemon (ask through :func:`client`); DockerError (with
    :func:`unreachable`'s words) when the socket does not answer as the Engine API does.
    """
    if os.environ.get("DOCKER_HOST"):
        return None
    if not os.path.exists(DOCKER_SOCKET):
        return []
    import http.client  # here: about 20 ms of import (the email package), which a lab run without dockerd never needs
    query = urlencode({"all": "1", "filters": json.dumps({"label": ["%s=%s" % (LAB_LABEL, lab)]})})
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(DOCKER_SOCKET)
        conn = http.client.HTTPConnection("localhost", timeout=timeout)
        conn.sock = sock
        conn.request("GET", "/containers/json?" + query)
        answer = conn.getresponse()
        body = answer.read()
        if answer.status != 200:
            raise DockerError("dockerd at %s answered %d to the container list: %s"
                              % (DOCKER_SOCKET, answer.status, body[:200]))
        return [c["Id"] for c in json.loads(body)]
    except (OSError, http.client.HTTPException, ValueError, KeyError, TypeError) as exc:
        raise DockerError(unreachable(exc))
    finally:
        sock.close()


def unreachable(exc):
    """Why no dockerd answered, in words: the address and the cause, e.g. "at
    unix:///var/run/docker.sock (the socket does not exist)"."""
    address = os.environ.get("DOCKER_HOST") or "unix://" + DOCKER_SOCKET
    text = str(exc)
    for needle, cause in (("FileNotFoundError", "the socket does not exist"),
                          ("ConnectionRefusedError", "connection refused"),
                          ("PermissionError", "permission denied"),
                          ("Read timed out", "it did not answer in time")):
        if needle in text:
            return "at %s (%s)" % (address, cause)
    return "at %s (%s)" % (address, first_line(exc))


def first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def declared_settings(c):
    """The settings of declared container ``c`` that its label records, as a dict."""
    return {"image": c["image"], "cmd": c.get("cmd"), "env": dict(sorted((c.get("env") or {}).items())),
            "binds": list(c.get("binds") or [])}


def differences(old, new):
    """["key old -> new"] (values as JSON) of every key of ``new`` that ``old`` holds differently."""
    return ["%s %s -> %s" % (k, json.dumps(old.get(k)), json.dumps(new[k])) for k in sorted(new)
            if old.get(k) != new[k]]


def image_id(cl, name, cache):
    """The ID of image ``name`` (memoised in the dict ``cache``); DockerError when it is not in
    the local image store."""
    if name not in cache:
        try:
            cache[name] = cl.images.get(name).id
        except docker.errors.ImageNotFound:
            hint = " (build it: topo image build --offline)" if name.startswith("topo-node") else ""
            raise DockerError("image %s is not in the local image store%s" % (name, hint))
    return cache[name]


def create(cl, lab, c, image):
    """Create and start the container of declared ``c`` from image ID ``image`` with topo's labels,
    no network, NET_ADMIN and NET_RAW, init and its sysctls; returns it. DockerError when refused."""
    labels = {LAB_LABEL: lab, NODE_LABEL: c["node"], SPEC_LABEL: json.dumps(declared_settings(c), sort_keys=True)}
    kwargs = dict(name=c["name"], hostname=c["node"], labels=labels, network_mode="none", cap_add=CAPS,
                  init=True, detach=True, environment=c.get("env") or {}, volumes=list(c.get("binds") or []),
                  sysctls=dict((k, str(v)) for k, v in (c.get("sysctls") or {}).items()))
    if c.get("cmd"):
        kwargs["command"] = c["cmd"]
    try:
        container = cl.containers.create(image, **kwargs)
        container.start()
    except docker.errors.APIError as exc:
        raise DockerError("container %s: docker refused to create or start it: %s"
                          % (c["name"], exc.explanation or exc))
    return container


def start(container):
    """Start (or unpause) ``container``; returns it. DockerError when refused."""
    try:
        if container.status == "paused":  # docker refuses to start a paused container
            container.unpause()
        else:
            container.start()
    except docker.errors.APIError as exc:
        raise DockerError("container %s: docker refused to start it: %s" % (container.name, exc.explanation or exc))
    return container


def remove(container):
    """Remove ``container`` with its anonymous volumes, running or not; gone already is fine."""
    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        raise DockerError("container %s: docker refused to remove it: %s" % (container.name, exc.explanation or exc))


def parallel(jobs):
    """Run the callables in ``jobs`` PARALLEL at a time; return their results, in order.
    The first error is raised after all have finished."""
    if not jobs:
        return []
    with ThreadPoolExecutor(max_workers=min(PARALLEL, len(jobs))) as pool:
        futures = [pool.submit(job) for job in jobs]
        errors = [f.exception() for f in futures if f.exception() is not None]
        if errors:
            raise errors[0]
        return [f.result() for f in futures]


def by_name(cl, name):
    """The container called ``name`` (any labels), or None."""
    try:
        return cl.containers.get(name)
    except docker.errors.NotFound:
        return None


def lab_containers(cl, lab):
    """{name: Container} of every container (running or not) labelled with ``lab``.

    Listed, then inspected one by one: one removed in between (by hand, or by a run killed
    half-way whose dockerd work goes on) is simply not there, instead of an error."""
    out = {}
    for summary in cl.api.containers(all=True, filters={"label": "%s=%s" % (LAB_LABEL, lab)}):
        try:
            c = cl.containers.get(summary["Id"])
        except docker.errors.NotFound:
            continue
        out[c.name] = c
    return out
