"""fashiongen.labeler.report: hand-computed cases, AUC ties and properties, counting by definition, input checks, figures.

The metrics come from scikit-learn, so nothing here compares against scikit-learn: the expectations
are worked out by hand or counted from the definitions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fashiongen.labeler.report import (
    classification_report,
    confusion_figure,
    format_report_table,
    save_confusion_figures,
)
from fashiongen.schema import LabelSchema

SCHEMA = LabelSchema(("Topwear", "Shoes", "Bags"), ("Men", "Women"))
HEADS = ("subCategory", "gender")
REPO = Path(__file__).resolve().parents[1]


def labels(rows: list[tuple[str | None, str]], schema: LabelSchema = SCHEMA) -> np.ndarray:
    return np.stack([schema.encode(sub, gender) for sub, gender in rows]).astype(np.float64)


# Six rows worked out by hand below; row 4 has no sub-category of the schema.
HAND_Y = labels([
    ("Topwear", "Men"), ("Topwear", "Women"), ("Shoes", "Men"),
    ("Bags", "Women"), (None, "Men"), ("Bags", "Women"),
])
HAND_SCORES = np.array([
    # Topwear Shoes Bags   Men   Women
    [0.90, 0.05, 0.05, 0.80, 0.20],  # Topwear right, Men right
    [0.20, 0.70, 0.10, 0.30, 0.70],  # Shoes wrong,   Women right
    [0.10, 0.60, 0.30, 0.40, 0.60],  # Shoes right,   Women wrong
    [0.30, 0.30, 0.40, 0.10, 0.90],  # Bags right,    Women right
    [0.50, 0.20, 0.30, 0.60, 0.40],  # (no sub-category), Men right
    [0.60, 0.10, 0.30, 0.45, 0.55],  # Topwear wrong, Women right
])


def brute_force_auc(y: np.ndarray, s: np.ndarray) -> float:
    """Share of (positive, negative) pairs ranked right, a tie counting 1/2: AUC by definition."""
    positives, negatives = s[y == 1], s[y == 0]
    diff = positives[:, None] - negatives[None, :]
    return float(((diff > 0).sum() + 0.5 * (diff == 0).sum()) / diff.size)


def prf(entry: dict) -> tuple[float, float, float]:
    return entry["precision"], entry["recall"], entry["f1"]


def men_auc(is_men: np.ndarray, men_scores: np.ndarray) -> float | None:
    """The per-output AUC of the report's "Men" output, for rows with no sub-category."""
    is_men = np.asarray(is_men, np.float64)
    y = np.zeros((len(is_men), SCHEMA.size))
    y[:, 3], y[:, 4] = is_men, 1 - is_men
    scores = np.full(y.shape, 0.5)
    scores[:, 3] = men_scores
    return classification_report(y, scores, SCHEMA)["per_class"]["gender"][0]["auc"]


# ----------------------------------------------------------------------------- hand-computed


