"""Errors topo reports to a user, and the exit codes they map to.

Exit codes (DESIGN.md 1): 0 success, 1 a verification failed, 2 bad input or usage,
3 environment problem (not root, missing kernel feature, missing program) with the fix named.
A user's mistake never produces a traceback: the CLI catches :class:`TopoError`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field as _field

EXIT_OK = 0
EXIT_VERIFY = 1
EXIT_INPUT = 2
EXIT_ENV = 3


def field_path(path) -> str:
    """The one spelling of a path into a topology: ``('links', 2, 'endpoints', 0, 'node')``
    -> ``'links[2].endpoints[0].node'``. Integers are list indexes, strings keys;
    pydantic's validator markers (``function-after``, ``function-before``) are skipped. A key
    that cannot be printed on one line as it is (a newline or another control character in
    it, which YAML allows) is quoted as JSON, so a problem always stays one line."""
    out = ""
    for part in path:
        if part in ("function-after", "function-before"):
            continue
        if isinstance(part, str) and not part.isprintable():
            part = json.dumps(part)
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@dataclass(frozen=True)
class Source:
    """Where a topology came from: its ``file`` and the 1-based ``lines`` of its paths
    (``{('links', 2, 'endpoints', 0): 7, ...}``; CSV: the row's line). The loader fills it;
    the validated :class:`~topo.model.Lab` carries it (``lab.source``) so later phases can
    name the line of anything they reject, without the raw document."""

    file: str
    lines: dict[tuple, int] = _field(default_factory=dict)
    #: Paths the file spells otherwise (a containerlab file: ``('nodes', 'a')`` is its
    #: ``('topology', 'nodes', 'a')``); empty for topo's own formats.
    fields: dict[tuple, tuple] = _field(default_factory=dict)

    def name(self, path) -> str:
        """The field ``path`` as the file spells it (:func:`field_path`): its longest prefix
        found in ``fields`` replaced by the file's own path."""
        path = tuple(path)
        for n in range(len(path), 0, -1):
            own = self.fields.get(path[:n])
            if own is not None:
                return field_path(own + path[n:])
        return field_path(path)

    def where(self, path) -> int | None:
        """The line of ``path`` or of its nearest ancestor that has one; None if none has."""
        path = tuple(path)
        lines = self.lines
        while path:
            line = lines.get(path)
            if line is not None:
                return line
            path = path[:-1]
        return lines.get(())


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with the input.

    file: the topology file; line: 1-based line (YAML) or line of the row (CSV), None
    when the problem concerns the whole file; field: dotted path or column name
    (``links[2].endpoints[1].node``, ``column peer``); message: what is wrong, in words.
    """

    file: str
    line: int | None
    field: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class TopoError(Exception):
    """Base of errors shown to the user without a traceback; ``exit_code`` says how to exit."""

    exit_code = EXIT_INPUT

    def to_json(self) -> dict:
        """``{error: class name, message, exit_code}``, what ``--json`` prints."""
        return {"error": type(self).__name__, "message": str(self), "exit_code": self.exit_code}


class InputError(TopoError):
    """The topology is invalid. Carries every problem of the failing phase."""

    exit_code = EXIT_INPUT

    def __init__(self, problems: list[Problem], phase: str):
        self.problems = sorted(set(problems), key=lambda p: (p.file, p.line or 0, p.field, p.message))
        self.phase = phase
        n = len(self.problems)
        super().__init__(f"{n} problem{'s' if n != 1 else ''} in the topology ({phase}); nothing was built")

    def to_json(self) -> dict:
        """As :meth:`TopoError.to_json`, plus ``phase`` and ``problems``: ``[{file, line, field, message}]``."""
        out = super().to_json()
        out["phase"] = self.phase
        out["problems"] = [
            {"file": p.file, "line": p.line, "field": p.field, "message": p.message}
            for p in self.problems]
        return out


class EnvironmentProblem(TopoError):
    """The machine cannot do what was asked; the message names the fix."""

    exit_code = EXIT_ENV


class UsageError(TopoError):
    """The command line is wrong (unknown node, missing argument)."""

    exit_code = EXIT_INPUT


class RunFailed(TopoError):
    """An Ansible run failed; ``log`` is the full log's path."""

    exit_code = EXIT_ENV

    def __init__(self, message: str, log: str | None = None):
        super().__init__(message + (f"\nfull log: {log}" if log else ""))
        self.log = log


class Problems:
    """Collects problems during one phase; :meth:`gate` raises them all at once.

    The netlab model (``log.exit_on_error()`` between phases): a phase records every
    problem it finds and the run stops between phases, so the user sees all of them.
    """

    def __init__(self, file: str):
        self.file = file
        self.items: list[Problem] = []

    def add(self, line: int | None, field: str, message: str) -> None:
        """Record a problem at ``line`` (1-based, or None: the whole file) of ``field``
        (spelt by :func:`field_path`, or a CSV column, or "")."""
        self.items.append(Problem(self.file, line, field, message))

    def gate(self, phase: str) -> None:
        """Raise InputError with everything collected so far, if anything was."""
        if self.items:
            raise InputError(self.items, phase)
