"""fashiongen.styles, schema, dataset and splits: styles.csv, label schema, image cache and splits,
on made-up and real data."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import STYLES_HEADER, TINY_MISSING_IMAGE_IDS, TINY_ROWS

from fashiongen.dataset import FashionData, decode_images, load_dataset
from fashiongen.errors import DatasetError
from fashiongen.imaging import PREPROCESSING_VERSION, load_image
from fashiongen.schema import LabelSchema
from fashiongen.splits import duplicate_groups, grouped_split, make_split, random_split, split_ids, validation_size
from fashiongen.styles import read_styles

# ----------------------------------------------------------------------------- styles.csv


def test_read_styles_keeps_every_row_whole(tiny_dataset: Path) -> None:
    styles = read_styles(tiny_dataset / "styles.csv")
    assert list(styles.columns) == STYLES_HEADER.split(",")
    assert styles["id"].tolist() == [row[0] for row in TINY_ROWS]
    assert styles["id"].dtype == np.int64
    names = dict(zip(styles["id"], styles["productDisplayName"]))
    assert names[3] == "Boss Men Perfume, After Shave Balm and Shower Gel Set"
    assert names[5] == "Bag, Wallet, and Belt Combo"
    row2 = styles.set_index("id").loc[2]
    assert row2["usage"] == "NA"  # the text NA, not a missing value
    assert styles.set_index("id").loc[6, "season"] == ""
    assert styles.set_index("id").loc[5, "usage"] == "Casual"  # columns did not shift


def test_read_styles_honours_quoted_fields(tmp_path: Path) -> None:
    path = tmp_path / "styles.csv"
    path.write_text(STYLES_HEADER + '\n1,Men,Apparel,Topwear,Shirts,Blue,Summer,2012,Casual,"Shirt, blue"\n')
    assert read_styles(path)["productDisplayName"].tolist() == ["Shirt, blue"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "is empty"),
        ("id,gender,subCategory\n1,Men,Topwear\n", "has no column masterCategory"),
        (STYLES_HEADER + "\n1,Men,Apparel\n", "line 2 has 3 fields, expected 10"),
        (STYLES_HEADER + "\nabc,Men,A,B,C,D,E,F,G,H\n", "line 2 has id 'abc', not an integer"),
        (STYLES_HEADER + "\n1,Men,A,B,C,D,E,F,G,H\n1,Men,A,B,C,D,E,F,G,H\n", "lists id 1 more than once"),
    ],
)
def test_read_styles_malformed_file_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "styles.csv"
    path.write_text(text)
    with pytest.raises(DatasetError, match=message):
        read_styles(path)


def test_read_styles_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        read_styles(tmp_path / "nope.csv")


def test_read_styles_real_file(shared_data: Path) -> None:
    path = shared_data / "styles.csv"
    assert hashlib.sha256(path.read_bytes()).hexdigest().startswith("cd86bd2d71b4065e")
    with pytest.raises(pd.errors.ParserError):  # the quirk this reader exists for
        pd.read_csv(path)
    styles = read_styles(path)
    assert len(styles) == 44446
    assert styles["id"].is_unique
    assert styles["productDisplayName"].str.contains(",").sum() == 22
    assert styles.set_index("id").loc[44065, "productDisplayName"] == (
        "Boss Men Perfume, After Shave Balm and Shower Gel Set"
    )
    assert (styles["usage"] == "NA").sum() == 316
    assert (styles["baseColour"] == "NA").sum() == 15
    assert (styles["season"] == "").sum() == 21
    # every row has a gender from the five, and nothing spilled into the wrong column
    assert set(styles["gender"]) == {"Men", "Women", "Unisex", "Boys", "Girls"}
    assert styles["year"].str.fullmatch(r"\d{4}|").all()


# ----------------------------------------------------------------------------- label schema


def test_schema_orders_by_count_then_name(tiny_dataset: Path) -> None:
    styles = read_styles(tiny_dataset / "styles.csv")
    schema = LabelSchema.from_styles(styles, n_sub_categories=5)
    # Topwear 4; Bags, Shoes, Watches 2 each (ties by name); Dress and Ties 1 each
    assert schema.sub_categories == ("Topwear", "Bags", "Shoes", "Watches", "Dress")
    assert schema.genders == ("Men", "Women", "Boys", "Girls", "Unisex")
    shuffled = styles.sample(frac=1.0, random_state=3)
    assert LabelSchema.from_styles(shuffled, n_sub_categories=5) == schema


def test_schema_encode_decode_round_trip() -> None:
    schema = LabelSchema(("Topwear", "Shoes", "Bags"), ("Men", "Women"))
    row = schema.encode("Shoes", "Women")
    assert row.tolist() == [0, 1, 0, 0, 1]
    assert schema.encode("Ties", "Men").tolist() == [0, 0, 0, 1, 0]  # outside the schema: zeros
    ranked = schema.decode(np.array([0.1, 0.7, 0.2, 0.3, 0.9]))
    assert [name for name, _ in ranked["subCategory"]] == ["Shoes", "Bags", "Topwear"]
    assert ranked["gender"][0] == ("Women", pytest.approx(0.9))
    with pytest.raises(ValueError, match="valid: Men, Women"):
        schema.encode("Shoes", "Alien")
    with pytest.raises(ValueError, match="valid: Topwear, Shoes, Bags"):
        schema.check("Ties", "Men")


def test_schema_json_round_trip(tmp_path: Path) -> None:
    schema = LabelSchema(("Topwear", "Shoes"), ("Men", "Women", "Unisex"))
    schema.save(tmp_path / "labels.json")
    assert LabelSchema.load(tmp_path / "labels.json") == schema
    (tmp_path / "bad.json").write_text('{"genders": ["Men"]}')
    with pytest.raises(DatasetError, match="sub_categories"):
        LabelSchema.load(tmp_path / "bad.json")


def test_encode_frame_matches_row_by_row(tiny_dataset: Path) -> None:
    styles = read_styles(tiny_dataset / "styles.csv")
    schema = LabelSchema.from_styles(styles, n_sub_categories=5)
    expected = np.stack([schema.encode(s, g) for s, g in zip(styles["subCategory"], styles["gender"])])
    np.testing.assert_array_equal(schema.encode_frame(styles), expected)
    with pytest.raises(DatasetError, match="gender 'Alien'"):
        schema.encode_frame(styles.assign(gender="Alien"))


# ----------------------------------------------------------------------------- images and cache


def test_load_dataset_reports_missing_images(tiny_dataset: Path, cache_dir: Path) -> None:
    loaded = load_dataset(tiny_dataset, cache_dir=cache_dir)
    assert loaded.missing_ids == sorted(TINY_MISSING_IMAGE_IDS)
    assert loaded.styles["id"].tolist() == sorted(r[0] for r in TINY_ROWS if r[0] not in TINY_MISSING_IMAGE_IDS)
    assert loaded.images.shape == (len(loaded.styles), 80, 60, 3) and loaded.images.dtype == np.uint8
    for row_id, image in zip(loaded.styles["id"], loaded.images):
        np.testing.assert_array_equal(image, load_image(tiny_dataset / "images" / f"{row_id}.jpg"))
    digest = dict(zip(loaded.styles["id"], loaded.digests))
    assert digest[12] == digest[2] and digest[1] != digest[2]


def test_load_dataset_rejects_a_folder_without_data(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="download_data.py"):
        load_dataset(tmp_path, cache_dir=tmp_path / "cache")


def test_cache_is_used_then_invalidated(tiny_dataset: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_dataset(tiny_dataset, cache_dir=cache_dir)
    assert len(list(cache_dir.glob("images-*.npy"))) == 2  # images + digests

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the cache is fresh")

    monkeypatch.setattr("fashiongen.dataset.decode_images", no_decoding)
    again = load_dataset(tiny_dataset, cache_dir=cache_dir)
    np.testing.assert_array_equal(again.images, first.images)
    monkeypatch.undo()

    # change one image: the cache must be rebuilt and show the new pixels
    target = tiny_dataset / "images" / "1.jpg"
    target.write_bytes((tiny_dataset / "images" / "3.jpg").read_bytes())
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
    changed = load_dataset(tiny_dataset, cache_dir=cache_dir)
    row = changed.styles.index[changed.styles["id"] == 1][0]
    np.testing.assert_array_equal(changed.images[row], load_image(target))
    assert len(list(cache_dir.glob("images-*.npy"))) == 2  # the stale version was removed


def test_cache_rebuilt_when_preprocessing_changes(tiny_dataset: Path, cache_dir: Path, monkeypatch) -> None:
    load_dataset(tiny_dataset, cache_dir=cache_dir)
    before = {p.name for p in cache_dir.glob("images-*.npy")}
    monkeypatch.setattr("fashiongen.dataset.PREPROCESSING_VERSION", PREPROCESSING_VERSION + 1)
    load_dataset(tiny_dataset, cache_dir=cache_dir)
    assert {p.name for p in cache_dir.glob("images-*.npy")}.isdisjoint(before)


def test_torn_cache_file_is_decoded_again(tiny_dataset: Path, cache_dir: Path) -> None:
    first = load_dataset(tiny_dataset, cache_dir=cache_dir)
    images_file = next(p for p in cache_dir.glob("images-*.npy") if ".digests" not in p.name)
    images_file.write_bytes(images_file.read_bytes()[:200])  # as if the disk filled up mid-write
    again = load_dataset(tiny_dataset, cache_dir=cache_dir)
    np.testing.assert_array_equal(again.images, first.images)


def test_parallel_decoding_matches_serial(tiny_dataset: Path) -> None:
    paths = sorted((tiny_dataset / "images").glob("*.jpg"))
    parallel = decode_images(paths, workers=2, chunk_size=2)
    serial = np.stack([load_image(p) for p in paths])
    np.testing.assert_array_equal(parallel.images, serial)
    assert parallel.unreadable == {}


def truncate(path: Path) -> bytes:
    """Cut a JPEG in half, as an interrupted copy does; returns the good bytes."""
    good = path.read_bytes()
    path.write_bytes(good[: len(good) // 2])
    return good


def test_a_corrupt_image_is_skipped_listed_and_cached_as_a_skip(tiny_dataset: Path, cache_dir: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    target = tiny_dataset / "images" / "3.jpg"
    good = truncate(target)
    loaded = load_dataset(tiny_dataset, cache_dir=cache_dir)
    assert list(loaded.unreadable) == [3] and str(target) in loaded.unreadable[3]
    assert "truncated" in loaded.unreadable[3]
    expected_ids = sorted(r[0] for r in TINY_ROWS if r[0] not in TINY_MISSING_IMAGE_IDS | {3})
    assert loaded.styles["id"].tolist() == expected_ids
    assert len(loaded.images) == len(loaded.digests) == len(expected_ids)
    for row_id, image in zip(loaded.styles["id"], loaded.images):  # rows still match their files
        np.testing.assert_array_equal(image, load_image(tiny_dataset / "images" / f"{row_id}.jpg"))
    assert loaded.missing_ids == sorted(TINY_MISSING_IMAGE_IDS)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although the cache is fresh")

    monkeypatch.setattr("fashiongen.dataset.decode_images", no_decoding)
    again = load_dataset(tiny_dataset, cache_dir=cache_dir)  # the skip comes from the cache too
    assert again.unreadable == loaded.unreadable and again.styles.equals(loaded.styles)
    np.testing.assert_array_equal(again.images, loaded.images)
    monkeypatch.undo()

    # repaired: the cache key changes with the file, so it is decoded and back in the data
    target.write_bytes(good)
    os.utime(target, ns=(time.time_ns(), time.time_ns() + 10**9))
    repaired = load_dataset(tiny_dataset, cache_dir=cache_dir)
    assert repaired.unreadable == {} and 3 in repaired.styles["id"].tolist()
    np.testing.assert_array_equal(repaired.images[repaired.styles["id"] == 3][0], load_image(target))
    assert len(list(cache_dir.glob("images-*"))) == 3  # images, digests, skips: the stale ones removed


def test_every_image_unreadable_gives_an_empty_dataset(tiny_dataset: Path, cache_dir: Path) -> None:
    for path in (tiny_dataset / "images").glob("*.jpg"):
        truncate(path)
    loaded = load_dataset(tiny_dataset, cache_dir=cache_dir)
    assert len(loaded.styles) == len(loaded.images) == len(loaded.digests) == 0
    assert len(loaded.unreadable) == len(TINY_ROWS) - len(TINY_MISSING_IMAGE_IDS)


def test_real_dataset_loads_whole(shared_dataset: FashionData) -> None:
    assert shared_dataset.images.shape == (41396, 80, 60, 3)
    assert len(shared_dataset.missing_ids) == 3050
    assert {12347, 39401, 39403, 39410, 39425} <= set(shared_dataset.missing_ids)
    schema = LabelSchema.from_styles(shared_dataset.styles)
    counts = Counter(shared_dataset.styles["subCategory"])
    expected = sorted(counts, key=lambda name: (-counts[name], name))[:20]
    assert list(schema.sub_categories) == expected
    assert schema.sub_categories[:3] == ("Topwear", "Shoes", "Bags")
    assert set(schema.genders) == {"Men", "Women", "Unisex", "Boys", "Girls"}
    labels = shared_dataset.labels(schema)
    assert labels.shape == (41396, 25)
    assert (labels[:, 20:].sum(axis=1) == 1).all()  # exactly one gender bit
    assert (labels[:, :20].sum(axis=1) <= 1).all()  # at most one sub-category bit
    outside = ~shared_dataset.styles["subCategory"].isin(schema.sub_categories).to_numpy()
    assert (labels[outside, :20] == 0).all() and outside.sum() == (labels[:, :20].sum(axis=1) == 0).sum()


def test_real_images_match_their_files(shared_data: Path, shared_dataset: FashionData) -> None:
    rng = np.random.default_rng(1)
    for row in rng.choice(len(shared_dataset.styles), 50, replace=False):
        row_id = shared_dataset.styles["id"].iloc[row]
        np.testing.assert_array_equal(shared_dataset.images[row], load_image(shared_data / "images" / f"{row_id}.jpg"))


# ----------------------------------------------------------------------------- splits


def test_validation_size_follows_the_paper() -> None:
    assert validation_size(44440) == 2222
    assert validation_size(41396) == 2070


def test_random_split_is_deterministic_and_partitions() -> None:
    ids = np.arange(1000, 3000)
    split = random_split(ids, seed=7)
    assert len(split.validation) == 100 and len(split.train) == 1900
    assert np.intersect1d(split.train, split.validation).size == 0
    np.testing.assert_array_equal(np.union1d(split.train, split.validation), np.arange(2000))
    again = random_split(ids, seed=7)
    np.testing.assert_array_equal(split.validation, again.validation)
    assert not np.array_equal(split.validation, random_split(ids, seed=8).validation)
    # a row's side depends on its id, not on the order of the rows
    reversed_split = random_split(ids[::-1], seed=7)
    assert set(ids[::-1][reversed_split.validation]) == set(ids[split.validation])


def test_grouped_split_keeps_duplicates_together() -> None:
    digests = np.array([f"d{i // 3}" for i in range(300)] + [f"u{i}" for i in range(700)])
    split = grouped_split(digests, seed=1)
    groups = duplicate_groups(digests)
    assert set(groups[split.train]).isdisjoint(groups[split.validation])
    assert 50 <= len(split.validation) <= 52  # ceil(1000/20) or just over with a whole group
    report = split.report(digests)
    assert report["groups_straddling"] == 0 and report["duplicate_groups"] == 100
    random_report = random_split(np.arange(1000), seed=1).report(digests)
    assert random_report["rows_in_duplicate_groups"] == 300


def test_real_splits(shared_dataset: FashionData) -> None:
    random_split = make_split("random", shared_dataset)
    grouped = make_split("grouped", shared_dataset)
    report = random_split.report(shared_dataset.digests)
    assert (report["n_train"], report["n_validation"]) == (39326, 2070)
    assert report["duplicate_groups"] == 570 and report["rows_in_duplicate_groups"] == 1244
    assert report["groups_straddling"] > 0  # why the grouped split exists
    assert grouped.report(shared_dataset.digests)["groups_straddling"] == 0
    assert 2070 <= len(grouped.validation) <= 2075
    # the documented split, pinned: model cards refer to it, so it must never drift
    val_ids = shared_dataset.styles["id"].to_numpy()[random_split.validation]
    fingerprint = hashlib.sha256(",".join(map(str, sorted(val_ids))).encode()).hexdigest()[:16]
    assert fingerprint == PINNED_RANDOM_SPLIT_FINGERPRINT


PINNED_RANDOM_SPLIT_FINGERPRINT = "969f2554b147edd4"  # seed 42, sorted validation ids


def test_split_ids_reads_the_digests_only_for_the_grouped_split() -> None:
    """One place picks the split: the random one never asks for file digests (reading every file is slow)."""
    ids = np.arange(40)

    def no_digests() -> np.ndarray:
        raise AssertionError("digests read for a random split")

    np.testing.assert_array_equal(split_ids("random", ids, no_digests, 3).validation, random_split(ids, 3).validation)
    digests = np.array([f"{i % 10:032x}" for i in ids])
    grouped = split_ids("grouped", ids, lambda: digests, 3)
    np.testing.assert_array_equal(grouped.validation, grouped_split(digests, 3).validation)
    with pytest.raises(ValueError, match="unknown split 'halves'; valid: random, grouped"):
        split_ids("halves", ids, no_digests)


def test_read_styles_unbalanced_quote_names_the_line(tmp_path: Path) -> None:
    # The open quote swallows the rest of the file into one field, past csv's 128 KB field limit.
    rows = [f"{i},Men,Apparel,Topwear,Tshirts,Blue,Summer,2012,Casual,Shirt {i}" for i in range(1, 3000)]
    rows[5] = rows[5].replace("Shirt", '"Shirt')
    path = tmp_path / "styles.csv"
    path.write_text(STYLES_HEADER + "\n" + "\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=r"styles.csv line 7 cannot be parsed \(field larger than field limit"):
        read_styles(path)


# decode_images on the paths given on the command line under an address-space cap of 256 MB above what the
# interpreter already uses; prints the skipped files' reasons as JSON.
_CAPPED_DECODE = """
import json, resource, sys
from fashiongen.dataset import decode_images

