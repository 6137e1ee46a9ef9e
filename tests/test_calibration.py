"""Temperatures, the not-a-product scores and threshold, and a labeler folder's calibration files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fashiongen.errors import ClassifierError
from fashiongen.labeler.calibration import apply_temperature, fit_temperature, reliability
from fashiongen.labeler.fitting import fit_calibration, fit_temperatures
from fashiongen.labeler.labeler import CALIBRATION_FILE, Calibration, Labeler
from fashiongen.labeler.model import build_classifier
from fashiongen.labeler.outliers import (
    OUTLIER_FILE,
    ImageSignals,
    MahalanobisStatistics,
    NeighbourBank,
    NotAProduct,
    outlier_scores,
    threshold_at,
)
from fashiongen.schema import LabelSchema

SCHEMA = LabelSchema(("Topwear", "Shoes", "Bags"), ("Men", "Women"), (("baseColour", ("Red", "Blue", "Black")),))


def softmax(logits: np.ndarray) -> np.ndarray:
    shares = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shares / shares.sum(axis=1, keepdims=True)


# ----------------------------------------------------------------------------- temperatures


def test_fit_temperature_recovers_the_temperature_that_made_the_labels() -> None:
    """Labels drawn from softmax(z) and probabilities reported as softmax(3 z): the fitted
    temperature undoes the factor 3 (within sampling noise), and the argmax never moves."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, (20000, 5))
    truth = np.array([rng.choice(5, p=p) for p in softmax(logits)])
    overconfident = softmax(3 * logits)
    temperature = fit_temperature(overconfident, truth)
    assert temperature == pytest.approx(3.0, rel=0.05)
    calibrated = apply_temperature(overconfident, temperature)
    np.testing.assert_array_equal(calibrated.argmax(axis=1), overconfident.argmax(axis=1))
    assert reliability(calibrated, truth)["ece"] < 0.02 < reliability(overconfident, truth)["ece"]


def test_reliability_by_hand() -> None:
    """Two bins: confidence 0.9 right once of twice (gap 0.4), confidence 0.6 right once (gap 0.4)."""
    probabilities = np.array([[0.9, 0.1], [0.9, 0.1], [0.4, 0.6]])
    truth = np.array([0, 1, 1])
    result = reliability(probabilities, truth, n_bins=10)
    assert result["ece"] == pytest.approx(2 / 3 * 0.4 + 1 / 3 * 0.4)
    assert [(b["count"], b["accuracy"]) for b in result["bins"]] == [(1, 1.0), (2, 0.5)]


def test_fit_temperatures_skips_rows_outside_a_head() -> None:
    """A photo whose colour is outside the head has zeros there: it must not pull that head's temperature."""
    rng = np.random.default_rng(1)
    n = 400
    labels = np.zeros((n, SCHEMA.size))
    labels[np.arange(n), rng.integers(0, 3, n)] = 1
    labels[np.arange(n), 3 + rng.integers(0, 2, n)] = 1
    colour = SCHEMA.slices["baseColour"]
    covered = np.arange(n) < 300
    labels[np.flatnonzero(covered), colour.start + rng.integers(0, 3, 300)] = 1
    scores = np.concatenate([softmax(rng.normal(0, 1, (n, 3))), softmax(rng.normal(0, 1, (n, 2))),
                             softmax(rng.normal(0, 1, (n, 3)))], axis=1)
    _, report = fit_temperatures(scores, labels, SCHEMA)
    assert report["baseColour"]["n"] == 300 and report["subCategory"]["n"] == n


# ----------------------------------------------------------------------------- scores and threshold


def test_threshold_flags_at_most_the_rate_asked_for() -> None:
    scores = np.random.default_rng(2).normal(size=1000)
    threshold = threshold_at(scores, 0.02)
    assert 0.015 <= np.mean(scores > threshold) <= 0.02


def test_nearest_neighbour_distance_is_zero_for_a_bank_photo_and_grows_away_from_it() -> None:
    rng = np.random.default_rng(3)
    texture = rng.random((50, 8)) + 1
    bank = NeighbourBank.fit(texture, size=50)
    signals = ImageSignals(np.zeros((3, 4)), {}, np.zeros((3, 3)),
                           np.stack([texture[7] * 5, texture[7] + 0.3 * rng.random(8), -texture[7]]))
    distances = outlier_scores("nearest_neighbour", signals, bank)
    assert distances[0] == pytest.approx(0, abs=1e-3)  # scale does not matter: unit length
    assert distances[0] < distances[1] < distances[2]


