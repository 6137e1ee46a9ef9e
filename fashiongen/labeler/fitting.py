"""What is fitted on a trained labeler before it ships: each softmax head's temperature and the
not-a-product threshold on the validation photos of its split, the detector's neighbour bank or
class statistics on its training photos."""

from __future__ import annotations

from typing import Any

import numpy as np

from fashiongen.labeler.calibration import apply_temperature, fit_temperature, reliability
from fashiongen.labeler.labeler import Calibration, Labeler
from fashiongen.labeler.outliers import (
    DEFAULT_METHOD,
    FALSE_FLAG_RATE,
    METHODS,
    MahalanobisStatistics,
    NeighbourBank,
    NotAProduct,
    detection_summary,
    outlier_scores,
    threshold_at,
)
from fashiongen.schema import LabelSchema

# the finest head the Mahalanobis class means can use, first found
MEAN_HEADS = ("articleType", "subCategory")


def fit_temperatures(scores: np.ndarray, labels: np.ndarray, schema: LabelSchema) -> tuple[dict[str, float], dict]:
    """Each head's temperature from validation `scores` and 0/1 `labels` (N, schema.size), and the
    calibration report: per head, the expected calibration error before, after, and cross-fitted
    (temperature fitted on one half of the rows, ECE measured on the other, both ways)."""
    temperatures, report = {}, {}
    for column, part in schema.slices.items():
        covered = labels[:, part].any(axis=1)
        probabilities, truth = scores[covered, part], labels[covered, part].argmax(axis=1)
        temperature = fit_temperature(probabilities, truth)
        temperatures[column] = round(temperature, 4)
        before = reliability(probabilities, truth)
        after = reliability(apply_temperature(probabilities, temperature), truth)
        halves = np.arange(len(truth)) % 2 == 0
        crossed = [reliability(apply_temperature(probabilities[~fit_half], fit_temperature(probabilities[fit_half],
                                                                                           truth[fit_half])),
                               truth[~fit_half])["ece"] for fit_half in (halves, ~halves)]
        report[column] = {"temperature": temperatures[column], "n": int(covered.sum()), "ece_before": before["ece"],
                          "ece_after": after["ece"],
                          # None when a half has no rows (a tiny validation part)
                          "ece_cross_fitted": None if None in crossed else float(np.mean(crossed)),
                          "bins_before": before["bins"], "bins_after": after["bins"]}
    return temperatures, report


def fit_not_a_product(labeler: Labeler, train_images: np.ndarray, train_labels: np.ndarray,
                      validation_images: np.ndarray, non_products: np.ndarray | None = None,
                      method: str = DEFAULT_METHOD, false_flag_rate: float = FALSE_FLAG_RATE,
                      kinds: list[str] | None = None) -> tuple[NotAProduct, dict[str, Any]]:
    """The detector whose threshold flags `false_flag_rate` of the validation photos, and the report
    of every method on them and on `non_products` (uint8 images that are not product photos).

    `method` "auto" keeps the method that flags the largest share of `non_products` (ties: the
    higher AUROC); it needs `non_products`. `labeler` should already carry its temperatures."""
    if method != "auto" and method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: auto, {', '.join(METHODS)}")
    if method == "auto" and non_products is None:
        raise ValueError("method auto compares the methods on non-product images: pass some")
    if labeler.analyse(validation_images[:1]).signals is None:
        raise ValueError("this labeler has no pooled 'features' layer to read")
    column = next(c for c in MEAN_HEADS if c in labeler.schema.heads)
    part = labeler.schema.slices[column]
    classes = np.where(train_labels[:, part].any(axis=1), train_labels[:, part].argmax(axis=1), -1)
    train = labeler.analyse(train_images).signals
    statistics = {"mahalanobis": MahalanobisStatistics.fit(train.features, classes)}
    if train.texture is not None:
        statistics["nearest_neighbour"] = NeighbourBank.fit(train.texture)
    del train
    real = labeler.analyse(validation_images).signals
    other = None if non_products is None else labeler.analyse(non_products).signals
    # energy needs softmax heads, nearest_neighbour the texture layer
    usable = [m for m in METHODS if (m != "energy" or real.logits) and (m != "nearest_neighbour" or
                                                                        real.texture is not None)]
    report: dict[str, Any] = {"false_flag_rate_target": false_flag_rate, "mean_head": column, "methods": {}}
    for candidate in usable:
        real_scores = outlier_scores(candidate, real, statistics.get(candidate))
        threshold = threshold_at(real_scores, false_flag_rate)
        entry: dict[str, Any] = {"threshold": threshold, "false_flag_rate": float(np.mean(real_scores > threshold))}
        if other is not None:
            other_scores = outlier_scores(candidate, other, statistics.get(candidate))
            entry.update(detection_summary(real_scores, other_scores, threshold))
            if kinds is not None:
                kind_of = np.asarray(kinds)
                entry["flagged_by_kind"] = {kind: float(np.mean(other_scores[kind_of == kind] > threshold))
                                            for kind in sorted(set(kinds))}
        report["methods"][candidate] = entry
    if method == "auto":
        method = max(usable, key=lambda m: (report["methods"][m]["flagged_rate"], report["methods"][m]["auroc"]))
    if method == DEFAULT_METHOD and method not in usable:  # e.g. the MobileNet archs: no texture layer
        method = "mahalanobis"
    if method not in usable:
        raise ValueError(f"this labeler cannot use the {method} score; choose one of {', '.join(usable)}")
    report["method"] = method
    chosen = report["methods"][method]
    detector = NotAProduct(method, chosen["threshold"], false_flag_rate, statistics.get(method))
    return detector, report


