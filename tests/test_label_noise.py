"""fashiongen.labeler.label_noise and scripts/label_noise.py: counted by hand on made-up rows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashiongen.labeler.label_noise import colour_error_sources, duplicate_disagreement, named_colours

REPO = Path(__file__).resolve().parents[1]
COLOURS = ("Blue", "Navy Blue", "Black", "White")


def test_named_colours_takes_the_longest_phrase_and_only_one_colour() -> None:
    names = ["Puma Men Navy Blue Tshirt", "Black and White Shoes", "Red Bag", "BLACK watch", "Bluestone ring"]
    assert named_colours(names, COLOURS) == ["Navy Blue", None, None, "Black", None]


def test_duplicate_disagreement_counts_pairs_within_groups() -> None:
    """Rows 0-2 are one photo (3 pairs, one row NA), rows 3-4 another; row 5 is alone."""
    styles = pd.DataFrame({"baseColour": ["Blue", "Blue", "Black", "White", "White", "Blue"],
                           "usage": ["Casual", "NA", "Casual", "Sports", "Casual", "Casual"]})
    digests = np.array(["a", "a", "a", "b", "b", "c"])
    result = duplicate_disagreement(styles, digests, ["baseColour", "usage"])
    assert result["baseColour"] == {"pairs": 4, "disagreeing": 2, "disagreement": 0.5}
    assert result["usage"] == {"pairs": 2, "disagreeing": 1, "disagreement": 0.5}  # NA pairs left out


def test_colour_errors_split_by_what_the_name_says() -> None:
    names = ["Men Black Shirt", "Women Blue Top", "Navy Blue Jeans", "Plain Shirt", "White Shoes"]
    truth = ["Blue", "Blue", "Blue", "Black", "White"]
    predicted = ["Black", "Black", "Navy Blue", "White", "White"]
    sources = colour_error_sources(names, truth, predicted, COLOURS)
    assert (sources["errors"], sources["name_says_prediction"], sources["name_says_label"], sources["name_silent"]) \
        == (4, 2, 1, 1)
    assert sources["rows_naming_a_colour"] == 4 and sources["name_vs_label_disagreement"] == pytest.approx(2 / 4)


def test_script_prints_the_duplicate_table(tiny_dataset: Path, tmp_path: Path) -> None:
    out = tmp_path / "noise.json"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "label_noise.py"), "--data-dir", str(tiny_dataset),
                             "--cache-dir", str(tmp_path / "cache"), "--json", str(out), "--quiet"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "baseColour" in result.stdout and out.is_file()


def test_script_refuses_a_model_without_a_colour_head(tiny_dataset: Path, tmp_path: Path) -> None:
    from fashiongen.labeler.labeler import Labeler
    from fashiongen.labeler.model import build_classifier
    from fashiongen.schema import LabelSchema

    schema = LabelSchema(("Topwear", "Shoes"), ("Men", "Women", "Unisex", "Boys", "Girls"))
    Labeler(build_classifier(schema), schema).save(tmp_path / "model")
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "label_noise.py"), "--data-dir", str(tiny_dataset),
                             "--cache-dir", str(tmp_path / "cache"), "--model", str(tmp_path / "model"), "--quiet"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "has no baseColour head" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
