"""Plain helpers the script tests share (fixtures live in conftest.py). Import them with
`from helpers import ...`: pytest puts tests/ on sys.path."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

from conftest import make_tiny_dataset

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


def read_card(out: Path) -> dict:
    return json.loads((out / CARD_FILE).read_text())


def make_classifier(data_dir: Path, folder: Path) -> Labeler:
    """An untrained compact classifier with the tiny dataset's schema: the generator takes its schema
    (and, for --arch paper, its scores) from there."""
    schema = LabelSchema.from_styles(read_styles(data_dir / "styles.csv"))
    labeler = Labeler(build_classifier(len(schema.sub_categories), len(schema.genders)), schema)
    labeler.save(folder)
    return labeler


def make_tiny(root: Path) -> SimpleNamespace:
    """The tiny dataset, a cache for its decoded images and a classifier folder, in `root`."""
    data_dir = make_tiny_dataset(root / "fashion-small")
    make_classifier(data_dir, root / "classifier")
    return SimpleNamespace(data_dir=data_dir, cache=root / "cache", classifier=root / "classifier")
