"""The resource protocol's driver (plugins/module_utils/_resources) with a fake kind: the one
prune loop, its place before or after converge, check mode, and the Context's view of
namespaces a check run's container pass would make anew. No kernel, no root."""

from ansible_collections.topo.lab.plugins.module_utils._netns import Changes
from ansible_collections.topo.lab.plugins.module_utils._resources import Context, Kind, converge
from ansible_collections.topo.lab.plugins.module_utils._resources.netns import parse_marker


class Fake(Kind):
    """Objects are names; the lab owns ``existing`` (name -> value) in every scope."""

    resource = "fake"
    existing = {"a": 1, "b": 2, "c": 3}

    def __init__(self, ctx):
        super().__init__(ctx)
        self.log = ctx.log

    def declare(self, items):
        return set(items)

    def converge(self, items, changes):
        self.log.append("converge")
        for name in items:
            if name not in self.existing:
                changes.add("create", name, "new", after=name)

    def owned(self, scope):
        for ns in sorted(scope):
            for name in sorted(self.existing):
                yield name, "%s/%s" % (ns, name), self.existing[name]

    def remove(self, key, have):
        self.log.append("remove %s" % key)

    def finish(self, changes):
        self.log.append("finish")


class FakeFirst(Fake):
    prune_first = True


def context(check):
    ctx = Context(socks=None, lab="demo", check=check)
    ctx.log = []
    return ctx


def items(changes):
    return [(i["action"], i["resource"], i["name"], i["detail"]) for i in changes.items]


def test_prune_after_converge_removes_only_the_undeclared():
    ctx = context(check=False)
    changes = converge(Fake, ctx, ["a", "x"], scope=["ns1"])
    assert items(changes) == [("create", "fake", "x", "new"),
                              ("remove", "fake", "ns1/b", "no longer declared"),
                              ("remove", "fake", "ns1/c", "no longer declared")]
    assert ctx.log == ["converge", "remove b", "remove c", "finish"]
    assert "fake ns1/b: fake\n" in Changes.merge([changes])["diff"]["before"]


def test_prune_first_and_check_mode_changes_nothing():
    ctx = context(check=True)
    changes = converge(FakeFirst, ctx, ["a", "b"], scope=["ns1"])
    assert items(changes) == [("remove", "fake", "ns1/c", "no longer declared")]
    assert ctx.log == ["converge", "finish"]  # reported, never removed


def test_no_prune():
    ctx = context(check=False)
    changes = converge(Fake, ctx, [], scope=["ns1"], prune_=False)
    assert items(changes) == []
    assert ctx.log == ["converge", "finish"]


def test_context_hides_fresh_namespaces(monkeypatch):
    from ansible_collections.topo.lab.plugins.module_utils import _resources as resources
    monkeypatch.setattr(resources, "namespace_exists", lambda ns: True)
    ctx = context(check=True)
    ctx.fresh.add("topo-demo-h1")
    assert ctx.exists("topo-demo-h2") and not ctx.exists("topo-demo-h1")
    assert ctx.tables.links("topo-demo-h1") == {}  # no socket asked for: seen as empty


def test_parse_marker():
    assert parse_marker("topo:demo:h1") == ("demo", "h1")
    assert parse_marker("topo:demo") is None  # an interface marker
    assert parse_marker("other:demo:h1") is None
    assert parse_marker(None) is None
