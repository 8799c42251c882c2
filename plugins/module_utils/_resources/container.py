# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the ``container`` kind - ``kind: docker`` nodes, containers made with the Docker
SDK, whose network namespaces are then named under /run/netns so every link, address, route
and tunnel is made by the same code as for namespace nodes (DESIGN.md 5). The Docker
connection, labels and calls are in :mod:`.._docker`.

A node's container is ``topo-<lab>-<node>`` (the name its namespace has too), started with
no Docker network (``network_mode: none``), capabilities NET_ADMIN and NET_RAW (never
``--privileged``), Docker's init as PID 1, hostname = node name and the labels
:data:`~.._docker.LAB_LABEL`, :data:`~.._docker.NODE_LABEL` and
:data:`~.._docker.SPEC_LABEL` (the declared settings as JSON, so a changed setting is seen
and named).

Convergence, per declared container:

* missing: created and started, born with the node's sysctls (which the namespace pass
  then holds in place, like a namespace node's: a sysctl edit never recreates a container);
* image (the image ID the declared name now points to) or a declared setting differs:
  removed and made again ("recreated: image ... -> ...");
* stopped (by hand, or a crash): started; paused: unpaused;
* its namespace not named, or named but not the running container's (it was restarted):
  named again with :func:`~.._netns.attach_namespace`. The old namespace - and the veths
  in it - goes, and the lab's other passes make them again in the new one.

A container with a declared name and no ``topo.lab`` label of this lab is refused, never
adopted or removed. Undeclared containers labelled with the lab are removed (prune, or
``state: absent``), found by label alone, so destroy works with the topology file gone.
In check mode the names of the containers that would be made, started or named anew go
into :attr:`~.Context.fresh`, so the later passes of the run see their namespaces as empty.

