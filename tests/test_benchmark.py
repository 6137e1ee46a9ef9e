"""scripts/benchmark.py runs its data section end to end and writes what it prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "scripts" / "benchmark.py"


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
