"""Phase 1, load: read a topology file into a raw document with source positions.

The raw document is plain data (dicts, lists, str, int, bool) in the shape of the
canonical YAML form, whatever the file's format, plus a map from each path in it to the
line it came from, so later phases can name the line of any field they reject.

Formats, chosen by suffix: ``.yml``/``.yaml`` (canonical), ``.csv`` (one row per link),
``.clab.yml``/``.clab.yaml`` (containerlab's topology files, :mod:`topo.load.clab`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from topo.errors import Problems, Source

#: Files larger than this are refused before parsing (bounded memory for hostile input).
MAX_FILE_BYTES = 8 * 1024 * 1024
#: The longest lab name: the model's ``LabName`` (topo.model) allows 24 characters
#: (tests/unit/test_usecases.py checks that :attr:`RawLab.lab_name` agrees with it).
LAB_NAME_MAX = 24


@dataclass
class RawLab:
    """A loaded topology: ``data`` in YAML shape, ``lines`` from path tuple to line number,
    ``fields`` from path tuple to the file's own spelling of it (containerlab files)."""

    file: str
    data: dict
    lines: dict[tuple, int] = field(default_factory=dict)
    default_name: str = ""
    #: Paths the file spells otherwise (see :attr:`topo.errors.Source.fields`).
    fields: dict[tuple, tuple] = field(default_factory=dict)
    #: Other files the document was read from (a CSV's ``# topo: verify=checks.yml``), so a
    #: cached expansion of it is dropped when one of them changes (topo.pipeline).
    sources: list[str] = field(default_factory=list)

    @property
    def source(self) -> Source:
        """The file and line map, which outlive the raw document (see :class:`~topo.errors.Source`)."""
        return Source(self.file, self.lines, self.fields)

    @property
    def name(self):
        """The lab name the file gives, unchecked: its ``name``, else its file name's."""
        return self.data.get("name", self.default_name) if isinstance(self.data, dict) else self.default_name

    @property
    def lab_name(self) -> str | None:
        """:attr:`name` when it is a lab name as the model's ``LabName`` has it (the
        collection's ``NAME_PATTERN``, at most :data:`LAB_NAME_MAX` characters), else None
        (validation says why); without importing the model and pydantic (0.3-0.6 s)."""
        import re

        from ansible_collections.topo.lab.plugins.module_utils.api import NAME_PATTERN
        name = self.name
        if isinstance(name, str) and len(name) <= LAB_NAME_MAX and re.fullmatch(NAME_PATTERN, name):
            return name
        return None

    def line_of(self, path: tuple) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one (None: no line)."""
        return self.source.where(path)


def load(path: str) -> RawLab:
    """Load ``path`` by its suffix. Raises InputError (exit 2) for unreadable or malformed files."""
    from topo.load import clab, csv_format, yaml_format

    problems = Problems(path)
    suffix = os.path.splitext(path)[1].lower()
    loaders = {".yml": yaml_format.load, ".yaml": yaml_format.load, ".csv": csv_format.load}
    if suffix not in loaders:
        problems.add(None, "", f"unknown topology format {suffix or '(no suffix)'!r}; "
                               "use .yml/.yaml (YAML) or .csv (one row per link)")
        problems.gate("load")
    try:
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            problems.add(None, "", f"file is {size} bytes; topo reads at most {MAX_FILE_BYTES}")
            problems.gate("load")
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        problems.add(None, "", f"cannot read: {exc.strerror}")
        problems.gate("load")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        problems.add(None, "", f"not UTF-8 text (byte {exc.start})")
        problems.gate("load")
    containerlab = os.path.basename(path).lower().endswith((".clab.yml", ".clab.yaml"))
    lab = (clab.load if containerlab else loaders[suffix])(path, text, problems)
    problems.gate("load")
    lab.default_name = os.path.splitext(os.path.basename(path))[0].removesuffix(".clab" if containerlab else "")
    return lab
