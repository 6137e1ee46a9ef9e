"""Shared fixtures: the real dataset in ../shared (skipped when absent, required in CI) and a
tiny dataset the tests make, with the same quirks as the real styles.csv."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashiongen.styles import STYLES_HEADER

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "fashion-small"

# (id, gender, subCategory, productDisplayName): names with unquoted commas, as in the real file
TINY_ROWS = [
    (1, "Men", "Topwear", "Plain Men Shirt"),
    (2, "Women", "Topwear", "Plain Women Top"),
    (3, "Men", "Shoes", "Boss Men Perfume, After Shave Balm and Shower Gel Set"),
    (4, "Women", "Shoes", "Newfeel Unisex White, Blue and Orange Casual Shoes"),
    (5, "Unisex", "Bags", "Bag, Wallet, and Belt Combo"),  # two extra commas: 12 fields
    (6, "Boys", "Bags", "Kids Bag"),
    (7, "Girls", "Watches", "Kids Watch"),
    (8, "Men", "Watches", "Men Watch"),
    (9, "Women", "Dress", "Dress"),
    (10, "Men", "Ties", "Tie"),  # rare sub-category: outside a top-5 schema
    (11, "Men", "Topwear", "No image for this one"),
    (12, "Women", "Topwear", "Duplicate of 2"),
]
TINY_MISSING_IMAGE_IDS = {11}
TINY_DUPLICATES = {12: 2}  # id -> id whose file it copies byte for byte


def tiny_styles_text() -> str:
    lines = [STYLES_HEADER]
    for index, (row_id, gender, sub, name) in enumerate(TINY_ROWS):
        usage = "NA" if row_id == 2 else "Casual"  # the literal string NA, as in the real file
        season = "" if row_id == 6 else "Summer"
        lines.append(f"{row_id},{gender},Apparel,{sub},Thing,Blue,{season},2012,{usage},{name}")
    return "\n".join(lines) + "\n"


def jpeg_bytes(pixels: np.ndarray, **save_args) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90, **save_args)
    return buffer.getvalue()


def make_tiny_dataset(root: Path) -> Path:
    """styles.csv + images/ in `root`: colourful 60x80 JPEGs, one greyscale, one 53x80."""
    rng = np.random.default_rng(0)
    images = root / "images"
    images.mkdir(parents=True)
    (root / "styles.csv").write_text(tiny_styles_text())
    for row_id, *_ in TINY_ROWS:
        if row_id in TINY_MISSING_IMAGE_IDS or row_id in TINY_DUPLICATES:
            continue
        pixels = rng.integers(0, 256, (80, 60, 3), dtype=np.uint8)
        if row_id == 7:
            data = jpeg_bytes(pixels[..., 0])  # greyscale JPEG
        elif row_id == 8:
            data = jpeg_bytes(pixels[:, :53])  # narrower than the dataset's 60
        else:
            data = jpeg_bytes(pixels)
        (images / f"{row_id}.jpg").write_bytes(data)
    for row_id, original in TINY_DUPLICATES.items():
        (images / f"{row_id}.jpg").write_bytes((images / f"{original}.jpg").read_bytes())
    (images / "notes.txt").write_text("not an image: ignored")
    return root


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    return make_tiny_dataset(tmp_path / "fashion-small")


@pytest.fixture
def cache_dir(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real dataset. Absent on a user's fresh clone: skip. In CI it must be there."""
    if not (SHARED_DATA / "styles.csv").is_file():
        if os.environ.get("CI"):
            pytest.fail(f"CI must have the real dataset at {SHARED_DATA}")
        pytest.skip(f"the real dataset is not at {SHARED_DATA} (it sits beside the repo in CI)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def shared_dataset(shared_data: Path, tmp_path_factory: pytest.TempPathFactory):
    """The real dataset decoded once per test session (about 5 s), in a private cache."""
    from fashiongen.dataset import load_dataset

    return load_dataset(shared_data, cache_dir=tmp_path_factory.mktemp("shared-cache"))


def assert_help_mentions(main, flags, capsys) -> None:
    """`main(["--help"])` exits 0 and its text names every flag in `flags`."""
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = capsys.readouterr().out
    assert [flag for flag in flags if flag not in text] == []


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    """The tiny dataset, its decoded-image cache and an untrained classifier folder (helpers.make_tiny)."""
    from helpers import make_tiny  # helpers imports this module: import it when used

    return make_tiny(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def models(tiny, tmp_path_factory: pytest.TempPathFactory):
    """A paper and a conv generator trained for one epoch on the tiny dataset."""
    from types import SimpleNamespace

    from helpers import load_script

    train_cli = load_script(REPO / "scripts" / "train_generator.py")
    root = tmp_path_factory.mktemp("generators")
    for arch in ("paper", "conv"):
        argv = ["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache), "--classifier", str(tiny.classifier),
                "--arch", arch, "--run-dir", str(root / f"run-{arch}"), "--out", str(root / arch), "--epochs", "1",
                "--batch-size", "4", "--quiet"]
        assert train_cli.main(argv) == 0
    return SimpleNamespace(paper=root / "paper", conv=root / "conv", root=root)