def fit_calibration(labeler: Labeler, images: np.ndarray, labels: np.ndarray, train_rows: np.ndarray,
                    validation_rows: np.ndarray, non_products: np.ndarray | None = None,
                    method: str = DEFAULT_METHOD, kinds: list[str] | None = None) -> tuple[Calibration, dict[str, Any]]:
    """Temperatures (softmax heads only) and the not-a-product detector for `labeler`, fitted on the
    dataset's `images`/`labels` (validation rows; the detector's class means on the training rows).
    Returns the calibration and its report (for the model card)."""
    bare = Labeler(labeler.model, labeler.schema, labeler.card)  # whatever was fitted before is ignored
    validation_images, validation_labels = images[validation_rows], labels[validation_rows]
    temperatures, calibration_report = {}, {}
    if bare.softmax_heads:
        temperatures, calibration_report = fit_temperatures(bare.scores(validation_images), validation_labels,
                                                            bare.schema)
    tempered = Labeler(labeler.model, labeler.schema, labeler.card, Calibration(temperatures))
    detector, detector_report = fit_not_a_product(tempered, images[train_rows], labels[train_rows],
                                                  validation_images, non_products, method, kinds=kinds)
    return Calibration(temperatures, detector), {"calibration": calibration_report, "not_a_product": detector_report}


def fit_shipped_calibration(labeler: Labeler, images: np.ndarray, labels: np.ndarray, train_rows: np.ndarray,
                            validation_rows: np.ndarray, method: str = DEFAULT_METHOD) -> tuple[Calibration, dict]:
    """`fit_calibration` with the detector measured on the non-product set (whose counts join the
    report): what training and `calibrate_classifier.py` fit before a model ships."""
    from fashiongen.labeler.non_products import non_product_images

    non_products = non_product_images()
    calibration, report = fit_calibration(labeler, images, labels, train_rows, validation_rows, non_products.images,
                                          method, non_products.kinds)
    report["not_a_product"]["non_product_set"] = non_products.counts()
    return calibration, report


def card_entries(report: dict[str, Any]) -> dict[str, Any]:
    """A `fit_calibration` report as the model card's `metrics` entries (without the diagram bins)."""
    return {"calibration": {column: {k: v for k, v in entry.items() if not k.startswith("bins")}
                            for column, entry in report["calibration"].items()},
            "not_a_product": report["not_a_product"]}


def calibration_summary(report: dict[str, Any]) -> str:
    """A plain-text table of a `fit_calibration` report, for scripts to print."""
    lines = [f"{'head':<16}{'T':>7}{'ECE before':>12}{'ECE after':>11}{'cross-fit':>11}{'n':>8}"]
    for column, entry in report["calibration"].items():
        lines.append(f"{column:<16}{entry['temperature']:>7.3f}{_number(entry['ece_before']):>12}"
                     f"{_number(entry['ece_after']):>11}{_number(entry['ece_cross_fitted']):>11}{entry['n']:>8,}")
    detector = report["not_a_product"]
    lines.append("")
    lines.append(f"{'not-a-product score':<20}{'flags real':>11}{'flags others':>14}{'AUROC':>8}")
    for method, entry in detector["methods"].items():
        mark = " <- shipped" if method == detector["method"] else ""
        lines.append(f"{method:<20}{_number(entry['false_flag_rate'], '.2%'):>11}"
                     f"{_number(entry.get('flagged_rate'), '.2%'):>14}{_number(entry.get('auroc')):>8}{mark}")
    return "\n".join(lines)


def _number(value: float | None, form: str = ".4f") -> str:
    return "n/a" if value is None else format(value, form)
