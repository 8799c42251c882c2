# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: ``kind: docker`` nodes - containers made with the Docker SDK, whose network
namespaces are then named under /run/netns so every link, address, route and tunnel is
made by the same code as for namespace nodes (DESIGN.md 5).

A node's container is ``topo-<lab>-<node>`` (the name its namespace has too), started with
no Docker network (``network_mode: none``), capabilities NET_ADMIN and NET_RAW (never
``--privileged``), Docker's init as PID 1, hostname = node name and the labels
:data:`LAB_LABEL`, :data:`NODE_LABEL` and :data:`SPEC_LABEL` (the declared settings as
JSON, so a changed setting is seen and named).

Convergence, per declared container:

* missing: created and started, born with the node's sysctls (which the namespace pass
  then holds in place, like a namespace node's: a sysctl edit never recreates a container);
* image (the image ID the declared name now points to) or a declared setting differs:
  removed and made again ("recreated: image ... -> ...");
* stopped (by hand, or a crash): started; paused: unpaused;
* its namespace not named, or named but not the running container's (it was restarted):
  named again with :func:`~._netns.attach_namespace`. The old namespace - and the veths
  in it - goes, and the lab's other passes make them again in the new one.

A container with a declared name and no ``topo.lab`` label of this lab is refused, never
adopted or removed. Undeclared containers labelled with the lab are removed (prune, or
``state: absent``), found by label alone, so destroy works with the topology file gone.

Creating and starting run ``PARALLEL`` at a time: Docker serialises part of the work, and
on the 2-core reference machine 50 containers took 12.1 s one by one and 7.6 s eight at a
time (issue 5's measurement).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.topo.lab.plugins.module_utils._netns import (
    PLANNED_FRESH, Changes, NetnsError, NotOwned, attach_namespace, ns_marker, same_namespace,
)

try:
    import docker
    import docker.errors
    HAS_DOCKER = True
    DOCKER_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported when a docker node is declared
    HAS_DOCKER = False
    DOCKER_IMPORT_ERROR = exc

LAB_LABEL = "topo.lab"
NODE_LABEL = "topo.node"
SPEC_LABEL = "topo.spec"
CAPS = ["NET_ADMIN", "NET_RAW"]
PARALLEL = 8
DOCKER_SOCKET = "/var/run/docker.sock"

SPEC = dict(type="list", elements="dict", default=[], options=dict(
    name=dict(type="str", required=True),
    node=dict(type="str", required=True),
    image=dict(type="str", required=True),
    cmd=dict(type="list", elements="str"),
    env=dict(type="dict", default={}),
    binds=dict(type="list", elements="str", default=[]),
    sysctls=dict(type="dict", default={}),
))


class DockerError(NetnsError):
    """Docker refused or is unreachable; the message names the container and the fix."""


