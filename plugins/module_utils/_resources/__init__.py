# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
"""Private: the resource kinds of a lab behind one protocol, and the one driver that runs them.

One file per kind, each a :class:`Kind` subclass (the resource name its changes carry):

========================  ==================  ======================================
file                      class               ``Changes`` resource
========================  ==================  ======================================
``_resources/container``   ``Containers``      ``container``
``_resources/netns``       ``Namespaces``      ``netns``
``_resources/bridge``      ``Bridges``         ``bridge``
``_resources/veth``        ``Veths``           ``veth``
``_resources/tunnel``      ``Tunnels``         ``tunnel``
``_resources/impairment``  ``Impairments``     ``impair``
``_resources/address``     ``Addresses``       ``address``
``_resources/route``       ``Routes``          ``route``
========================  ==================  ======================================

The protocol (see :class:`Kind`): ``declare`` names the desired objects by key, ``converge``
reads the kernel for each declared object, diffs every attribute and creates or fixes only
the difference, ``owned`` lists the lab's existing objects in a scope of namespaces, and
``remove`` removes one. :func:`converge` is the one driver: it runs a kind's pass and its
prune - the one prune loop of every kind (:func:`prune`) - and returns the
:class:`~.._netns.Changes` of the pass. Check mode is always honoured (nothing is changed,
everything is reported) and every change carries diff lines.

The passes of one run share a :class:`Context`: the lab, the check flag, one netlink socket
per namespace (:class:`~.._netns.Sockets`) and one link table per namespace
(:class:`~.links.Tables`), so a 1000-node no-op re-apply dumps each namespace's links once
for all kinds (bench/README.md). The context also carries what the container pass tells the
later passes (:attr:`Context.fresh`), instead of a module-global.

Objects under a declared name without this lab's marker are refused
(:class:`~.._netns.NotOwned`), never adopted or removed.
"""

from __future__ import annotations

from ansible_collections.topo.lab.plugins.module_utils._netns import (
    Changes, Sockets, lab_lock, namespace_exists, ours, require_features, run as run_module,
)
from ansible_collections.topo.lab.plugins.module_utils._resources.links import (
    Peers, Tables, delete, drop_link, in_scope,
)

#: Argument specs every resource module shares: the lab, the prune switch, and the prune
#: scope (namespace names; ``namespaces`` in every module that prunes links, routes or qdiscs).
LAB = dict(type="str", required=True)
PRUNE = dict(type="bool", default=True)
SCOPE = dict(type="list", elements="str", default=[])
STATE = dict(type="str", choices=["present", "absent"], default="present")


class Context(object):
    """What every pass of one run shares.

    Attributes: ``socks`` (:class:`~.._netns.Sockets`), ``lab`` (str), ``check`` (bool, check
    mode), ``tables`` (:class:`~.links.Tables`, one link dump per namespace, kept current as
    passes change links), ``peers`` (:class:`~.links.Peers`) and ``fresh`` (set of
    namespace names): in check mode, the namespaces of docker nodes whose container the
    container pass would make, start or name anew, and those the namespace pass would
    prune; the later passes see them as not existing, so ``topo plan`` lists the veths,
    addresses and routes apply will make in them. Empty outside check mode. ``created`` (set
    of namespace names): outside check mode, the namespaces the namespace pass of this run
    created; they hold only what the kernel puts in a new namespace (lo) and what this run
    made since, so a kind may skip reading back there what only it could have made (the
    route pass: topo's routes). Empty in check mode, where nothing is created.
    """

    def __init__(self, socks, lab, check):
        self.socks = socks
        self.lab = lab
        self.check = bool(check)
        self.fresh = set()
        self.created = set()
        self.tables = Tables(socks, self.exists)
        self.peers = Peers(socks)

    def gone(self, ns, ifname):
        """Check mode: apply deletes link ``ifname`` of ``ns`` here (to make it again, or to
        prune it); the later passes see it - and a veth's peer - missing
        (:func:`~.links.drop_link`). Nothing outside check mode, where the kernel is read."""
        if self.check:
            drop_link(self.tables, self.peers, ns, ifname)

    def exists(self, ns):
        """True when namespace ``ns`` is named under /run/netns and not in :attr:`fresh`."""
        return ns not in self.fresh and namespace_exists(ns)


class Kind(object):
    """One resource kind: the protocol :func:`converge` drives. One instance per pass.

    Subclasses set :attr:`resource` and implement :meth:`converge`; those that prune also
    implement :meth:`declare`, :meth:`owned` and :meth:`remove` (and :meth:`removal` for
    their wording). Kernel failures are raised as :class:`~.._netns.NetnsError` (netlink
    errors translated, naming the object), ownership conflicts as
    :class:`~.._netns.NotOwned`, values the kernel cannot hold as ValueError.
    """

    #: The ``resource`` of every change this kind reports (e.g. ``"veth"``).
    resource = None
    #: Prune before the declared objects are converged (kinds whose names a replacement
    #: may reuse: veths, tunnels), instead of after.
    prune_first = False

    def __init__(self, ctx):
        self.ctx = ctx

    @staticmethod
    def check(items):
        """Raise ValueError for declared ``items`` the kind cannot hold whatever the kernel
        holds (e.g. a tunnel's underlay addresses of two families). :func:`run` calls it for
        every pass before the kernel is probed or changed; nothing by default."""

    def declare(self, items):
        """The keys of the declared ``items`` (the module option's list of dicts), as a set
        comparable with the keys :meth:`owned` yields. Raises ValueError for a list the kind
        cannot hold (e.g. one object declared twice)."""
        return set()

    def converge(self, items, changes):
        """Read the kernel for every declared item, diff every attribute, record each
        ``create``/``fix`` in ``changes`` (a :class:`~.._netns.Changes`) and, unless
        ``ctx.check``, make it so."""
        raise NotImplementedError

    def owned(self, scope):
        """Yield ``(key, label, have)`` for every existing object of this kind that the lab
        owns in ``scope`` (namespace names), where ``label`` is the change's name and
        ``have`` what :meth:`removal` and :meth:`remove` need. Nothing by default (a kind
        without prune)."""
        return ()

    def removal(self, have):
        """``(detail, before)`` of the ``remove`` change of an undeclared object."""
        return "no longer declared", self.resource

    def remove(self, key, have):
        """Remove one object :meth:`owned` yielded (never called in check mode)."""
        raise NotImplementedError

    def forecast(self, key, have):
        """Check mode's :meth:`remove`: tell the later passes what removing ``have`` takes
        with it (:meth:`Context.gone`). Nothing by default (an address, a route, a qdisc
        takes nothing with it)."""

    def finish(self, changes):
        """Called once after converge and prune (the container pass does its Docker work
        here, in parallel); nothing by default."""


