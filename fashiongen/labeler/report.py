"""Evaluate the labeler's scores: accuracy, ROC AUC, F1, confusion matrices and BCE loss.

The numbers come from scikit-learn, imported on first use by `classification_report` (its import
takes over a second); plotly is imported only by the plotting functions. No TensorFlow.
Heads are named by their styles.csv column, as in `LabelSchema.heads`.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fashiongen.schema import LabelSchema

LOSS_EPSILON = 1e-7  # Keras's clipping of probabilities in binary cross-entropy


# --------------------------------------------------------------------------- the report


def classification_report(y_true: np.ndarray, scores: np.ndarray, schema: LabelSchema,
                          heads: Sequence[str] | None = None) -> dict[str, Any]:
    """Metrics of `scores` (N, schema.size) against 0/1 labels `y_true` (N, schema.size), for the
    `heads` named (default: all of the schema's; e.g. only the columns a labels file has).

    Keys: `n_images`, `subCategory_accuracy`, `gender_accuracy`, `macro_f1_subCategory`,
    `macro_f1_gender`, `micro_auc`, `macro_auc`, `loss`, `per_class`, `confusion`, and for every
    head `<column>_accuracy`, `<column>_macro_f1` and `n_with_<column>` (the rows whose class is in
    the head). Every value is a plain int, float, None, list or dict, so `json.dumps` takes it.

    - Each head predicts the argmax of its scores, and is scored only on rows that have a bit in
      it (the others belong to no class of the head).
    - Macro-F1 averages over the classes present in the truth or the predictions of the scored
      rows, with 0 for a 0/0 precision, recall or F1: scikit-learn's
      `f1_score(y, y_hat, average="macro", zero_division=0)` without `labels`. Classes absent from
      both are left out rather than counted as 0 (as `labels=` every class would do).
    - AUC (`roc_auc_score`, a positive-negative tie counting 1/2) uses every row and output:
      `micro_auc` over all outputs flattened, `macro_auc` the mean over outputs that have both a
      positive and a negative row (the per-output AUCs are in `per_class`, None where skipped).
    - `loss`: mean binary cross-entropy over all outputs, scores clipped to [1e-7, 1 - 1e-7].
    A value that cannot be computed (e.g. accuracy on no rows, or a head not scored) is None; AUC
    and loss cover the scored heads' outputs.
    """
    heads_scored = list(schema.heads) if heads is None else [column for column in schema.heads if column in heads]
    if not heads_scored:
        raise ValueError(f"no head to score: the schema's heads are {', '.join(schema.heads)}")
    y_true, scores = _checked_inputs(y_true, scores, schema, heads_scored)
    columns = np.concatenate([np.arange(schema.size)[schema.slices[column]] for column in heads_scored])
    output_aucs = [_auc_or_none(y_true[:, j], scores[:, j]) if j in columns else None for j in range(schema.size)]
    defined_aucs = [auc for auc in output_aucs if auc is not None]
    heads, covered = {}, {}
    for column in heads_scored:
        part = schema.slices[column]
        labelled = y_true[:, part].any(axis=1)
        covered[column] = int(labelled.sum())
        heads[column] = _head_metrics(schema.heads[column], y_true[labelled, part].argmax(axis=1),
                                      scores[labelled, part].argmax(axis=1), output_aucs[part])
    clipped = np.clip(scores[:, columns], LOSS_EPSILON, 1 - LOSS_EPSILON)
    truth = y_true[:, columns]
    loss = -np.mean(truth * np.log(clipped) + (1 - truth) * np.log(1 - clipped))
    scored = lambda column, key: heads[column][key] if column in heads else None  # noqa: E731
    report: dict[str, Any] = {
        "n_images": int(len(y_true)),
        "n_with_subCategory": covered.get("subCategory", 0),
        "subCategory_accuracy": scored("subCategory", "accuracy"),
        "gender_accuracy": scored("gender", "accuracy"),
        "macro_f1_subCategory": scored("subCategory", "macro_f1"),
        "macro_f1_gender": scored("gender", "macro_f1"),
        "micro_auc": _auc_or_none(truth.ravel(), scores[:, columns].ravel()),
        "macro_auc": float(np.mean(defined_aucs)) if defined_aucs else None,
        "loss": float(loss),
    }
    for column in heads_scored:
        report[f"{column}_accuracy"] = heads[column]["accuracy"]
        report[f"{column}_macro_f1"] = heads[column]["macro_f1"]
        report[f"n_with_{column}"] = covered[column]
    report["per_class"] = {column: heads[column]["per_class"] for column in heads_scored}
    report["confusion"] = {column: heads[column]["confusion"] for column in heads_scored}
    return report


def report_heads(report: dict[str, Any]) -> list[str]:
    """The heads a report scores, in the label vector's order."""
    return list(report["confusion"])


def _auc_or_none(y_true: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC of 0/1 labels, None when only one class is present (scikit-learn raises or warns)."""
    from sklearn.metrics import roc_auc_score

    n_positive = int(y_true.sum())
    if n_positive == 0 or n_positive == len(y_true):
        return None
    return float(roc_auc_score(y_true, scores))


def _checked_inputs(y_true: np.ndarray, scores: np.ndarray, schema: LabelSchema,
                    heads: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, np.float64)
    scores = np.asarray(scores, np.float64)
    heads_text = " + ".join(f"{len(names)} {column}" for column, names in schema.heads.items())
    expected = f"(N, {schema.size}) for {heads_text}"
    for name, array in (("y_true", y_true), ("scores", scores)):
        if array.ndim != 2 or array.shape[1] != schema.size:
            raise ValueError(f"{name} has shape {array.shape}; expected {expected}.")
    if y_true.shape != scores.shape:
        raise ValueError(f"y_true has {len(y_true)} rows but scores has {len(scores)}.")
    if len(y_true) == 0:
        raise ValueError("y_true and scores have no rows.")
    if not np.isin(y_true, (0.0, 1.0)).all():
        raise ValueError("y_true must hold only 0 and 1.")
    if not (np.isfinite(scores).all() and (scores >= 0).all() and (scores <= 1).all()):
        raise ValueError("scores must be probabilities in [0, 1] (sigmoid outputs, not logits).")
    for column in heads:
        bits = y_true[:, schema.slices[column]].sum(axis=1)
        bad = np.flatnonzero(bits != 1) if column == "gender" else np.flatnonzero(bits > 1)
        if len(bad):
            row = bad[0]
            expected_bits = "1" if column == "gender" else "0 or 1"
            raise ValueError(f"y_true row {row} has {int(bits[row])} {column} bits; expected {expected_bits}.")
    return y_true, scores


def _head_metrics(
    names: Sequence[str], true_index: np.ndarray, predicted_index: np.ndarray, output_aucs: Sequence[float | None]
) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

    n_classes = len(names)
    if len(true_index) == 0:  # scikit-learn rejects empty inputs
        confusion = np.zeros((n_classes, n_classes), np.int64)
        precision = recall = f1 = np.zeros(n_classes)
        support = np.zeros(n_classes, np.int64)
        accuracy = macro_f1 = None
    else:
        classes = list(range(n_classes))  # schema order
        confusion = confusion_matrix(true_index, predicted_index, labels=classes)
        precision, recall, f1, support = precision_recall_fscore_support(
            true_index, predicted_index, labels=classes, zero_division=0
        )
        accuracy = float(accuracy_score(true_index, predicted_index))
        # no `labels`: the mean is over the classes present in the truth or the predictions
        macro_f1 = float(f1_score(true_index, predicted_index, average="macro", zero_division=0))
    per_class = [
        {
            "name": name, "precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
            "support": int(support[i]), "auc": output_aucs[i],
        }
        for i, name in enumerate(names)
    ]
    return {
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "per_class": per_class,
        "confusion": {"names": list(names), "matrix": confusion.tolist()},
    }


# --------------------------------------------------------------------------- text and figures


def format_report_table(report: dict[str, Any]) -> str:
    """A short plain-text table of the headline numbers, for scripts to print."""
    rows = []
    for column in report_heads(report):
        n = report.get(f"n_with_{column}", report["n_images"])
        rows += [(f"{column} accuracy", report[f"{column}_accuracy"], n),
                 (f"{column} macro-F1", report[f"{column}_macro_f1"], n)]
    rows += [
        ("micro AUC", report["micro_auc"], report["n_images"]),
        ("macro AUC", report["macro_auc"], report["n_images"]),
        ("loss (BCE)", report["loss"], report["n_images"]),
    ]
    lines = [f"{'metric':<26}{'value':>8}{'n':>9}"]
    lines += [f"{name:<26}{_format_value(value):>8}{n:>9,}" for name, value, n in rows]
    return "\n".join(lines)


def _format_value(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def confusion_figure(report: dict[str, Any], head: str):
    """Heatmap of one head's confusion matrix: colour = share of the true class's row, text = count."""
    import plotly.graph_objects as go

    if head not in report["confusion"]:
        raise ValueError(f"unknown head {head!r}; valid: {', '.join(report_heads(report))}")
    names = report["confusion"][head]["names"]
    counts = np.asarray(report["confusion"][head]["matrix"], np.int64).reshape(len(names), len(names))
    row_totals = counts.sum(axis=1, keepdims=True)
    row_shares = np.divide(counts, row_totals, out=np.zeros(counts.shape), where=row_totals > 0)
    accuracy = report[f"{head}_accuracy"]
    accuracy_text = "n/a" if accuracy is None else f"{accuracy:.1%}"
    figure = go.Figure(
        go.Heatmap(
            z=row_shares, x=names, y=names, text=counts, texttemplate="%{text}",
            zmin=0, zmax=1, colorscale="Blues", colorbar={"title": {"text": "share of row"}},
            hovertemplate="true %{y}<br>predicted %{x}<br>%{text} images (%{z:.1%} of the row)<extra></extra>",
        )
    )
    figure.update_layout(
        title=f"{head} confusion matrix: accuracy {accuracy_text} on {int(counts.sum()):,} images",
        xaxis={"title": {"text": "predicted"}, "type": "category", "side": "bottom"},
        yaxis={"title": {"text": "true"}, "type": "category", "autorange": "reversed"},  # first class on top
    )
    return figure


def save_confusion_figures(report: dict[str, Any], out_dir: Path, prefix: str = "confusion") -> list[Path]:
    """Write `<prefix>_<head>.html` for every head, and `<prefix>_<head>.png` when Kaleido can.

    The HTML files embed plotly.js, so they open without a network. PNG export needs Kaleido and
    a Chrome or Chromium (found on PATH, at /usr/bin/chromium, or by `$BROWSER_PATH`); when it
    fails the PNGs are skipped with a warning. Returns the paths written, HTML first.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    heads = report_heads(report)
    figures = {head: confusion_figure(report, head) for head in heads}
    html_paths = []
    for head, figure in figures.items():
        path = out_dir / f"{prefix}_{head}.html"
        figure.write_html(path, include_plotlyjs=True)
        html_paths.append(path)
    png_paths = [out_dir / f"{prefix}_{head}.png" for head in heads]
    sizes = [_image_size(len(report["confusion"][head]["names"])) for head in heads]
    try:
        _write_pngs(list(figures.values()), png_paths, sizes)
    # Kaleido fails in many ways (no browser, a crash, a timeout): each only means "no PNG"
    except Exception as error:  # noqa: BLE001
        reason = " ".join(str(error).split())[:300] or "no message"
        warnings.warn(
            f"skipped the PNG confusion figures ({type(error).__name__}: {reason}); "
            "PNG export needs Chrome or Chromium, e.g. `apt-get install chromium`, or $BROWSER_PATH set to one",
            stacklevel=2,
        )
        return html_paths
    return html_paths + png_paths


def _image_size(n_classes: int) -> tuple[int, int]:
    """(width, height) in pixels that keeps the cells' counts readable."""
    side = max(450, 200 + 45 * n_classes)
    return side + 100, side


def _write_pngs(figures: list, paths: list[Path], sizes: list[tuple[int, int]]) -> None:
    import plotly.io as pio

    widths, heights = [size[0] for size in sizes], [size[1] for size in sizes]
    if hasattr(pio, "write_images"):  # plotly >= 6.1: one browser session for all figures
        pio.write_images(figures, paths, width=widths, height=heights)
        return
    for figure, path, width, height in zip(figures, paths, widths, heights):
        figure.write_image(path, width=width, height=height)
