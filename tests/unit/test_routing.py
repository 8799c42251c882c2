"""Who pings whom by default when the lab declares its own routes (routing: none)."""

import os

from topo.pipeline import compile_file

HERE = os.path.dirname(os.path.abspath(__file__))


def targets(expanded):
    return {c["from"]: {t["address"] for t in c["targets"]} for c in expanded["checks"] if c["type"] == "ping"}


def test_default_pings_follow_the_declared_routes():
    """h1 (default route to r1) and h2 (10/8 via r1) reach each other and r1's loopback
    through r1; h3, on h2's segment but without a route back, is pinged only from its own
    segment, and pings only there. Applied for real, every one of these pings passes."""
    got = targets(compile_file(os.path.join(HERE, "input", "static-routes.yml")).expanded)
    assert got["h1"] == {"10.0.1.1", "10.0.2.1", "10.0.2.2", "10.9.9.9"}
    assert got["h2"] == {"10.0.1.1", "10.0.1.2", "10.0.2.1", "10.0.2.3", "10.9.9.9"}
    assert got["h3"] == {"10.0.2.1", "10.0.2.2"}
    assert got["r1"] == {"10.0.1.2", "10.0.2.2", "10.0.2.3"}


def test_a_route_without_a_way_back_is_not_a_default_ping(tmp_path):
    """One-way routes: h1 reaches h2's segment through r1 but h2 has no route back, so no
    default ping crosses r1 (a ping needs its reply); r1's own addresses still answer."""
    lab = tmp_path / "oneway.yml"
    lab.write_text((open(os.path.join(HERE, "input", "static-routes.yml")).read()
                    .replace("h2: {routes: [{dst: 10.0.0.0/8, via: 10.0.2.1}]}", "h2: {}")))
    got = targets(compile_file(str(lab)).expanded)
    assert got["h1"] == {"10.0.1.1", "10.0.2.1", "10.9.9.9"}  # r1 itself answers
    assert got["h2"] == {"10.0.2.1", "10.0.2.3"}