class LinkKind(Kind):
    """A kind whose objects are links of :attr:`link_kinds` (bridge, veth, tunnel): the lab's
    own are those carrying its marker (:func:`~.._netns.ours`); removing one deletes it."""

    #: The link kinds (IFLA_INFO_KIND) this kind makes and prunes.
    link_kinds = ()
    #: Removing a link may remove another in any namespace (a veth's peer, a bridge's
    #: ports' state): forget every link table, not only the namespace's.
    forget_all = True

    def owned(self, scope):
        lab, kinds = self.ctx.lab, self.link_kinds
        return in_scope(self.ctx.tables, scope, lambda link: link["kind"] in kinds and ours(link, lab))

    def forecast(self, key, link):
        self.ctx.gone(*key)

    def remove(self, key, link):
        ns, name = key
        delete(self.ctx.tables, ns, link, "remove %s %s/%s" % (link["kind"], ns, name))
        if self.forget_all:
            self.ctx.tables.invalidate()
        else:
            self.ctx.tables.forget(ns)


def prune(kind, changes, scope, declared):
    """The one prune loop: record and remove every object of ``kind`` (a :class:`Kind`
    instance) that the lab owns in ``scope`` and whose key is not in ``declared``; in check
    mode, record it and :meth:`Kind.forecast` the removal instead."""
    for key, label, have in kind.owned(scope):
        if key in declared:
            continue
        detail, before = kind.removal(have)
        changes.add("remove", label, detail, before=before)
        if kind.ctx.check:
            kind.forecast(key, have)
        else:
            kind.remove(key, have)


def converge(kind_class, ctx, items, scope=(), prune_=True):
    """Run one pass of ``kind_class`` (a :class:`Kind` subclass) over the desired ``items``
    in ``ctx`` (a :class:`Context`); with ``prune_``, remove the lab's undeclared objects of
    that kind in ``scope`` (namespace names). Returns the pass's
    :class:`~.._netns.Changes`."""
    kind = kind_class(ctx)
    changes = Changes(kind.resource)
    declared = kind.declare(items)
    if prune_ and kind.prune_first:
        prune(kind, changes, scope, declared)
    kind.converge(items, changes)
    if prune_ and not kind.prune_first:
        prune(kind, changes, scope, declared)
    kind.finish(changes)
    return changes


def run(module, passes, features=()):
    """Exit the Ansible ``module`` with the result of ``passes``, run in order in one
    process with one :class:`Context` (under the lab's lock, see
    :func:`~.._netns.run`).

    ``passes``: [(Kind subclass, desired items, prune scope)]. ``module.params`` gives
    ``lab``, ``prune`` (true when absent) and ``state`` (``absent`` converges every pass to
    an empty list and prunes). Every pass's items are checked first (:meth:`Kind.check`),
    then ``features`` (kernel features, e.g. ``vxlan``, ``netem``;
    :func:`~.._netns.require_features`), before anything is changed.
    """
    params = module.params
    absent = params.get("state") == "absent"
    prune_ = absent or params.get("prune", True)

    def body(socks):
        ctx = Context(socks, params["lab"], module.check_mode)
        for kind, items, _ in passes:
            kind.check([] if absent else items)
        require_features(list(features))
        return [converge(kind, ctx, [] if absent else items, scope, prune_) for kind, items, scope in passes]

    run_module(module, body)


def remove_lab(lab):
    """``topo.lab.lab`` with ``state: absent``, in this process instead of an Ansible module:
    remove every container labelled with ``lab`` (found by one request to the local dockerd),
    then every namespace whose lo carries its marker (and so every interface, bridge, tunnel
    and route in them), on this machine, under the lab's lock (:func:`~.._netns.lab_lock`).
    What ``topo destroy`` runs when this machine is the only build host.

    These are the two passes of the module's run that remove anything when nothing is
    declared: the other kinds prune only in the declared namespaces' scope, which is empty.
    Returns the module's result (:meth:`~.._netns.Changes.merge`: ``changed``, ``changes``,
    ``summary``, ``diff``, ``owned``, ``warnings`` when dockerd could not be asked). Raises
    NetnsError (DockerError) or OSError as the module would fail.
    """
    # imported here: both kinds import this module
    from ansible_collections.topo.lab.plugins.module_utils._resources.container import Containers
    from ansible_collections.topo.lab.plugins.module_utils._resources.netns import Namespaces

    with lab_lock(lab), Sockets() as socks:
        ctx = Context(socks, lab, False)
        return Changes.merge([converge(kind, ctx, []) for kind in (Containers, Namespaces)])
