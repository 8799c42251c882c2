# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
name: pyroute2_zip
short_description: The controller's pyroute2, zipped once, for build hosts that lack it
description:
  - Returns the path, on the controller, of a zip of the pyroute2 package the controller's
    Python imports (pyroute2 is pure Python).
  - Build hosts need only sshd, root and python3 >= 3.9; topo copies this zip to them
    (C(ansible.builtin.copy), idempotent by checksum) and runs its modules with
    C(PYTHONPATH) naming it, so Python's zipimport loads pyroute2 from it.
  - Next to each source file the zip holds its bytecode (C(.pyc), unchecked hash-based, PEP 552),
    compiled by the controller's Python (the writer of lookup C(topo.lab.python_zip)); a build host whose
    Python has the same bytecode version (the same minor version, e.g. 3.11) imports that and
    compiles nothing, any other one compiles the source, as zipimport does. The pyroute2
    modules topo's module runs import took 0.9-1.3 s to compile from source per module run on
    the project's 2-core reference machine, 0.17-0.25 s from bytecode.
  - The zip is made once per pyroute2 version and Python bytecode version in the cache
    directory and is byte-identical every time it is made (sorted entries, fixed timestamps),
    so its checksum, and so the copy, does not change between runs. Made in a temporary file, then renamed, as several
    forks may ask at once.
author: topo developers
options:
  _terms:
    description: The cache directory (default C($TOPO_HOME/cache), C(/var/lib/topo/cache)).
    type: list
    elements: str
    required: false
"""

EXAMPLES = r"""
- name: Bring pyroute2 to a build host
  ansible.builtin.copy:
    src: "{{ lookup('topo.lab.pyroute2_zip') }}"
    dest: /var/lib/topo/pyroute2.zip
"""

RETURN = r"""
_raw:
  description: The path of the zip on the controller, one element.
  type: list
  elements: str
"""

import os
import sys

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.topo.lab.plugins.lookup.python_zip import write_zip


def make_zip(directory):
    """Zip the importable pyroute2 into ``directory`` (once per version); returns its path.
    Raises ImportError when the controller has no pyroute2."""
    import pyroute2
    root = os.path.dirname(pyroute2.__file__)
    version = getattr(pyroute2, "__version__", "unknown")
    path = os.path.join(directory, "pyroute2-%s-%s.zip" % (version, sys.implementation.cache_tag))
    if os.path.exists(path):
        return path
    base = os.path.dirname(root)
    files = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            if name.endswith(".py") or name == "py.typed":
                files[os.path.relpath(os.path.join(folder, name), base)] = os.path.join(folder, name)
    write_zip(path, files, with_byte_code=True)
    return path


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        home = os.environ.get("TOPO_HOME") or "/var/lib/topo"
        directory = terms[0] if terms else os.path.join(home, "cache")
        try:
            return [make_zip(directory)]
        except ImportError as exc:
            raise AnsibleLookupError("the controller has no pyroute2 to bring to the build hosts "
                                     "(pip install pyroute2): %s" % exc)
        except OSError as exc:
            raise AnsibleLookupError("cannot zip pyroute2 into %s: %s" % (directory, exc))