def test_perfect_predictions_score_one() -> None:
    y = labels([("Topwear", "Men"), ("Shoes", "Women"), ("Bags", "Men"), (None, "Women")])
    report = classification_report(y, y, SCHEMA)
    for key in ("subCategory_accuracy", "gender_accuracy", "micro_auc", "macro_auc",
                "macro_f1_subCategory", "macro_f1_gender"):
        assert report[key] == 1.0, key
    assert report["loss"] == pytest.approx(-np.log(1 - 1e-7))  # clipped, not 0
    assert report["confusion"]["subCategory"]["matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]


def test_hand_computed_case() -> None:
    report = classification_report(HAND_Y, HAND_SCORES, SCHEMA)
    assert report["n_images"] == 6
    assert report["n_with_subCategory"] == 5
    assert report["subCategory_accuracy"] == pytest.approx(3 / 5)
    assert report["gender_accuracy"] == pytest.approx(5 / 6)
    assert report["confusion"]["subCategory"] == {
        "names": ["Topwear", "Shoes", "Bags"], "matrix": [[1, 1, 0], [0, 1, 0], [1, 0, 1]],
    }
    assert report["confusion"]["gender"] == {"names": ["Men", "Women"], "matrix": [[2, 1], [0, 3]]}

    sub = {entry["name"]: entry for entry in report["per_class"]["subCategory"]}
    assert prf(sub["Topwear"]) == pytest.approx((1 / 2, 1 / 2, 1 / 2))
    assert prf(sub["Shoes"]) == pytest.approx((1 / 2, 1, 2 / 3))
    assert prf(sub["Bags"]) == pytest.approx((1, 1 / 2, 2 / 3))
    assert [sub[name]["support"] for name in SCHEMA.sub_categories] == [2, 1, 2]
    assert report["macro_f1_subCategory"] == pytest.approx(11 / 18)
    gender = {entry["name"]: entry for entry in report["per_class"]["gender"]}
    assert prf(gender["Men"]) == pytest.approx((1, 2 / 3, 4 / 5))
    assert prf(gender["Women"]) == pytest.approx((3 / 4, 1, 6 / 7))
    assert report["macro_f1_gender"] == pytest.approx(29 / 35)

    # per-output AUC over all six rows; Bags has two ties at 0.3 between a positive and negatives
    expected_aucs = {"Topwear": 5 / 8, "Shoes": 4 / 5, "Bags": 7 / 8, "Men": 8 / 9, "Women": 8 / 9}
    got_aucs = {entry["name"]: entry["auc"] for head in HEADS for entry in report["per_class"][head]}
    assert got_aucs == pytest.approx(expected_aucs)
    assert report["macro_auc"] == pytest.approx(sum(expected_aucs.values()) / 5)
    assert report["micro_auc"] == pytest.approx(brute_force_auc(HAND_Y.ravel(), HAND_SCORES.ravel()))
    expected_loss = -np.mean(HAND_Y * np.log(HAND_SCORES) + (1 - HAND_Y) * np.log(1 - HAND_SCORES))
    assert report["loss"] == pytest.approx(expected_loss)


def test_rows_without_sub_category_are_left_out_of_its_accuracy() -> None:
    with_sub = classification_report(HAND_Y[[0, 1, 2, 3, 5]], HAND_SCORES[[0, 1, 2, 3, 5]], SCHEMA)
    # row 4 (no sub-category) predicted Topwear: counted, it would change accuracy and the matrix
    full = classification_report(HAND_Y, HAND_SCORES, SCHEMA)
    assert full["subCategory_accuracy"] == with_sub["subCategory_accuracy"] == pytest.approx(3 / 5)
    assert full["confusion"]["subCategory"] == with_sub["confusion"]["subCategory"]
    assert full["gender_accuracy"] != with_sub["gender_accuracy"]  # gender does use every row


def test_no_row_with_a_sub_category_gives_none_not_an_error() -> None:
    y = labels([(None, "Men"), (None, "Women")])
    report = classification_report(y, np.full(y.shape, 0.5), SCHEMA)
    assert report["n_with_subCategory"] == 0
    assert report["subCategory_accuracy"] is None and report["macro_f1_subCategory"] is None
    assert all(entry["auc"] is None for entry in report["per_class"]["subCategory"])  # no positives
    assert report["macro_auc"] == 0.5  # only the gender outputs count
    assert report["loss"] == pytest.approx(np.log(2))
    assert "n/a" in format_report_table(report)
    confusion_figure(report, "subCategory")  # an empty matrix still draws


def test_macro_f1_leaves_out_classes_absent_from_truth_and_predictions() -> None:
    y = labels([("Topwear", "Men"), ("Shoes", "Women")])
    scores = np.array([[0.9, 0.1, 0.0, 0.9, 0.1], [0.1, 0.9, 0.0, 0.1, 0.9]])
    report = classification_report(y, scores, SCHEMA)
    assert report["macro_f1_subCategory"] == 1.0  # Bags (never true, never predicted) not averaged in
    assert report["per_class"]["subCategory"][2] == {
        "name": "Bags", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "auc": None,
    }


def test_works_for_a_schema_of_any_size() -> None:
    schema = LabelSchema(tuple(f"sub{i}" for i in range(20)), ("Men", "Women", "Boys", "Girls", "Unisex"))
    rng = np.random.default_rng(1)
    y = labels([(f"sub{i % 21}" if i % 21 < 20 else None, schema.genders[i % 5]) for i in range(105)], schema)
    report = classification_report(y, rng.random(y.shape), schema)
    assert report["n_with_subCategory"] == 100
    assert np.array(report["confusion"]["subCategory"]["matrix"]).shape == (20, 20)
    assert len(report["per_class"]["gender"]) == 5


# ----------------------------------------------------------------------------- AUC and ties


def test_auc_ties() -> None:
    assert men_auc([1, 0, 1, 0], np.full(4, 0.3)) == 0.5
    assert men_auc([1, 0, 0], [0.5, 0.5, 0.1]) == 0.75  # the tie with a negative counts 1/2
    assert men_auc([0, 1], [0.9, 0.1]) == 0.0


def test_auc_of_separated_scores_is_one_and_of_reversed_scores_zero() -> None:
    is_men = np.array([1, 0, 1, 1, 0, 0, 1])
    separated = np.where(is_men == 1, 0.6, 0.4) + np.arange(7) / 100
    assert men_auc(is_men, separated) == 1.0
    assert men_auc(is_men, 1 - separated) == 0.0


def test_auc_is_invariant_to_monotone_transforms_and_flips_with_the_order() -> None:
    rng = np.random.default_rng(3)
    is_men = rng.integers(0, 2, 200)
    s = np.round(np.clip(0.2 * is_men + 0.8 * rng.random(200), 0, 1) * 10) / 10  # ties
    auc = men_auc(is_men, s)
    assert 0.5 < auc < 1
    for transformed in (s**3, np.sqrt(s), 0.2 + 0.1 * s, (np.exp(s) - 1) / (np.e - 1)):
        assert men_auc(is_men, transformed) == pytest.approx(auc)
    assert men_auc(is_men, 1 - s) == pytest.approx(1 - auc)  # reversing the order, ties stay ties
    assert men_auc(1 - is_men, s) == pytest.approx(1 - auc)  # swapping the classes


def test_auc_matches_pair_counting_on_random_ties() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 2, 500)
    s = rng.integers(0, 7, 500) / 6  # few distinct values: many ties
    assert men_auc(y, s) == pytest.approx(brute_force_auc(y, s))


