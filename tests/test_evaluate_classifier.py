"""scripts/evaluate_classifier.py and fashiongen.evaluation on folders of labelled images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, load_script
from PIL import Image

from fashiongen.dataset import load_dataset
from fashiongen.imaging import load_image
from fashiongen.labeler.evaluation import evaluate_folder, index_images, validation_ids
from fashiongen.labeler.labeler import Labeler
from fashiongen.labeler.model import build_classifier
from fashiongen.labeler.report import classification_report
from fashiongen.schema import LabelSchema
from fashiongen.splits import make_split
from fashiongen.styles import read_styles

SCRIPT = REPO / "scripts" / "evaluate_classifier.py"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An (untrained) compact model with a 5+5 schema; evaluation must be exact, not good."""
    schema = LabelSchema(("Topwear", "Bags", "Shoes", "Watches", "Dress"), ("Men", "Women", "Boys", "Girls", "Unisex"))
    folder = tmp_path_factory.mktemp("model") / "classifier"
    model = build_classifier(schema, "compact")
    Labeler(model, schema).save(folder, card={"arch": "compact"})
    return folder


@pytest.fixture
def labelled_folder(tiny_dataset: Path) -> tuple[Path, Path]:
    """The tiny dataset, with one photo re-saved as a big PNG and one broken file added."""
    images = tiny_dataset / "images"
    big = Image.open(images / "1.jpg").resize((600, 800))
    (images / "1.jpg").unlink()
    big.save(images / "1.png")
    (images / "9.jpg").write_bytes(b"not a jpeg at all")
    return images, tiny_dataset / "styles.csv"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300)


def test_report_matches_a_direct_computation(model_dir: Path, labelled_folder) -> None:
    images_dir, labels = labelled_folder
    labeler = Labeler.load(model_dir)
    report, skipped = evaluate_folder(labeler, images_dir, labels)
    assert skipped.no_image == [11] and list(skipped.unreadable) == [9]
    assert report["skipped"] == {"no_image": 1, "unknown_gender": 0, "unreadable": 1}
    styles = read_styles(labels)
    kept = styles[~styles["id"].isin([9, 11])]
    files = index_images(images_dir)
    images = np.stack([load_image(files[i]) for i in kept["id"]])
    expected = classification_report(labeler.schema.encode_frame(kept), labeler.scores(images), labeler.schema)
    assert report["n_images"] == 10 == expected["n_images"]
    for key in ("subCategory_accuracy", "gender_accuracy", "micro_auc", "macro_f1_subCategory", "macro_f1_gender"):
        assert report[key] == pytest.approx(expected[key]), key


