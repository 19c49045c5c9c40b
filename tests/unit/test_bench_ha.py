"""bench/bench_ha.py's pure parts: percentiles, the summary and the JSON's shape."""

from __future__ import annotations

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

PATH = Path(__file__).resolve().parents[2] / "bench" / "bench_ha.py"
_spec = importlib.util.spec_from_file_location("bench_ha", PATH)
assert _spec and _spec.loader
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)


def test_percentile_known_values() -> None:
    xs = [float(x) for x in range(1, 21)]  # 1..20
    assert bench.percentile(xs, 50) == pytest.approx(10.5)
    assert bench.percentile(xs, 95) == pytest.approx(19.05)
    assert bench.percentile(xs, 0) == 1 and bench.percentile(xs, 100) == 20
    assert bench.percentile([3.0], 95) == 3.0
    assert math.isnan(bench.percentile([], 50))


@given(st.lists(st.floats(0, 1e4), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_is_within_the_data_and_monotonic(xs: list[float], p: float) -> None:
    v = bench.percentile(xs, p)
    assert min(xs) - 1e-9 <= v <= max(xs) + 1e-9
    assert bench.percentile(xs, 50) <= bench.percentile(xs, 95) + 1e-9


def test_summary_and_report_shape() -> None:
    s = bench.summary([1.0, 2.0, 3.0, 4.0], 2.0, failures=1)
    assert s == {"images": 4, "failures": 1, "wall_s": 2.0, "images_per_s": 2.0,
                 "p50_s": 2.5, "p95_s": 3.85}  # fmt: skip
    empty = bench.summary([], 1.0, failures=20)
    assert empty["images"] == 0 and empty["p50_s"] is None
    doc = bench.report(20, 1, {2: {"push": s, "pull": s}, 1: {"push": s, "pull": s}}, {"cpus": 2})
    assert list(doc["replicas"]) == ["1", "2"]
    assert set(doc["replicas"]["1"]) == {"push", "pull"} and doc["cpus"] == 2
    json.dumps(doc)


def test_merge_rounds_takes_medians() -> None:
    a = {"push": {"p50_s": 1.0, "x": None}, "pull": {"p50_s": 2.0, "x": None}}
    b = {"push": {"p50_s": 3.0, "x": None}, "pull": {"p50_s": 4.0, "x": None}}
    c = {"push": {"p50_s": 2.0, "x": None}, "pull": {"p50_s": 9.0, "x": None}}
    got = bench.merge_rounds([a, b, c])
    assert got["push"]["p50_s"] == 2.0 and got["pull"]["p50_s"] == 4.0 and got["push"]["x"] is None


def test_image_refs_are_distinct() -> None:
    refs = bench.image_refs("reg.lab.test", "r1-0-abc", 20)
    assert len(set(refs)) == 20 and refs[0] == "reg.lab.test/bench-ha/img00:r1-0-abc"


def test_help_runs_without_the_lab() -> None:
    cp = subprocess.run([sys.executable, str(PATH), "--help"], capture_output=True, text=True,
                        timeout=60)  # fmt: skip
    assert cp.returncode == 0 and "replicas" in cp.stdout