def test_auc_of_a_single_class_is_none_without_a_warning() -> None:
    y = labels([(None, "Men"), (None, "Men"), (None, "Men")])  # every output has a single class
    scores = np.array([[0.1, 0.2, 0.3, 0.4, 0.5], [0.5, 0.4, 0.3, 0.2, 0.1], [0.3, 0.3, 0.3, 0.45, 0.3]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn warns (>= 1.6) or raises (older) on one class
        report = classification_report(y, scores, SCHEMA)
    assert [entry["auc"] for head in HEADS for entry in report["per_class"][head]] == [None] * 5
    assert report["macro_auc"] is None
    # flattened, the positives are the Men column's 0.4, 0.2, 0.45 against the other twelve scores
    # (0.1 x2, 0.2, 0.3 x6, 0.4, 0.5 x2): above 9 + 1 tie, above 2 + 1 tie, above 10
    assert report["micro_auc"] == pytest.approx((9.5 + 2.5 + 10) / 36)
    assert report["micro_auc"] == pytest.approx(brute_force_auc(y.ravel(), scores.ravel()))


# ----------------------------------------------------------------------------- counting by definition


def random_case(seed: int, n_rows: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """Random labels and scores rounded to 0.05 (ties), Bags never true nor predicted."""
    rng = np.random.default_rng(seed)
    rows = [(rng.choice(["Topwear", "Shoes", None]), rng.choice(SCHEMA.genders)) for _ in range(n_rows)]
    y = labels(rows)
    scores = np.round(np.clip(0.35 * y + 0.65 * rng.random(y.shape), 0, 1) * 20) / 20
    scores[:, 2] = 0.0
    return y, scores


@pytest.mark.parametrize("seed", [0, 1])
def test_random_case_matches_the_definitions(seed: int) -> None:
    y, scores = random_case(seed)
    report = classification_report(y, scores, SCHEMA)
    has_sub = y[:, :3].any(axis=1)
    heads = {
        "subCategory": (y[has_sub, :3].argmax(1), scores[has_sub, :3].argmax(1), 3),
        "gender": (y[:, 3:].argmax(1), scores[:, 3:].argmax(1), 2),
    }
    for head, (truth, predicted, n_classes) in heads.items():
        assert report[f"{head}_accuracy"] == pytest.approx(np.mean(truth == predicted))
        matrix = report["confusion"][head]["matrix"]
        assert matrix == [[int(np.sum((truth == t) & (predicted == p))) for p in range(n_classes)]
                          for t in range(n_classes)]
        f1s = []
        for k, entry in enumerate(report["per_class"][head]):
            hits = np.sum((truth == k) & (predicted == k))
            n_true, n_predicted = np.sum(truth == k), np.sum(predicted == k)
            precision = hits / n_predicted if n_predicted else 0.0
            recall = hits / n_true if n_true else 0.0
            f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
            assert prf(entry) == pytest.approx((precision, recall, f1))
            assert entry["support"] == n_true
            if n_true or n_predicted:
                f1s.append(f1)
        assert report[f"macro_f1_{head}"] == pytest.approx(np.mean(f1s))
    # Bags is neither true nor predicted: left out of the macro-F1, which counting it as 0 would change
    sub_f1 = [entry["f1"] for entry in report["per_class"]["subCategory"]]
    assert sub_f1[2] == 0.0 and report["per_class"]["subCategory"][2]["support"] == 0
    assert report["macro_f1_subCategory"] == pytest.approx(np.mean(sub_f1[:2]))
    assert report["macro_f1_subCategory"] != pytest.approx(np.mean(sub_f1))

    aucs = [entry["auc"] for head in HEADS for entry in report["per_class"][head]]
    assert aucs[2] is None  # Bags has no positive row: skipped
    for j in (0, 1, 3, 4):
        assert aucs[j] == pytest.approx(brute_force_auc(y[:, j], scores[:, j]))
    assert report["macro_auc"] == pytest.approx(np.mean([aucs[j] for j in (0, 1, 3, 4)]))
    assert report["micro_auc"] == pytest.approx(brute_force_auc(y.ravel(), scores.ravel()))
    clipped = np.clip(scores, 1e-7, 1 - 1e-7)
    assert report["loss"] == pytest.approx(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped)))
    assert json.loads(json.dumps(report, allow_nan=False)) == report  # plain Python types


# ----------------------------------------------------------------------------- input checks


@pytest.mark.parametrize("y, scores, message", [
    (np.zeros((6, 4)), HAND_SCORES, r"y_true has shape \(6, 4\); expected \(N, 5\)"),
    (HAND_Y, HAND_SCORES[:, :4], r"scores has shape \(6, 4\)"),
    (HAND_Y[0], HAND_SCORES[0], r"y_true has shape \(5,\)"),
    (HAND_Y, HAND_SCORES[:5], "y_true has 6 rows but scores has 5"),
    (HAND_Y[:0], HAND_SCORES[:0], "no rows"),
    (HAND_Y * 0.5, HAND_SCORES, "only 0 and 1"),
    (HAND_Y, HAND_SCORES * 2, r"probabilities in \[0, 1\]"),
    (HAND_Y, np.where(HAND_SCORES > 0.85, np.nan, HAND_SCORES), r"probabilities in \[0, 1\]"),
    (np.hstack([HAND_Y[:, :3], np.ones((6, 2))]), HAND_SCORES, "row 0 has 2 gender bits"),
    (np.hstack([np.ones((6, 2)), np.zeros((6, 1)), HAND_Y[:, 3:]]), HAND_SCORES, "row 0 has 2 subCategory bits"),
])
def test_bad_inputs_are_rejected(y: np.ndarray, scores: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_report(y, scores, SCHEMA)


# ----------------------------------------------------------------------------- output


def test_report_is_json_serialisable() -> None:
    report = classification_report(HAND_Y, HAND_SCORES, SCHEMA)
    assert json.loads(json.dumps(report, allow_nan=False)) == report
    assert set(report) == {
        "n_images", "n_with_subCategory", "subCategory_accuracy", "gender_accuracy", "micro_auc", "macro_auc",
        "macro_f1_subCategory", "macro_f1_gender", "per_class", "confusion", "loss",
        "subCategory_macro_f1", "gender_macro_f1", "n_with_gender",
    }


def test_every_head_is_scored_on_the_rows_it_covers() -> None:
    """An extra head is scored like the paper's: its own accuracy, macro-F1 and count of covered rows."""
    schema = LabelSchema(("Topwear", "Shoes"), ("Men", "Women"), (("baseColour", ("Red", "Blue", "Black")),))
    frame = pd.DataFrame({"subCategory": ["Topwear", "Shoes", "Shoes", "Topwear"], "gender": ["Men"] * 4,
                          "baseColour": ["Red", "Blue", "Teal", "Black"]})  # Teal: outside the head
    y = schema.encode_frame(frame).astype(np.float64)
    scores = y.copy()
    colour = schema.slices["baseColour"]
    scores[3, colour] = [0.6, 0.3, 0.1]  # the Black photo called Red
    report = classification_report(y, scores, schema)
    assert report["n_with_baseColour"] == 3
    assert report["baseColour_accuracy"] == pytest.approx(2 / 3)
    assert report["subCategory_accuracy"] == 1.0
    assert report["confusion"]["baseColour"]["matrix"] == [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    assert "baseColour accuracy" in format_report_table(report)


def test_format_report_table() -> None:
    table = format_report_table(classification_report(HAND_Y, HAND_SCORES, SCHEMA))
    lines = table.splitlines()
    assert lines[0].split() == ["metric", "value", "n"]
    assert lines[1].split() == ["subCategory", "accuracy", "0.6000", "5"]
    assert lines[3].split() == ["gender", "accuracy", "0.8333", "6"]
    assert "macro AUC" in table and "loss (BCE)" in table


def test_confusion_figure() -> None:
    report = classification_report(HAND_Y, HAND_SCORES, SCHEMA)
    figure = confusion_figure(report, "subCategory")
    heatmap = figure.data[0]
    np.testing.assert_allclose(heatmap.z, [[0.5, 0.5, 0], [0, 1, 0], [0.5, 0, 0.5]])  # row shares
    assert np.asarray(heatmap.text).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]  # counts
    assert list(heatmap.x) == list(heatmap.y) == ["Topwear", "Shoes", "Bags"]
    assert figure.layout.xaxis.title.text == "predicted" and figure.layout.yaxis.title.text == "true"
    assert "subCategory" in figure.layout.title.text and "60.0%" in figure.layout.title.text
    with pytest.raises(ValueError, match="unknown head 'colour'"):
        confusion_figure(report, "colour")


def test_html_is_written_and_png_failure_only_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-such-browser"))  # Kaleido cannot start
    report = classification_report(HAND_Y, HAND_SCORES, SCHEMA)
    with pytest.warns(UserWarning, match="skipped the PNG confusion figures"):
        paths = save_confusion_figures(report, tmp_path / "out", prefix="val")
    assert paths == [tmp_path / "out" / "val_subCategory.html", tmp_path / "out" / "val_gender.html"]
    sub_html, gender_html = (path.read_text() for path in paths)
    assert all(f'"{name}"' in sub_html for name in SCHEMA.sub_categories)
    assert all(f'"{name}"' in gender_html for name in SCHEMA.genders)
    assert not list((tmp_path / "out").glob("*.png"))


def test_png_export_when_a_browser_is_available(tmp_path: Path) -> None:
    report = classification_report(HAND_Y, HAND_SCORES, SCHEMA)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = save_confusion_figures(report, tmp_path)
    png_warnings = [str(w.message) for w in caught if "PNG" in str(w.message)]
    if png_warnings:
        if os.environ.get("CI"):  # CI installs kaleido and Debian's chromium: PNGs must be written there
            pytest.fail(f"PNG export failed in CI: {png_warnings[0]}")
        pytest.skip(f"PNG export does not work here: {png_warnings[0]}")
    assert [path.name for path in paths] == [
        "confusion_subCategory.html", "confusion_gender.html", "confusion_subCategory.png", "confusion_gender.png",
    ]
    for path in paths[2:]:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_module_imports_neither_tensorflow_plotly_nor_sklearn() -> None:
    code = (
        "import sys, fashiongen.labeler.report; "
        "print(sorted(m for m in ('tensorflow', 'keras', 'plotly', 'sklearn') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
