"""YAML topologies (the canonical form), loaded with line numbers for every value.

PyYAML composes the document into a node tree (safe tags only); we convert it to plain
data ourselves so that each path keeps the line it starts on, duplicate keys are reported
instead of silently overwritten, and alias expansion is bounded (a "billion laughs"
document is refused, not expanded).
"""

from __future__ import annotations

import yaml

from topo.errors import Problems, field_path
from topo.load import RawLab

#: Most nodes a document may expand to, aliases included.
MAX_NODES = 200_000


class _TooBig(Exception):
    pass


def load(path: str, text: str, problems: Problems) -> RawLab:
    """Parse ``text`` (from ``path``) into a RawLab; problems go to ``problems``. Lines are
    1-based and inside the file (libyaml marks what ends at the end of the stream, an error
    or an empty value, one line past the last one: such marks name the last line)."""
    last = max(1, len(text.splitlines()))

    def at(mark) -> int:
        return min(mark.line + 1, last)

    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = at(mark) if mark is not None else None
        if isinstance(exc, yaml.reader.ReaderError):  # a character YAML does not take: no mark, a position
            line = min(text.count("\n", 0, exc.position) + 1, last)
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        problems.add(line, "", f"invalid YAML: {what} "
                               "(check the indentation and quoting on this line and the one before)")
        return RawLab(path, {})
    lab = RawLab(path, {})
    if root is None:
        problems.add(None, "", "the file is empty; a topology needs at least 'nodes'")
        return lab
    if not isinstance(root, yaml.MappingNode):
        problems.add(at(root.start_mark), "", "the top level must be a mapping (name:, nodes:, links: ...)")
        return lab
    constructor = yaml.SafeLoader("")
    budget = [MAX_NODES]

    def convert(node, path):
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooBig()
        lab.lines.setdefault(path, at(node.start_mark))
        if isinstance(node, yaml.MappingNode):
            out = {}
            for knode, vnode in node.value:
                if not isinstance(knode, yaml.ScalarNode):
                    problems.add(at(knode.start_mark), field_path(path), "keys must be plain names")
                    continue
                try:
                    key = constructor.construct_object(knode)
                except yaml.YAMLError as exc:  # a tagged key (!!python/object:...)
                    problems.add(at(knode.start_mark), field_path(path), f"bad key: {getattr(exc, 'problem', None) or exc}")
                    continue
                if isinstance(key, (int, float, bool)) or key is None:
                    key = knode.value
                if key in out:
                    problems.add(at(knode.start_mark), field_path(path + (key,)),
                                 f"duplicate key {key!r} (first on line {lab.lines.get(path + (key,))})")
                    continue
                out[key] = convert(vnode, path + (key,))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [convert(v, path + (i,)) for i, v in enumerate(node.value)]
        try:
            return constructor.construct_object(node)
        except yaml.YAMLError as exc:
            problems.add(at(node.start_mark), field_path(path), f"bad value: {getattr(exc, 'problem', None) or exc}")
            return None

    try:
        lab.data = convert(root, ())
    except _TooBig:
        problems.add(None, "", f"the document expands to more than {MAX_NODES} values (aliases?); refused")
        lab.data = {}
    except RecursionError:
        problems.add(None, "", "the document nests too deeply; refused")
        lab.data = {}
    return lab

