"""Packaging of the repository, which is two things at once (DESIGN.md 3):

* ``topo/``, the Python front end (the ``topo`` command), an ordinary package;
* the Ansible collection ``topo.lab``, whose content (galaxy.yml, meta/, playbooks/,
  plugins/, roles/, inventories/) sits at the repository root, as in community.docker's
  repository.

``pip install .`` puts the collection at ``site-packages/ansible_collections/topo/lab``,
where ansible-core finds collections on ``sys.path``. setuptools cannot map a package to
the repository root without also packing everything else in it (and a checkout reaches the
collection through the symlink ``ansible_collections/topo/lab -> ../..``, which
setuptools' package finder would follow forever), so the build step copies exactly the
collection's folders instead. ``ansible-galaxy collection build`` packs the same content
(galaxy.yml's ``build_ignore`` leaves the front end out).
"""

import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

#: What the collection is made of, relative to the repository root.
COLLECTION_CONTENT = ("galaxy.yml", "meta", "playbooks", "plugins", "roles", "inventories")
COLLECTION_PATH = os.path.join("ansible_collections", "topo", "lab")


class BuildWithCollection(build_py):
    """build_py, plus a copy of the collection into ``ansible_collections/topo/lab``."""

    def run(self):
        super().run()
        here = os.path.dirname(os.path.abspath(__file__))
        target = os.path.join(self.build_lib, COLLECTION_PATH)
        for item in COLLECTION_CONTENT:
            src, dst = os.path.join(here, item), os.path.join(target, item)
            if os.path.isdir(src):
                shutil.rmtree(dst, ignore_errors=True)
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                os.makedirs(target, exist_ok=True)
                shutil.copyfile(src, dst)


setup(
    # find_packages only enters folders with __init__.py: never the checkout's symlink loop
    packages=find_packages(include=["topo", "topo.*"]),
    cmdclass={"build_py": BuildWithCollection},
)