def client(required=True, timeout=120):
    """A Docker SDK client of the local dockerd (API calls time out after ``timeout``
    seconds), or None when ``required`` is false and none answers. DockerError (with the
    fix) when required and unreachable. topo's CLI connects through here too."""
    if not HAS_DOCKER:
        if not required:
            return None
        raise DockerError("the Docker SDK is missing on the build host (%s); pip install docker"
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


def _differences(old, new):
    return ["%s %s -> %s" % (k, json.dumps(old.get(k)), json.dumps(new[k])) for k in sorted(new)
            if old.get(k) != new[k]]


def _image_id(cl, name, cache):
    if name not in cache:
        try:
            cache[name] = cl.images.get(name).id
        except docker.errors.ImageNotFound:
            hint = " (build it: topo image build --offline)" if name.startswith("topo-node") else ""
            raise DockerError("image %s is not in the local image store%s" % (name, hint))
    return cache[name]


def _create(cl, lab, c, image_id):
    labels = {LAB_LABEL: lab, NODE_LABEL: c["node"], SPEC_LABEL: json.dumps(declared_settings(c), sort_keys=True)}
    kwargs = dict(name=c["name"], hostname=c["node"], labels=labels, network_mode="none", cap_add=CAPS,
                  init=True, detach=True, environment=c.get("env") or {}, volumes=list(c.get("binds") or []),
                  sysctls=dict((k, str(v)) for k, v in (c.get("sysctls") or {}).items()))
    if c.get("cmd"):
        kwargs["command"] = c["cmd"]
    try:
        container = cl.containers.create(image_id, **kwargs)
        container.start()
    except docker.errors.APIError as exc:
        raise DockerError("container %s: docker refused to create or start it: %s"
                          % (c["name"], exc.explanation or exc))
    return container


def _start(container):
    try:
        if container.status == "paused":  # docker refuses to start a paused container
            container.unpause()
        else:
            container.start()
    except docker.errors.APIError as exc:
        raise DockerError("container %s: docker refused to start it: %s" % (container.name, exc.explanation or exc))
    return container


def _remove(container):
    try:
        container.remove(force=True, v=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as exc:
        raise DockerError("container %s: docker refused to remove it: %s" % (container.name, exc.explanation or exc))


def _parallel(jobs):
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


def converge_containers(lab, containers, check, state="present", prune=True):
    """Converge the lab's containers and name their namespaces; see the module docstring.

    ``containers``: [{name, node, image, cmd, env, binds}]. Returns a Changes ("container").
    Without any declared container, a lab is still pruned when a dockerd answers; when none
    does, there is nothing topo could have left running, and nothing is done.
    """
    changes = Changes("container")
    declared = containers if state == "present" else []
    cl = client(required=bool(declared))
    if cl is None:
        if HAS_DOCKER and (os.path.exists(DOCKER_SOCKET) or os.environ.get("DOCKER_HOST")):
            changes.extra["warnings"] = ["no Docker daemon answers, so containers of lab %s (if it has any) "
                                         "were not looked for; start dockerd and run this again" % lab]
        return changes
    owned = lab_containers(cl, lab)
    images = {}
    to_make, to_start, to_link = [], [], []
    for c in declared:
        name = c["name"]
        image_id = _image_id(cl, c["image"], images)
        have = owned.get(name)
        if have is None:
            try:
                other = cl.containers.get(name)
            except docker.errors.NotFound:
                other = None
            if other is not None:
                raise NotOwned("container %s exists but was not made by topo for lab %s (labels %s); "
                               "remove or rename it" % (name, lab, json.dumps(other.labels, sort_keys=True)))
            changes.add("create", name, "node=%s image=%s" % (c["node"], c["image"]),
                        after="image=%s" % c["image"])
            to_make.append((c, image_id, None))
            continue
        try:
            old = json.loads(have.labels.get(SPEC_LABEL) or "{}")
        except ValueError:
            old = {}
        diff = _differences(old, declared_settings(c))
        have_image = have.attrs["Image"]  # the image ID it was made from (no extra API call)
        if have_image != image_id and not diff:
            diff = ["image %s: %s -> %s" % (c["image"], have_image[7:19], image_id[7:19])]
        if diff or have.labels.get(NODE_LABEL) != c["node"]:
            detail = "recreated: " + ("; ".join(diff) or "node %s -> %s" % (have.labels.get(NODE_LABEL), c["node"]))
            changes.add("fix", name, detail, before=json.dumps(old, sort_keys=True),
                        after=json.dumps(declared_settings(c), sort_keys=True))
            to_make.append((c, image_id, have))
        elif have.status != "running":
            done = "unpaused" if have.status == "paused" else "started (was %s)" % have.status
            changes.add("fix", name, done, before=have.status, after="running")
            to_start.append((c, have))
        else:
            if not same_namespace(name, "/proc/%d/ns/net" % have.attrs["State"]["Pid"]):
                changes.add("fix", name, "namespace named again: /run/netns/%s was not the container's" % name)
                to_link.append((c, have))
    if state == "absent" or prune:
        for name in sorted(set(owned) - set(c["name"] for c in declared)):
            changes.add("remove", name, "node=%s" % owned[name].labels.get(NODE_LABEL),
                        before="image=%s" % (owned[name].labels.get(SPEC_LABEL) or "?"))
            if not check:
                to_make.append((None, None, owned[name]))  # remove only
    if check:
        # What apply will wire anew; the namespace passes of this run see these as empty.
        PLANNED_FRESH.update(c["name"] for c, _, _ in to_make if c is not None)
        PLANNED_FRESH.update(c["name"] for c, _ in to_start + to_link)
        return changes

    def make(c, image_id, old):
        if old is not None:
            _remove(old)
        if c is None:
            return None
        return c, _create(cl, lab, c, image_id)

    made = [r for r in _parallel([lambda a=args: make(*a) for args in to_make]) if r]
    started = _parallel([lambda c=c, h=h: (c, _start(h)) for c, h in to_start])
    for c, container in made + started + to_link:
        container.reload()
        pid = container.attrs["State"]["Pid"]
        if not pid:
            raise DockerError("container %s exited right after it started (status %s); see docker logs %s"
                              % (c["name"], container.status, c["name"]))
        source = "/proc/%d/ns/net" % pid
        if not same_namespace(c["name"], source):
            attach_namespace(c["name"], source, ns_marker(lab, c["node"]))
    changes.extra["containers"] = sorted(c["name"] for c in declared)
    return changes