def test_mahalanobis_distance_to_the_nearest_class_mean() -> None:
    rng = np.random.default_rng(4)
    features = np.r_[rng.normal(0, 1, (200, 3)), rng.normal(10, 1, (200, 3))]
    statistics = MahalanobisStatistics.fit(features, np.r_[np.zeros(200), np.ones(200)].astype(int))
    signals = ImageSignals(np.array([[0, 0, 0], [10, 10, 10], [5, 5, 5], [30, 0, 0]]), {}, np.zeros((4, 2)))
    near_a, near_b, between, far = outlier_scores("mahalanobis", signals, statistics)
    assert max(near_a, near_b) < 1 < between < far


# ----------------------------------------------------------------------------- model folders


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained compact catalog labeler with temperatures and a neighbour bank, saved."""
    model = build_classifier(SCHEMA)
    images = np.random.default_rng(5).integers(0, 256, (40, 80, 60, 3), dtype=np.uint8)
    texture = Labeler(model, SCHEMA).analyse(images).signals.texture
    calibration = Calibration({"subCategory": 2.0}, NotAProduct("nearest_neighbour", 0.5, 0.02,
                                                                NeighbourBank.fit(texture)))
    folder = tmp_path_factory.mktemp("labeler") / "classifier"
    Labeler(model, SCHEMA, {"arch": "compact"}, calibration).save(folder)
    return folder


def test_calibration_round_trips_and_changes_probabilities_not_labels(calibrated: Path) -> None:
    loaded = Labeler.load(calibrated)
    assert loaded.calibration.temperatures == {"subCategory": 2.0}
    assert loaded.calibration.not_a_product.method == "nearest_neighbour"
    images = np.random.default_rng(6).integers(0, 256, (4, 80, 60, 3), dtype=np.uint8)
    bare = Labeler(loaded.model, SCHEMA)
    part = SCHEMA.slices["subCategory"]
    np.testing.assert_allclose(loaded.scores(images)[:, part], apply_temperature(bare.scores(images)[:, part], 2.0),
                               atol=1e-6)
    np.testing.assert_array_equal(loaded.scores(images)[:, SCHEMA.slices["gender"]],
                                  bare.scores(images)[:, SCHEMA.slices["gender"]])
    prediction = loaded.predict(images[:1])[0]
    assert prediction.outlier_score is not None and isinstance(prediction.not_a_product, bool)
    assert set(prediction.heads) == {"subCategory", "gender", "baseColour"}


def copy_of(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    target.mkdir()
    for path in folder.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


@pytest.mark.parametrize("config, message", [
    ([1, 2], "not a JSON object"),
    ({"temperatures": {"colour": 1.0}, "not_a_product": None}, "which is no head"),
    ({"temperatures": {"subCategory": -1}, "not_a_product": None}, "not a number from"),
    ({"temperatures": {"subCategory": True}, "not_a_product": None}, "not a number from"),
    ({"temperatures": {}, "not_a_product": {"method": "vibes", "threshold": 1, "false_flag_rate": 0.02}},
     "not an object with a method"),
    ({"temperatures": {}, "not_a_product": {"method": "energy", "threshold": "high", "false_flag_rate": 0.02}},
     "threshold"),
])
def test_a_bad_labeler_json_names_the_file_and_the_fix(calibrated: Path, tmp_path: Path, config, message) -> None:
    folder = copy_of(calibrated, tmp_path)
    (folder / CALIBRATION_FILE).write_text(json.dumps(config))
    with pytest.raises(ClassifierError, match=message) as caught:
        Labeler.load(folder)
    assert CALIBRATION_FILE in str(caught.value) and "calibrate_classifier.py" in str(caught.value)


@pytest.mark.parametrize("content, message", [
    (None, "is missing"),
    (b"not a zip", "unreadable"),
    ("wrong width", r"holds a bank of shape \(5, 3\)"),
    ("bomb", "unpack to"),
])
def test_a_bad_neighbour_bank_names_the_file(calibrated: Path, tmp_path: Path, content, message) -> None:
    folder = copy_of(calibrated, tmp_path)
    if content is None:
        (folder / OUTLIER_FILE).unlink()
    elif content == "wrong width":
        np.savez(folder / OUTLIER_FILE, bank=np.ones((5, 3), np.float16))
    elif content == "bomb":  # 2 KB on disk, 128 MB once unpacked
        np.savez_compressed(folder / OUTLIER_FILE, bank=np.zeros((2**15, 2**10), np.float32))
    else:
        (folder / OUTLIER_FILE).write_bytes(content)
    with pytest.raises(ClassifierError, match=message) as caught:
        Labeler.load(folder)
    assert OUTLIER_FILE in str(caught.value)


def test_a_folder_without_calibration_flags_nothing(tmp_path: Path) -> None:
    Labeler(build_classifier(SCHEMA), SCHEMA).save(tmp_path / "bare")
    loaded = Labeler.load(tmp_path / "bare")
    assert not (tmp_path / "bare" / CALIBRATION_FILE).exists()
    prediction = loaded.predict(np.zeros((80, 60, 3), np.uint8))[0]
    assert prediction.not_a_product is False and prediction.outlier_score is None


# ----------------------------------------------------------------------------- fitting


def test_fit_calibration_threshold_flags_two_percent_of_validation_and_the_unlike() -> None:
    """On white-background 'photos' of coloured blocks, the fitted threshold flags about 2% of the
    validation ones and every image of pure noise (which nothing in training resembles)."""
    rng = np.random.default_rng(7)
    n = 300
    images = np.full((n, 80, 60, 3), 255, np.uint8)
    labels = np.zeros((n, SCHEMA.size), np.float32)
    for i in range(n):
        kind, colour = i % 3, (i // 3) % 3
        top, left = rng.integers(5, 30), rng.integers(5, 25)
        images[i, top : top + 30 + 10 * kind, left : left + 25] = [(200, 30, 30), (30, 30, 200), (20, 20, 20)][colour]
        labels[i, kind] = labels[i, 3 + i % 2] = labels[i, SCHEMA.slices["baseColour"].start + colour] = 1
    noise = rng.integers(0, 256, (20, 80, 60, 3), dtype=np.uint8)
    labeler = Labeler(build_classifier(SCHEMA), SCHEMA)
    calibration, report = fit_calibration(labeler, images, labels, np.arange(200), np.arange(200, n), noise,
                                          "nearest_neighbour", ["noise"] * 20)
    chosen = report["not_a_product"]["methods"]["nearest_neighbour"]
    assert chosen["false_flag_rate"] <= 0.02 and chosen["flagged_rate"] == 1.0
    assert set(report["calibration"]) == set(SCHEMA.heads)
    assert set(report["not_a_product"]["methods"]) == {"nearest_neighbour", "mahalanobis", "energy", "max_probability"}
    flagged = Labeler(labeler.model, SCHEMA, calibration=calibration).analyse(noise).not_a_product
    assert flagged.all()


def test_temperatures_for_a_sigmoid_model_and_empty_class_means_are_refused(tmp_path: Path) -> None:
    """A paper-arch model (sigmoids; its "head_dense" is no softmax head) takes no temperatures, and
    mahalanobis statistics without a class mean would fail at every prediction."""
    from fashiongen.labeler.model import has_softmax_heads

    paper = build_classifier(SCHEMA.paper, "paper")
    assert not has_softmax_heads(paper) and has_softmax_heads(build_classifier(SCHEMA))
    Labeler(paper, SCHEMA.paper).save(tmp_path / "paper")
    (tmp_path / "paper" / CALIBRATION_FILE).write_text(json.dumps({"temperatures": {"gender": 1.5}}))
    with pytest.raises(ClassifierError, match="sigmoids"):
        Labeler.load(tmp_path / "paper")
    model = build_classifier(SCHEMA)
    width = model.get_layer("features").output.shape[-1]
    empty = MahalanobisStatistics(np.zeros((0, width), np.float32), np.eye(width, dtype=np.float32))
    Labeler(model, SCHEMA, calibration=Calibration(not_a_product=NotAProduct("mahalanobis", 1.0, 0.02, empty))).save(
        tmp_path / "empty")
    with pytest.raises(ClassifierError, match="holds means"):
        Labeler.load(tmp_path / "empty")


def test_split_of_card_remakes_the_split_and_refuses_another_dataset(tiny_dataset: Path, tmp_path: Path) -> None:
    from fashiongen.dataset import load_dataset
    from fashiongen.splits import make_split, split_of_card, validation_digest

    data = load_dataset(tiny_dataset, cache_dir=tmp_path / "cache")
    split = make_split("random", data, 42)
    digest = validation_digest(data.styles["id"].to_numpy()[split.validation])
    again = split_of_card({"kind": "random", "seed": 42, "validation_ids_sha256": digest, "n_train_used": 3}, data, "m")
    np.testing.assert_array_equal(again.validation, split.validation)
    np.testing.assert_array_equal(again.train, split.train[:3])
    with pytest.raises(ValueError, match="does not give the validation photos m was trained with"):
        split_of_card({"kind": "random", "seed": 42, "validation_ids_sha256": "0" * 64}, data, "m")
    for bad in ({"kind": "sideways"}, {"seed": "42"}, {"seed": True}):
        with pytest.raises(ValueError, match="not a split"):
            split_of_card(bad, data, "m")
