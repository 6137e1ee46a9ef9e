"""Plain helpers the tests share (fixtures live in conftest.py). Import them with
`from helpers import ...`: pytest puts tests/ on sys.path."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace

import keras
import numpy as np
import pandas as pd
from conftest import TINY_ROWS, jpeg_bytes, make_tiny_dataset
from streamlit.testing.v1 import AppTest

from fashiongen import training
from fashiongen.generator.cvae import CVAE
from fashiongen.labeler.labeler import Labeler
from fashiongen.labeler.model import build_classifier
from fashiongen.model_folder import CARD_FILE
from fashiongen.schema import LabelSchema
from fashiongen.styles import read_styles

REPO = Path(__file__).resolve().parents[1]


def load_script(path: Path) -> ModuleType:
    """A script as a module, so that tests can call its main() in this process."""
    spec = importlib.util.spec_from_file_location(f"{path.stem}_cli", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@contextlib.contextmanager
def run_dir_held_by_another_process(run_dir: Path) -> Iterator[int]:
    """`run_dir` locked by another live process (its pid yielded) as training.lock_run_dir locks
    it; the process is killed on exit, and its lock goes with it."""
    hold = ("import fcntl, os, sys, time\n"
            "descriptor = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(descriptor, fcntl.LOCK_EX)\n"
            "os.write(descriptor, f'process {os.getpid()} on a test'.encode())\n"
            "print('held', flush=True)\n"
            "time.sleep(300)\n")
    run_dir.mkdir(parents=True, exist_ok=True)
    other = subprocess.Popen([sys.executable, "-c", hold, str(run_dir / training.RUN_LOCK)], stdout=subprocess.PIPE,
                             text=True)
    try:
        assert other.stdout.readline().strip() == "held"
        yield other.pid
    finally:
        other.kill()
        other.wait()
        other.stdout.close()


def one_error_line(err: str) -> str:
    """The single line a script printed on stderr; fails on a traceback or on several lines."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def run_in_fresh_process(script: Path, argv: list[str]) -> None:
    """Run a training script in its own process (logical devices must be set before TensorFlow
    starts) and require it to succeed."""
    result = subprocess.run([sys.executable, str(script), *argv], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]


