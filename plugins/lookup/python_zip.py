# -*- coding: utf-8 -*-
# Copyright: topo developers. MIT license.
from __future__ import annotations

DOCUMENTATION = r"""
name: python_zip
short_description: Pure-Python distributions of the controller and what they require, zipped once
description:
  - Returns the path, on the controller, of a zip of the named distributions as the
    controller's Python has them installed, together with every distribution they require
    at run time (their C(Requires-Dist), followed recursively; extras and requirements whose
    environment marker does not hold on the controller are left out). For C(docker), the
    Docker SDK with requests, urllib3, idna, certifi and charset_normalizer.
  - Sources, data files (such as certifi's C(cacert.pem)) and each distribution's
    C(METADATA) are zipped, never compiled extensions; so the distributions must work without
    their optional C speed-ups (charset_normalizer falls back to its pure-Python code).
    Beside each source goes its byte code, compiled by the controller's Python as an
    unchecked hash-based C(.pyc) (PEP 552), as zipimport cannot cache byte code; the Docker
    SDK compiled from source at every import took 1.4 s on a build host, 0.5 s from the
    C(.pyc) files (Debian 12's Python 3.11, the 2-core reference machine). A build host whose
    Python has another magic number ignores them and compiles the sources.
  - Build hosts need only sshd, root and python3 >= 3.9; topo copies this zip to those with
    docker nodes (C(ansible.builtin.copy), idempotent by checksum), beside the pyroute2 zip,
    where the container kind's Docker connection adds it to C(sys.path) (zipimport loads it).
  - The zip is made once per set of versions and controller Python in the cache directory
    (its name carries a digest of the distributions, versions and the byte code's magic
    number), with sorted entries and fixed timestamps, so its checksum, and so the copy, does
    not change between runs. Made in a temporary file, then renamed, as several forks may ask
    at once.
author: topo developers
options:
  _terms:
    description: The distributions to zip (names as pip knows them, e.g. C(docker)).
    type: list
    elements: str
    required: true
  directory:
    description: The cache directory (default C($TOPO_HOME/cache), C(/var/lib/topo/cache)).
    type: str
    required: false
"""

EXAMPLES = r"""
- name: Bring the Docker SDK to a build host with docker nodes
  ansible.builtin.copy:
    src: "{{ lookup('topo.lab.python_zip', 'docker') }}"
    dest: /var/lib/topo/docker.zip
"""

RETURN = r"""
_raw:
  description: The path of the zip on the controller, one element.
  type: list
  elements: str
"""

import hashlib
import importlib.util
import marshal
import os
import re
import tempfile
import zipfile
from importlib import metadata

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

#: The timestamp of every entry (zip's epoch), so the zip's bytes depend on the files alone.
EPOCH = (1980, 1, 1, 0, 0, 0)
#: Files never zipped: byte code and compiled extensions (tied to one Python and machine).
SKIP = re.compile(r"(^|/)__pycache__/|\.(pyc|pyo|so|pyd|dll|dylib)$")


def _key(name):
    """A distribution name as PEP 503 normalises it (``charset-normalizer`` =
    ``charset_normalizer``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(names):
    """``[(name, version, Distribution)]`` of the distributions ``names`` and every one they
    require at run time, recursively, sorted by normalised name. A requirement with an extra
    or a marker that does not hold here is left out. PackageNotFoundError when one is not
    installed."""
    from packaging.requirements import Requirement
    found, todo = {}, list(names)
    while todo:
        name = todo.pop()
        if _key(name) in found:
            continue
        dist = metadata.distribution(name)
        found[_key(name)] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return [(d.metadata["Name"], d.version, d) for _, d in sorted(found.items())]


def _files(dist):
    """``{archive name: path}`` of what :func:`make_zip` takes from ``dist``: its files under
    site-packages (as its RECORD lists them) but byte code and compiled extensions, and of its
    ``.dist-info`` only ``METADATA`` (so ``importlib.metadata.version`` answers from the zip)."""
    out = {}
    for f in dist.files or []:
        rel = str(f).replace(os.sep, "/")
        if rel.startswith("../") or SKIP.search(rel):
            continue
        top = rel.split("/", 1)[0]
        if top.endswith(".dist-info") and not rel.endswith("/METADATA"):
            continue
        path = str(dist.locate_file(f))
        if os.path.isfile(path):
            out[rel] = path
    return out


def byte_code(source, name):
    """The ``.pyc`` of ``source`` (bytes) for this Python: an unchecked hash-based one (PEP
    552: magic number, flags 0b01, the source's hash, the marshalled code), which zipimport
    loads without comparing timestamps. ``name``: the file name tracebacks show."""
    code = compile(source, name, "exec", dont_inherit=True)
    return (importlib.util.MAGIC_NUMBER + (1).to_bytes(4, "little") + importlib.util.source_hash(source)
            + marshal.dumps(code))


def _add(z, name, data):
    """Write ``data`` to zip ``z`` as ``name``, with a fixed timestamp and mode 0644."""
    info = zipfile.ZipInfo(name, EPOCH)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    z.writestr(info, data)


def make_zip(names, directory):
    """Zip the distributions ``names`` and what they require (:func:`closure`) into
    ``directory`` (once per set of versions); returns its path. PackageNotFoundError when one
    is not installed on the controller."""
    dists = closure(names)
    pinned = ",".join("%s==%s" % (n, v) for n, v, _ in dists) + ";" + importlib.util.MAGIC_NUMBER.hex()
    digest = hashlib.sha256(pinned.encode()).hexdigest()[:12]
    path = os.path.join(directory, "%s-%s.zip" % ("+".join(sorted(_key(n) for n in names)), digest))
    if not os.path.exists(path):
        files = {}
        for _, _, dist in dists:
            files.update(_files(dist))
        write_zip(path, files, with_byte_code=True)
    return path


def write_zip(path, files, with_byte_code=False):
    """Write the zip ``path`` of ``files`` (``{archive name: file}``), in sorted order, every
    entry with a fixed timestamp and mode 0644, so its bytes depend on the files alone;
    ``with_byte_code``: each ``.py`` followed by its :func:`byte_code`. Made in a temporary
    file in the same directory (created), then renamed, as several forks may ask at once."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_DEFLATED) as z:
            for rel in sorted(files):
                with open(files[rel], "rb") as source:
                    data = source.read()
                _add(z, rel, data)
                if with_byte_code and rel.endswith(".py"):
                    _add(z, rel + "c", byte_code(data, rel))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        home = os.environ.get("TOPO_HOME") or "/var/lib/topo"
        directory = self.get_option("directory") or os.path.join(home, "cache")
        if not terms:
            raise AnsibleLookupError("python_zip needs the distributions to zip, e.g. lookup('topo.lab.python_zip', 'docker')")
        try:
            return [make_zip([str(t) for t in terms], directory)]
        except metadata.PackageNotFoundError as exc:
            raise AnsibleLookupError("the controller has no %s to bring to the build hosts (pip install %s)"
                                     % (exc, exc))
        except OSError as exc:
            raise AnsibleLookupError("cannot zip %s into %s: %s" % (", ".join(terms), directory, exc))