with open("/proc/self/status") as status:
    used = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (used + 256 * 2**20, resource.getrlimit(resource.RLIMIT_AS)[1]))
loaded = decode_images(sys.argv[1:], workers=1)
print(json.dumps({"decoded": len(loaded.images), "unreadable": loaded.unreadable}))
"""


def test_a_pipe_or_device_image_is_skipped_not_read(tiny_dataset: Path, tmp_path: Path) -> None:
    # A FIFO without a writer blocks its reader forever; /dev/zero claims 0 bytes and never ends.
    if not hasattr(os, "mkfifo") or not Path("/dev/zero").exists() or not Path("/proc/self/status").exists():
        pytest.skip("needs named pipes, /dev/zero and /proc (Linux)")
    good = sorted((tiny_dataset / "images").glob("*.jpg"))[0]
    fifo, zero = tmp_path / "1.jpg", tmp_path / "2.jpg"
    os.mkfifo(fifo)
    zero.symlink_to("/dev/zero")
    try:
        done = subprocess.run([sys.executable, "-c", _CAPPED_DECODE, str(fifo), str(zero), str(good)],
                              cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("decode_images did not return within 60 s (a read that never ends?)")
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["decoded"] == 1 and sorted(result["unreadable"]) == ["0", "1"], result
    for index, path in ((0, fifo), (1, zero)):
        assert result["unreadable"][str(index)] == f"{path} is not a regular file but a device, pipe or socket, not an image."