def test_script_prints_table_and_writes_json(model_dir: Path, labelled_folder, tmp_path: Path) -> None:
    images_dir, labels = labelled_folder
    out = tmp_path / "eval.json"
    result = run("--images", str(images_dir), "--labels", str(labels), "--model", str(model_dir),
                 "--json", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    assert "skipped 1 rows whose id has no image" in result.stdout
    assert "skipped 1 unreadable images (e.g. id 9" in result.stdout
    report = json.loads(out.read_text())
    for key in ("n_images", "subCategory_accuracy", "gender_accuracy", "micro_auc",
                "macro_f1_subCategory", "macro_f1_gender"):
        assert key in report
    assert report["n_images"] == 10


def test_extra_columns_and_unknown_genders(model_dir: Path, tiny_dataset: Path, tmp_path: Path) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text("note,subCategory,id,gender\nx,Topwear,1,Men\ny,Shoes,3,Alien\nz,Nope,4,Women\n")
    labeler = Labeler.load(model_dir)
    report, skipped = evaluate_folder(labeler, tiny_dataset / "images", csv)
    assert skipped.unknown_gender == [3]
    assert report["n_images"] == 2 and report["n_with_subCategory"] == 1  # "Nope" counts for gender only


def test_validation_split_matches_training(tiny_dataset: Path, cache_dir: Path) -> None:
    loaded = load_dataset(tiny_dataset, cache_dir=cache_dir)
    for kind in ("random", "grouped"):
        split = make_split(kind, loaded, seed=3)
        expected = set(loaded.styles["id"].to_numpy()[split.validation].tolist())
        assert validation_ids(tiny_dataset / "images", tiny_dataset / "styles.csv", kind, 3, cache_dir) == expected


@pytest.mark.parametrize("kind", ["random", "grouped"])
def test_validation_split_drops_an_unreadable_image_as_training_does(tiny_dataset: Path, cache_dir: Path,
                                                                     kind: str) -> None:
    intact = load_dataset(tiny_dataset, cache_dir=cache_dir)
    held_out = intact.styles["id"].to_numpy()[make_split(kind, intact, seed=3).validation]
    corrupt = int(held_out[0])  # a held-out image: counting it would move the split
    (tiny_dataset / "images" / f"{corrupt}.jpg").write_bytes(b"not a jpeg at all")
    loaded = load_dataset(tiny_dataset, cache_dir=cache_dir)
    assert corrupt in loaded.unreadable
    expected = set(loaded.styles["id"].to_numpy()[make_split(kind, loaded, seed=3).validation].tolist())
    ids = validation_ids(tiny_dataset / "images", tiny_dataset / "styles.csv", kind, 3, cache_dir)
    assert ids == expected and corrupt not in ids


@pytest.mark.parametrize(
    "csv_text, message",
    [("gender,subCategory\nMen,Topwear\n", "has no column id"), ("", "is empty")],
)
def test_bad_labels_file_is_one_line(model_dir: Path, tiny_dataset: Path, tmp_path: Path, csv_text: str, message: str) -> None:
    csv = tmp_path / "labels.csv"
    csv.write_text(csv_text)
    result = run("--images", str(tiny_dataset / "images"), "--labels", str(csv), "--model", str(model_dir))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_missing_model_names_file_and_fix(tiny_dataset: Path, tmp_path: Path) -> None:
    result = run("--images", str(tiny_dataset / "images"), "--labels", str(tiny_dataset / "styles.csv"),
                 "--model", str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "nowhere/classifier.keras is missing" in result.stderr and "train_classifier.py" in result.stderr


@pytest.fixture(scope="module")
def cli():
    """The script as a module, so its main() runs in this process (TensorFlow is imported once)."""
    return load_script(SCRIPT)


def unwritable_paths(tmp_path: Path) -> dict[str, Path]:
    """Places no one (root included) can write a file to; tests run as root, so no chmod."""
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "a-folder").mkdir()
    return {"parent is a file": tmp_path / "a-file" / "eval.json",
            "folder that cannot be made": Path("/proc/fashiongen-no-such-folder/eval.json"),
            "path is a folder": tmp_path / "a-folder"}


@pytest.mark.parametrize("flag", ["--json", "--figures"])
@pytest.mark.parametrize("where", ["parent is a file", "folder that cannot be made", "path is a folder"])
def test_unwritable_output_fails_before_the_evaluation(cli, model_dir: Path, tiny_dataset: Path, tmp_path: Path,
                                                       monkeypatch, capsys, flag: str, where: str) -> None:
    out = unwritable_paths(tmp_path)[where]
    if flag == "--figures" and where == "path is a folder":
        out = tmp_path / "a-file"  # the figures go into a folder: a file is what is wrong there

    def evaluation_started(*args, **kwargs):
        raise AssertionError("the evaluation ran although its output cannot be written")

    monkeypatch.setattr("fashiongen.labeler.evaluation.evaluate_folder", evaluation_started)
    code = cli.main(["--images", str(tiny_dataset / "images"), "--labels", str(tiny_dataset / "styles.csv"),
                     "--model", str(model_dir), flag, str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and str(out) in err, err


def test_help_mentions_every_flag() -> None:
    text = run("--help").stdout
    for flag in ("--images", "--labels", "--model", "--json", "--validation-split", "--seed", "--figures", "--quiet"):
        assert flag in text


@pytest.fixture(scope="module")
def catalog_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An (untrained) catalog model: the paper's heads plus masterCategory, articleType and baseColour."""
    schema = LabelSchema(("Topwear", "Bags", "Shoes", "Watches", "Dress"), ("Men", "Women", "Boys", "Girls", "Unisex"),
                         (("masterCategory", ("Apparel", "Footwear")), ("articleType", ("Thing", "Shirts")),
                          ("baseColour", ("Blue", "Red", "Black"))))
    folder = tmp_path_factory.mktemp("catalog") / "classifier"
    Labeler(build_classifier(schema), schema).save(folder, card={"arch": "compact"})
    return folder


def test_every_head_whose_column_the_csv_has_is_scored(catalog_model_dir: Path, tiny_dataset: Path,
                                                       tmp_path: Path) -> None:
    """styles.csv scores every head; a CSV of id and baseColour only scores colour, keeps today's keys
    (None where not scored) and skips no row for its missing gender."""
    out = tmp_path / "all.json"
    images = tiny_dataset / "images"
    result = run("--images", str(images), "--labels", str(tiny_dataset / "styles.csv"), "--model",
                 str(catalog_model_dir), "--json", str(out), "--quiet")
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    for column in ("masterCategory", "articleType", "baseColour", "subCategory", "gender"):
        assert report[f"{column}_accuracy"] is not None and f"{column}_macro_f1" in report
    assert report["n_with_baseColour"] == report["n_images"]  # every tiny photo is Blue
    assert "baseColour accuracy" in result.stdout

    colours = tmp_path / "colours.csv"
    styles = read_styles(tiny_dataset / "styles.csv")
    styles[["id", "baseColour"]].assign(baseColour=["Red"] * 3 + ["Black"] * (len(styles) - 3)).to_csv(
        colours, index=False)
    only = tmp_path / "colour.json"
    result = run("--images", str(images), "--labels", str(colours), "--model", str(catalog_model_dir),
                 "--json", str(only), "--quiet")
    assert result.returncode == 0, result.stderr
    colour_report = json.loads(only.read_text())
    assert colour_report["gender_accuracy"] is None and colour_report["subCategory_accuracy"] is None
    assert colour_report["baseColour_accuracy"] is not None and "articleType_accuracy" not in colour_report
    assert colour_report["n_images"] == report["n_images"]
    assert set(colour_report["confusion"]) == {"baseColour"}


def test_a_csv_without_any_model_column_is_one_line(catalog_model_dir: Path, tiny_dataset: Path,
                                                   tmp_path: Path) -> None:
    labels = tmp_path / "ids.csv"
    labels.write_text("id,price\n1,10\n2,20\n")
    result = run("--images", str(tiny_dataset / "images"), "--labels", str(labels), "--model", str(catalog_model_dir))
    assert result.returncode == 2
    assert "has none of the model's columns" in result.stderr and len(result.stderr.strip().splitlines()) == 1
