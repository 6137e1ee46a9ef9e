"""scripts/label_images.py: a folder of images of any size and format to one CSV row each, resumable."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import assert_help_mentions, jpeg_bytes
from helpers import REPO, load_script, one_error_line
from PIL import Image

from fashiongen.imaging import load_image
from fashiongen.labeler.labeler import Calibration, Labeler
from fashiongen.labeler.model import build_classifier
from fashiongen.labeler.outliers import NotAProduct
from fashiongen.schema import LabelSchema

SCRIPT = REPO / "scripts" / "label_images.py"
cli = load_script(SCRIPT)

# heads in the label vector's order (subCategory, gender, articleType, baseColour); the CSV reads them in
# DISPLAY_ORDER, so gender moves after the extra heads
SCHEMA = LabelSchema(("Topwear", "Bags", "Shoes", "Watches", "Dress"), ("Men", "Women", "Boys", "Girls", "Unisex"),
                     extra_heads=(("articleType", ("Tshirts", "Shirts", "Casual Shoes")),
                                  ("baseColour", ("Black", "White", "Blue", "Red"))))
HEADER = ["file", "subCategory", "subCategory_probability", "articleType", "articleType_probability",
          "baseColour", "baseColour_probability", "gender", "gender_probability", "not_a_product"]
N_PHOTOS = 6
UNREADABLE = ("broken.jpg", "notes.jpg")


@pytest.fixture(scope="module")
def photos(request: pytest.FixtureRequest) -> list[bytes]:
    """A few real product photos (JPEG bytes), or random pictures where the dataset is absent."""
    try:
        data = request.getfixturevalue("shared_data")
        return [path.read_bytes() for path in sorted((data / "images").glob("*.jpg"))[:N_PHOTOS]]
    except pytest.skip.Exception:
        rng = np.random.default_rng(0)
        return [jpeg_bytes(rng.integers(0, 256, (80, 60, 3), dtype=np.uint8)) for _ in range(N_PHOTOS)]


@pytest.fixture(scope="module")
def model_dir(photos: list[bytes], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained compact model with extra heads and a not-a-product detector whose threshold sits at
    the photos' median score, so that some rows are flagged and some are not."""
    model = build_classifier(SCHEMA, "compact")
    scores = -Labeler(model, SCHEMA).analyse(np.stack([load_image(p) for p in photos])).scores[:, :5].max(axis=1)
    detector = NotAProduct("max_probability", threshold=float(np.median(scores)))
    folder = tmp_path_factory.mktemp("model") / "classifier"
    Labeler(model, SCHEMA, calibration=Calibration(not_a_product=detector)).save(folder)
    return folder


@pytest.fixture
def folder(photos: list[bytes], tmp_path: Path) -> Path:
    """The photos, one as a big PNG and one as WebP, two unreadable .jpg files, a text file the
    script must ignore, and a photo in a sub-folder (only --recursive sees it)."""
    images = tmp_path / "images"
    (images / "sub").mkdir(parents=True)
    for i, photo in enumerate(photos):
        (images / f"{10000 + i}.jpg").write_bytes(photo)
    picture = Image.open(io.BytesIO(photos[0]))
    picture.resize((900, 1200)).save(images / "big.png")
    picture.save(images / "photo.webp")
    (images / "broken.jpg").write_bytes(photos[1][:200])  # a truncated JPEG
    (images / "notes.jpg").write_text("a text file with an image's suffix")
    (images / "readme.txt").write_text("not an image: ignored")
    (images / "sub" / "nested.jpg").write_bytes(photos[2])
    return images


def readable(folder: Path) -> list[str]:
    """The top-level images the script can read, as it names and sorts them."""
    images = (path.name for path in folder.iterdir() if path.suffix in (".jpg", ".png", ".webp"))
    return sorted(name for name in images if name not in UNREADABLE)


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, newline="", encoding="utf-8") as handle:
        header, *rows = list(csv.reader(handle))
    assert all(len(row) == len(header) for row in rows), rows
    return header, rows


