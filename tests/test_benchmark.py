"""scripts/benchmark.py runs its data and app sections end to end and writes what it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import load_script

from fashiongen.app_server import CHROMIUM

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "benchmark.py"
benchmark = load_script(SCRIPT)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_data_section_on_a_tiny_dataset(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = run("--sections", "data", "--data-dir", str(tiny_dataset), "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())["data"]
    assert report["images"] == 11  # 12 rows, one without an image
    for key in ("naive_decode_images_per_s", "first_decode_images_per_s", "cached_reload_s",
                "first_decode_speedup_vs_naive", "naive_peak_rss_mb", "first_decode_peak_rss_mb"):
        assert report[key] > 0, key
    assert "naive (PIL loop -> float32)" in result.stdout and "img/s" in result.stdout


def test_user_mistakes_give_one_line(tmp_path: Path) -> None:
    result = run("--data-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "--data-dir" in run("--help").stdout


def test_generator_section_times_a_candidate_folder(tmp_path: Path) -> None:
    candidate, out = REPO / "fashiongen" / "pretrained" / "generator-paper", tmp_path / "bench.json"
    result = run("--sections", "generator", "--generator", str(candidate), "--latency-repeats", "2",
                 "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())["generator"]["generate_16"]
    assert report["model"] == str(candidate) and report["ours"]["p50_ms"] > 0
    assert f"generator ({candidate})" in result.stdout
    empty = run("--sections", "generator", "--generator", str(tmp_path))
    # the folder is loaded in a fresh process, whose TensorFlow logs come first
    assert empty.returncode == 2 and "Traceback" not in empty.stderr
    assert empty.stderr.strip().splitlines()[-1].startswith(f"error: --generator: {tmp_path}")


def test_app_section_through_a_real_server(tiny_dataset: Path, tmp_path: Path) -> None:
    """A short run (2 interactions of each kind, 2 concurrent sessions): every number is there and sane."""
    if not Path(CHROMIUM).is_file():
        if os.environ.get("CI"):
            pytest.fail("CI must have Debian's chromium (.ci/run installs it)")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    out = tmp_path / "bench.json"
    started = time.monotonic()
    result = run("--sections", "app", "--data-dir", str(tiny_dataset), "--app-repeats", "2", "--app-sessions", "2",
                 "--json", str(out))
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())["app"]
    assert report["photos"].startswith("11 photos from ")  # the tiny dataset's JPEGs, not generated ones
    assert (report["repeats"], report["sessions"], report["rounds_per_session"]) == (2, 2, 1)
    cold = report["cold_start"]
    assert 0 < cold["server_ready_s"] < cold["first_render_s"] < time.monotonic() - started
    for scope, samples in (("one_session", 2), ("concurrent_sessions", 2)):
        for kind in ("label_shown", "label", "generate"):
            stats = report[scope][kind]
            assert stats["samples"] == samples, (scope, kind)
            assert 0 < stats["p50_ms"] <= stats["p95_ms"], (scope, kind)
        assert report[scope]["label_shown"]["p50_ms"] <= report[scope]["label"]["p50_ms"]  # text, then charts
    assert report["targets"] == {"cold_start_s": 10.0, "label_p50_ms": 300.0, "generate_p50_ms": 500.0}
    checks = report["target_checks"]
    assert set(checks) == {"cold_start_s", "label_p50_ms", "generate_p50_ms", "label_p50_ms_2_sessions",
                           "generate_p50_ms_2_sessions"}
    for name, check in checks.items():
        assert check["target_over_measured"] == pytest.approx(check["target"] / check["measured"]), name
        assert check["met"] == (check["measured"] < check["target"]), name
    cpu = report["server_cpu_ms_per_interaction"]
    assert set(cpu) == {"label", "generate", "label_concurrent", "generate_concurrent"}
    assert all(0 < ms < 60_000 for ms in cpu.values()), cpu  # every interaction costs the server some CPU
    assert "cold start to first render" in result.stdout and "target / measured" in result.stdout
    assert "server CPU per label" in result.stdout


def test_app_section_without_chromium_says_so_in_one_line(tiny_dataset: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(benchmark, "CHROMIUM", str(tiny_dataset / "no-chromium"))
    assert benchmark.main(["--sections", "app", "--data-dir", str(tiny_dataset)]) == 2
    error = capsys.readouterr().err
    assert error.strip().count("\n") == 0 and "apt-get install chromium" in error


def test_training_section_needs_a_step(tmp_path: Path) -> None:
    result = run("--sections", "training", "--data-dir", str(tmp_path), "--training-steps", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "error: --training-steps must be at least 1"  # no styles.csv needed