Creating and starting run :data:`~.._docker.PARALLEL` at a time: Docker serialises part of
the work, and on the 2-core reference machine 50 containers took 12.1 s one by one and 7.6 s
eight at a time (issue 5's measurement).
"""

from __future__ import annotations

import json
import os

from ansible_collections.topo.lab.plugins.module_utils._docker import (
    DOCKER_SOCKET, HAS_DOCKER, NODE_LABEL, SPEC_LABEL, DockerError, by_name, client, create, declared_settings,
    differences, image_id, lab_containers, labelled, parallel, remove, start,
)
from ansible_collections.topo.lab.plugins.module_utils._netns import NotOwned, attach_namespace, ns_marker, same_namespace
from ansible_collections.topo.lab.plugins.module_utils._resources import Kind

#: The ``containers`` option of topo.lab.container (and topo.lab.lab).
SPEC = dict(type="list", elements="dict", default=[], options=dict(
    name=dict(type="str", required=True),
    node=dict(type="str", required=True),
    image=dict(type="str", required=True),
    cmd=dict(type="list", elements="str"),
    env=dict(type="dict", default={}),
    binds=dict(type="list", elements="str", default=[]),
    sysctls=dict(type="dict", default={}),
))


class Containers(Kind):
    """The lab's containers; see the module docstring.

    Items: [{name, node, image, cmd, env, binds, sysctls}]. Without any declared container, a
    lab is still pruned when a dockerd answers; when none does, there is nothing topo could
    have left running, and nothing is done (a warning says so when a socket exists). Extra
    result keys: ``containers`` (declared names, outside check mode), ``warnings``.
    DockerError when Docker refuses or is unreachable with containers declared.
    """

    resource = "container"

    def __init__(self, ctx):
        super().__init__(ctx)
        self.cl = None
        self.have = {}
        self.declared = []
        self.to_make, self.to_start, self.to_link = [], [], []

    def declare(self, items):
        self.declared = items
        return set(c["name"] for c in items)

    def converge(self, items, changes):
        lab = self.ctx.lab
        unanswered = ["no Docker daemon answers, so containers of lab %s (if it has any) were not looked "
                      "for; start dockerd and run this again" % lab]
        if not items:
            # Nothing declared: one request tells whether anything is labelled with the lab,
            # without the Docker SDK's import and connection (destroy's fixed cost).
            try:
                if labelled(lab) == []:
                    return
            except DockerError:
                changes.extra["warnings"] = unanswered
                return
        self.cl = cl = client(required=bool(items))
        if cl is None:
            if HAS_DOCKER and (os.path.exists(DOCKER_SOCKET) or os.environ.get("DOCKER_HOST")):
                changes.extra["warnings"] = unanswered
            return
        self.have = owned = lab_containers(cl, lab)
        images = {}
        for c in items:
            name = c["name"]
            wanted_image = image_id(cl, c["image"], images)
            have = owned.get(name)
            if have is None:
                other = by_name(cl, name)
                if other is not None:
                    raise NotOwned("container %s exists but was not made by topo for lab %s (labels %s); "
                                   "remove or rename it" % (name, lab, json.dumps(other.labels, sort_keys=True)))
                changes.add("create", name, "node=%s image=%s" % (c["node"], c["image"]),
                            after="image=%s" % c["image"])
                self.to_make.append((c, wanted_image, None))
                continue
            try:
                old = json.loads(have.labels.get(SPEC_LABEL) or "{}")
            except ValueError:
                old = {}
            diff = differences(old, declared_settings(c))
            have_image = have.attrs["Image"]  # the image ID it was made from (no extra API call)
            if have_image != wanted_image and not diff:
                diff = ["image %s: %s -> %s" % (c["image"], have_image[7:19], wanted_image[7:19])]
            if diff or have.labels.get(NODE_LABEL) != c["node"]:
                detail = "recreated: " + ("; ".join(diff) or "node %s -> %s" % (have.labels.get(NODE_LABEL), c["node"]))
                changes.add("fix", name, detail, before=json.dumps(old, sort_keys=True),
                            after=json.dumps(declared_settings(c), sort_keys=True))
                self.to_make.append((c, wanted_image, have))
            elif have.status != "running":
                done = "unpaused" if have.status == "paused" else "started (was %s)" % have.status
                changes.add("fix", name, done, before=have.status, after="running")
                self.to_start.append((c, have))
            elif not same_namespace(name, "/proc/%d/ns/net" % have.attrs["State"]["Pid"]):
                changes.add("fix", name, "namespace named again: /run/netns/%s was not the container's" % name)
                self.to_link.append((c, have))

    def owned(self, scope):
        for name in sorted(self.have):
            yield name, name, self.have[name]

    def removal(self, have):
        return ("node=%s" % have.labels.get(NODE_LABEL),
                "image=%s" % (have.labels.get(SPEC_LABEL) or "?"))

    def remove(self, name, have):
        self.to_make.append((None, None, have))  # removed in finish(), in parallel with the rest

    def finish(self, changes):
        if self.cl is None:
            return
        if self.ctx.check:
            # What apply will wire anew; the namespace passes of this run see these as empty.
            self.ctx.fresh.update(c["name"] for c, _, _ in self.to_make if c is not None)
            self.ctx.fresh.update(c["name"] for c, _ in self.to_start + self.to_link)
            return
        cl, lab = self.cl, self.ctx.lab

        def make(c, wanted_image, old):
            if old is not None:
                remove(old)
            if c is None:
                return None
            return c, create(cl, lab, c, wanted_image)

        made = [r for r in parallel([lambda a=args: make(*a) for args in self.to_make]) if r]
        started = parallel([lambda c=c, h=h: (c, start(h)) for c, h in self.to_start])
        for c, container in made + started + self.to_link:
            container.reload()
            pid = container.attrs["State"]["Pid"]
            if not pid:
                raise DockerError("container %s exited right after it started (status %s); see docker logs %s"
                                  % (c["name"], container.status, c["name"]))
            source = "/proc/%d/ns/net" % pid
            if not same_namespace(c["name"], source):
                attach_namespace(c["name"], source, ns_marker(lab, c["node"]))
        changes.extra["containers"] = sorted(c["name"] for c in self.declared)
