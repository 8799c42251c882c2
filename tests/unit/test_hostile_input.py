"""Random and mutated topology files end in a valid lab or a clean InputError, never a crash."""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from topo.errors import InputError
from topo.pipeline import compile_file

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples")
SEEDS = {name: open(os.path.join(EXAMPLES, name)).read() for name in ("clusters.csv", "routed.yml")}
NASTY = st.sampled_from(["", ";", "$(x)", "../", "\u00e9", "-1", "99999999999999999999", "a" * 40, ",", ":",
                         "\n", "'", '"', "{", "[", "&", "*a", "!!python/object:os.system", "0.0.0.0/0", "eth0"])


def _mutate(text: str, data) -> str:
    for _ in range(data.draw(st.integers(1, 4))):
        i = data.draw(st.integers(0, len(text)))
        j = data.draw(st.integers(i, min(len(text), i + 12)))
        text = text[:i] + data.draw(NASTY) + text[j:]
    return text


def _check(tmp_path, suffix, text):
    path = tmp_path / f"lab{suffix}"
    path.write_text(text)
    try:
        compile_file(str(path))
    except InputError as exc:
        assert exc.problems and all(p.file == str(path) for p in exc.problems)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), name=st.sampled_from(sorted(SEEDS)))
def test_mutated_examples(tmp_path, data, name):
    _check(tmp_path, os.path.splitext(name)[1], _mutate(SEEDS[name], data))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(max_size=300), suffix=st.sampled_from([".csv", ".yml"]))
def test_random_text(tmp_path, text, suffix):
    _check(tmp_path, suffix, text)


def test_huge_csv_is_refused_quickly(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "w") as f:
        f.write("node,peer\n")
        for i in range(100_000):
            f.write(f"n{i},n{i + 1}\n")
    try:
        compile_file(str(path))
        raise AssertionError("a 100,000-row CSV should be refused")
    except InputError as exc:
        assert any("rows" in p.message or "bytes" in p.message for p in exc.problems)