def folder_bytes(folder: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def keep_only(data_dir: Path, ids: tuple[int, ...]) -> None:
    """Delete every image of a dataset folder but those of `ids`."""
    for path in (data_dir / "images").glob("*.jpg"):
        if int(path.stem) not in ids:
            path.unlink()


def assert_unwritable_output_stops_training(cli: ModuleType, argv: list[str], flag: str, tmp_path: Path, capsys,
                                            monkeypatch) -> None:
    """A training script's `main(argv)` with `flag` pointed under a regular file exits 2 with one line
    naming the flag and the path, before its `train` runs."""
    def no_training(*args, **kwargs):
        raise AssertionError("the training started although its output cannot be written")

    monkeypatch.setattr(cli, "train", no_training)
    (tmp_path / "a-file").write_text("x")
    bad = tmp_path / "a-file" / "folder"  # as root, no chmod makes a place unwritable
    argv[argv.index(flag) + 1] = str(bad)
    assert cli.main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert flag in line and str(bad) in line


def read_card(out: Path) -> dict:
    return json.loads((out / CARD_FILE).read_text())


def make_classifier(data_dir: Path, folder: Path) -> Labeler:
    """An untrained compact classifier with the tiny dataset's schema: the generator takes its schema
    (and, for --arch paper, its scores) from there."""
    schema = LabelSchema.from_styles(read_styles(data_dir / "styles.csv"))
    labeler = Labeler(build_classifier(schema), schema)
    labeler.save(folder)
    return labeler


def make_tiny(root: Path) -> SimpleNamespace:
    """The tiny dataset, a cache for its decoded images and a classifier folder, in `root`."""
    data_dir = make_tiny_dataset(root / "fashion-small")
    make_classifier(data_dir, root / "classifier")
    return SimpleNamespace(data_dir=data_dir, cache=root / "cache", classifier=root / "classifier")


# the tiny dataset's schema: 6 sub-categories, 5 genders (the real one has 20 + 5 = 25 labels)
SCHEMA = LabelSchema.from_styles(pd.DataFrame(TINY_ROWS, columns=["id", "gender", "subCategory", "name"]))


def fixed_batch(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n images in [0, 1] (float32) and their one-hot conditions."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 80, 60, 3)).astype(np.float32) / 255.0
    rows = [SCHEMA.encode(SCHEMA.sub_categories[i % 6], SCHEMA.genders[i % 5]) for i in range(n)]
    return images, np.stack(rows)


def fresh_test_step(model: CVAE, *data: np.ndarray) -> dict[str, float]:
    for metric in model.metrics:
        metric.reset_state()
    return run_test_step(model, *data)


def force_mean_codes(model: CVAE) -> CVAE:
    """log_var = -40 for every input: the sampled code is mean + e^-20 * noise, i.e. the mean to
    within float32 rounding, so loss terms no longer depend on which noise was drawn."""
    log_var = model.encoder.get_layer("log_var")
    kernel, bias = log_var.get_weights()
    log_var.set_weights([np.zeros_like(kernel), np.full_like(bias, -40.0)])
    return model


N_SUB = len(SCHEMA.sub_categories)


def random_photos_of_three_pairs(n: int = 30, seed: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """n random uint8 photos and condition rows cycling through three pairs, for fitting a prior on
    an untrained generator."""
    images = np.random.default_rng(seed).integers(0, 256, (n, 80, 60, 3), dtype=np.uint8)
    pairs = [condition("Shoes", "Women"), condition("Bags", "Men"), condition("Topwear", "Unisex")]
    return images, np.stack([pairs[i % 3] for i in range(n)])


def synthetic_codes(rng: np.random.Generator):
    """Three pairs around known centres with one shared covariance, plus rows outside the schema
    (an all-zero sub-category part) far away, which the fit must leave out."""
    centres = {("Topwear", "Men"): 5.0, ("Topwear", "Women"): -5.0, ("Bags", "Boys"): 20.0}
    mixing = rng.normal(size=(LATENT, LATENT))
    codes, conditions = [], []
    for (sub_category, gender), centre in centres.items():
        n = {"Bags": 50}.get(sub_category, 400)
        codes.append(centre + rng.normal(size=(n, LATENT)) @ mixing.T)
        conditions.append(np.repeat(condition(sub_category, gender)[None], n, axis=0))
    outside = np.zeros((7, SCHEMA.size), np.float32)
    outside[:, N_SUB] = 1.0  # gender only: a sub-category outside the schema
    codes.append(np.full((7, LATENT), 1e6))
    conditions.append(outside)
    return np.concatenate(codes), np.concatenate(conditions), centres, mixing


def new_app(monkeypatch) -> AppTest:
    monkeypatch.chdir(REPO)
    return AppTest.from_file(str(REPO / "app.py"), default_timeout=180)


SHARED_PHOTO = REPO.parent / "shared" / "data" / "fashion-small" / "images" / "15970.jpg"


def product_photo() -> bytes:
    """A real dataset photo when ../shared is there, else a made-up product-like picture."""
    if SHARED_PHOTO.is_file():
        return SHARED_PHOTO.read_bytes()
    pixels = np.full((80, 60, 3), 255, np.uint8)
    pixels[15:65, 10:50] = (40, 60, 120)
    return jpeg_bytes(pixels)


def assert_probability_chart(app: AppTest, labels: dict[str, str]) -> None:
    """One plotly figure: a panel per head of `labels` (metric title -> shown label, in the page's order),
    titled like its metric, with the head's 3 most probable classes, highest on top: the shown label."""
    (chart,) = app.get("plotly_chart")
    spec = json.loads(chart.proto.spec)
    panels = spec["data"]
    # each head on its own axes, titled, the first two side by side
    assert [bars.get("xaxis", "x") for bars in panels] == ["x", *(f"x{i}" for i in range(2, len(panels) + 1))]
    assert spec["layout"]["xaxis"]["domain"][1] < spec["layout"]["xaxis2"]["domain"][0]
    assert [note["text"] for note in spec["layout"]["annotations"]] == list(labels)
    for bars, label in zip(panels, labels.values(), strict=True):
        assert len(bars["y"]) == 3 and bars["x"] == sorted(bars["x"])
        assert bars["customdata"][-1] == label  # the full name (the axis may cut a long one)


def numbers(logs: dict) -> dict[str, float]:
    return {name: float(value) for name, value in logs.items()}


def run_test_step(model: CVAE, *data: np.ndarray) -> dict[str, float]:
    """One test_step on NumPy data (as tensors, the way fit/evaluate hand it over)."""
    return numbers(model.test_step(tuple(keras.ops.convert_to_tensor(part) for part in data)))


LATENT = 4


def condition(sub_category: str, gender: str) -> np.ndarray:
    return SCHEMA.encode(sub_category, gender)