def test_one_row_per_readable_image_as_predict_labels_it(model_dir: Path, folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "labels.csv"
    result = run(str(folder), "--out", str(out), "--model", str(model_dir), "--batch-size", "3", "--quiet")
    assert result.returncode == 0, result.stderr
    header, rows = read_csv(out)
    assert header == HEADER
    assert [row[0] for row in rows] == readable(folder)  # sorted; no sub-folder, text file or unreadable one
    labeler = Labeler.load(model_dir)
    for row in rows:
        prediction = labeler.predict(load_image(folder / row[0]))[0]
        for column in ("subCategory", "articleType", "baseColour", "gender"):
            name, probability = prediction.top(column)
            cell = HEADER.index(column)
            assert row[cell] == name, (row, column)
            assert len(row[cell + 1].split(".")[1]) == 4  # rounded to 4 decimals
            assert float(row[cell + 1]) == pytest.approx(probability, abs=1e-4)
        assert row[-1] == ("true" if prediction.not_a_product else "false"), row
    flags = [row[-1] for row in rows]
    assert {"true", "false"} == set(flags)  # the detector's threshold splits the photos
    for name in UNREADABLE:
        assert f"  {name} " in result.stderr
    assert "readme.txt" not in result.stderr + out.read_text()
    assert result.stdout.strip().splitlines()[-1] == (
        f"{len(rows)} labelled, 0 skipped as already in {out}, 2 unreadable; "
        f"flagged as not a product: {flags.count('true')}")


def test_rerun_labels_only_new_images(model_dir: Path, folder: Path, tmp_path: Path, capsys) -> None:
    """In this process (TensorFlow's start-up once): the first run, then one with two new photos and
    --recursive (the sub-folder's photo is new too)."""
    out = tmp_path / "labels.csv"
    assert cli.main([str(folder), "--out", str(out), "--model", str(model_dir), "--batch-size", "1", "--quiet"]) == 0
    before = out.read_text()
    capsys.readouterr()
    shutil.copy(folder / "10000.jpg", folder / "20000.jpg")
    shutil.copy(folder / "10001.jpg", folder / "20001.jpg")
    assert cli.main([str(folder), "--out", str(out), "--model", str(model_dir), "--recursive", "--quiet"]) == 0
    again = capsys.readouterr()
    assert out.read_text().startswith(before)  # the first run's rows are kept as they were
    _, rows = read_csv(out)
    files = [row[0] for row in rows]
    assert sorted(files) == sorted(readable(folder) + ["sub/nested.jpg"])  # each once
    assert files[-3:] == ["20000.jpg", "20001.jpg", "sub/nested.jpg"]
    assert f"3 labelled, {len(readable(folder)) - 2} skipped" in again.out
    for name in UNREADABLE:  # never in the CSV, so tried (and listed) again
        assert f"  {name} " in again.err


def test_a_killed_run_resumes_where_it_stopped(model_dir: Path, photos: list[bytes], tmp_path: Path, capsys) -> None:
    """kill -9 in the middle of a run leaves complete rows (and at worst a cut last line); the next run
    (in this process) drops the cut line and labels exactly the images without a row."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(600):
        (folder / f"{i:04d}.jpg").write_bytes(photos[i % len(photos)])
    out = tmp_path / "labels.csv"
    command = [sys.executable, str(SCRIPT), str(folder), "--out", str(out), "--model", str(model_dir),
               "--batch-size", "1", "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while process.poll() is None and time.monotonic() < deadline and (
            not out.exists() or out.read_bytes().count(b"\n") < 4):
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL, "the run ended before it could be killed"
    _, rows = read_csv(out)
    assert 3 <= len(rows) < 600
    with open(out, "rb+") as handle:  # a kill in the middle of a write: the last line cut short
        handle.truncate(out.stat().st_size - 7)
    assert cli.main([str(folder), "--out", str(out), "--model", str(model_dir), "--quiet"]) == 0
    assert "incomplete last line" in capsys.readouterr().err
    assert out.read_bytes().endswith(b"\n")
    header, rows = read_csv(out)
    assert header == HEADER
    assert [row[0] for row in rows] == sorted(p.name for p in folder.iterdir())  # each once, in order


def test_each_batch_is_on_disk_before_the_next_is_read(model_dir: Path, folder: Path, tmp_path: Path,
                                                       monkeypatch, capsys) -> None:
    """Bounded memory and little to lose: batches of --batch-size files, each batch's rows flushed to
    --out before the next batch's images are decoded."""
    out = tmp_path / "labels.csv"
    batches, lines_on_disk = [], []

    def spy(labeler, folder, names, columns):
        batches.append(list(names))
        lines_on_disk.append(out.read_bytes().count(b"\n"))
        return label_chunk(labeler, folder, names, columns)

    label_chunk = cli.label_chunk
    monkeypatch.setattr(cli, "label_chunk", spy)
    assert cli.main([str(folder), "--out", str(out), "--model", str(model_dir), "--batch-size", "2", "--quiet"]) == 0
    names = sorted(readable(folder) + list(UNREADABLE))
    assert batches == [names[i : i + 2] for i in range(0, len(names), 2)]
    # the header, then every readable file of the batches before
    assert lines_on_disk == [1 + sum(name not in UNREADABLE for name in names[:i]) for i in range(0, len(names), 2)]


@pytest.mark.parametrize("content, problem", [
    ("file,subCategory,subCategory_probability,gender,gender_probability,not_a_product\n10000.jpg,Topw",
     "other columns"),  # another model's (and its cut last line is not "repaired" either)
    (",".join(HEADER) + "\n10000.jpg,Topwear,0.5\n", "line 2 has 3 fields"),
    (",".join(HEADER) + '\n"' + "x" * 200_000 + '"\n', "not a CSV this script wrote"),  # over csv's field limit
])
def test_an_out_it_cannot_resume_is_refused_untouched(content: str, problem: str, model_dir: Path, folder: Path,
                                                      tmp_path: Path, capsys, monkeypatch) -> None:
    out = tmp_path / "labels.csv"
    out.write_text(content)
    assert_starts_nothing(monkeypatch)
    assert cli.main([str(folder), "--out", str(out), "--model", str(model_dir)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(out) in line and "--out" in line and problem in line
    assert out.read_text() == content


def test_a_header_cut_short_is_written_again(model_dir: Path, folder: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "labels.csv"
    out.write_text(",".join(HEADER)[:20])  # killed while writing the header
    assert cli.main([str(folder), "--out", str(out), "--model", str(model_dir), "--quiet"]) == 0
    header, rows = read_csv(out)
    assert header == HEADER and [row[0] for row in rows] == readable(folder)


@pytest.mark.parametrize("case", ["missing folder", "out in a missing folder", "out not csv", "out is a folder",
                                  "batch size 0"])
def test_user_mistakes_fail_in_one_line_before_any_work(case: str, model_dir: Path, folder: Path, tmp_path: Path,
                                                        capsys, monkeypatch) -> None:
    argv = {"missing folder": [str(tmp_path / "nope"), "--out", str(tmp_path / "labels.csv")],
            "out in a missing folder": [str(folder), "--out", str(tmp_path / "nope" / "labels.csv")],
            "out not csv": [str(folder), "--out", str(tmp_path / "labels.txt")],
            "out is a folder": [str(folder), "--out", str(tmp_path / "dir.csv")],
            "batch size 0": [str(folder), "--out", str(tmp_path / "labels.csv"), "--batch-size", "0"]}[case]
    (tmp_path / "dir.csv").mkdir()
    assert_starts_nothing(monkeypatch)
    assert cli.main([*argv, "--model", str(model_dir)]) == 2
    one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "labels.csv").exists() and not (tmp_path / "nope").exists()


def test_missing_folder_from_the_command_line(tmp_path: Path) -> None:
    result = run(str(tmp_path / "nope"), "--out", str(tmp_path / "labels.csv"))
    assert result.returncode == 2
    assert one_error_line(result.stderr) == f"error: {tmp_path / 'nope'} does not exist"


def test_help_names_every_flag(capsys) -> None:
    assert_help_mentions(cli.main, ["FOLDER", "--out", "--model", "--batch-size", "--recursive", "--quiet",
                                    "Exit code"], capsys)


def assert_starts_nothing(monkeypatch) -> None:
    """Make starting TensorFlow (the first piece of work) fail the test."""
    def no_work():
        raise AssertionError("TensorFlow started although the arguments are wrong")

    monkeypatch.setattr(cli, "import_tensorflow_quietly", no_work)


def test_benchmark_section_times_both_paths_on_the_same_photos(tiny_dataset: Path, tmp_path: Path) -> None:
    """scripts/benchmark.py --sections label_folder on the tiny dataset: both contenders label the same
    photos alike, and the rates are what the JSON's times say."""
    out = tmp_path / "bench.json"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "benchmark.py"), "--sections", "label_folder",
                             "--data-dir", str(tiny_dataset), "--label-folder-images", "8", "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())["label_folder"]
    assert (report["images"], report["rows"], report["same_labels"]) == (8, {"naive": 8, "batched": 8}, 1.0)
    for contender in ("naive", "batched"):
        assert report[f"{contender}_images_per_s"] == pytest.approx(8 / report[f"{contender}_s"])
    assert report["speedup"] == pytest.approx(report["naive_s"] / report["batched_s"])
    assert "label_images.py" in result.stdout and "img/s" in result.stdout


def test_nothing_readable_exits_1_with_the_list(model_dir: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "notes.jpg").write_text("a text file with an image's suffix")
    (folder / "empty.png").write_bytes(b"")
    out = tmp_path / "labels.csv"
    assert cli.main([str(folder), "--out", str(out), "--model", str(model_dir), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "  empty.png " in captured.err and "  notes.jpg " in captured.err
    assert "0 labelled, 0 skipped" in captured.out and read_csv(out) == (HEADER, [])


def test_without_a_detector_not_a_product_stays_empty(folder: Path, tmp_path: Path) -> None:
    """A model folder without a detector checked nothing: "false" would claim it had."""
    Labeler(build_classifier(SCHEMA, "compact"), SCHEMA).save(tmp_path / "bare")
    out = tmp_path / "labels.csv"
    assert cli.main([str(folder), "--out", str(out), "--model", str(tmp_path / "bare"), "--quiet"]) == 0
    header, rows = read_csv(out)
    assert header == HEADER and rows and {row[-1] for row in rows} == {""}
