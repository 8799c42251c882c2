"""The lab's HTML page (topo.graph.render(..., "lab.html")) in a real browser: headless
Chromium loads it from disk, runs its hover script and takes a screenshot. No root needed."""

import os
import re
import shutil
import subprocess

import pytest

from topo.graph import render
from topo.pipeline import compile_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WIDTH, HEIGHT = 1200, 900

pytestmark = pytest.mark.slow


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium binary (apt-get install chromium)")


def _browser(tmp_path, url, *args):
    """Run headless Chromium on ``url`` with a fresh profile, offline from the start; returns stdout."""
    profile = tmp_path / "profile"
    profile.mkdir(exist_ok=True)
    argv = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-quic", f"--user-data-dir={profile}", f"--window-size={WIDTH},{HEIGHT}", *args, url]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return r.stdout


@pytest.fixture
def page(tmp_path):
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's dot program is missing (apt-get install graphviz)")
    expanded = compile_file(os.path.join(ROOT, "examples", "overlay.yml")).expanded
    return expanded, render(expanded, str(tmp_path / "overlay.html"))


def test_html_page_screenshot(page, tmp_path):
    from matplotlib.image import imread

    _, path = page
    shot = tmp_path / "shot.png"
    _browser(tmp_path, f"file://{path}#leaf1", f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 10_000
    pixels = imread(str(shot))
    assert pixels.shape[:2] == (HEIGHT, WIDTH)
    colours = {tuple(p) for p in pixels.reshape(-1, pixels.shape[2])[::31]}
    assert len(colours) > 10, "the screenshot is blank"
    # the group colour of h1..h4 (#8dd3c7) was painted: the SVG was drawn, not just the text
    teal = (pixels[..., 0] * 255).round() == 0x8d
    teal &= ((pixels[..., 1] * 255).round() == 0xd3) & ((pixels[..., 2] * 255).round() == 0xc7)
    assert teal.sum() > 500


def test_html_page_script_runs(page, tmp_path):
    """The page's script found every node and bridge of the SVG and, for ``#leaf1``, shows
    leaf1's interfaces and addresses the way a hover does."""
    expanded, path = page
    dom = _browser(tmp_path, f"file://{path}#leaf1", "--dump-dom")
    assert f'data-hover-nodes="{len(expanded["nodes"]) + len(expanded["bridges"])}"' in dom
    info = re.search(r'<div id="info"([^>]*)>(.*?)</div>', dom, re.S)
    assert info and "hidden" not in info.group(1), dom[-3000:]
    for i in expanded["nodes"]["leaf1"]["interfaces"]:
        assert f"{i['ifname']} {i['address']}" in info.group(2)
