"""Calibration of softmax heads: one temperature per head, fitted on validation photos, and how
far confidence is from accuracy (expected calibration error, reliability diagrams).

A softmax head's probabilities p come from logits z as p = softmax(z), so log p = z - logsumexp(z)
and softmax(log p / T) = softmax(z / T): temperature scaling needs only the probabilities.
"""

from __future__ import annotations

from typing import Any

import numpy as np

N_BINS = 15  # equal-width confidence bins, as in Guo et al. 2017 ("On calibration of modern neural networks")
TEMPERATURE_RANGE = (0.05, 20.0)


def apply_temperature(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """(N, K) softmax probabilities -> the same head's probabilities at `temperature`."""
    logits = np.log(np.maximum(np.asarray(probabilities, np.float64), 1e-30)) / temperature
    logits -= logits.max(axis=-1, keepdims=True)
    shares = np.exp(logits)
    return (shares / shares.sum(axis=-1, keepdims=True)).astype(np.float32)


def fit_temperature(probabilities: np.ndarray, truth: np.ndarray) -> float:
    """The temperature that minimises the negative log-likelihood of class indices `truth` (N,)
    under `probabilities` (N, K): one scalar, so accuracy (the argmax) never changes."""
    from scipy.optimize import minimize_scalar

    probabilities, truth = np.asarray(probabilities, np.float64), np.asarray(truth, np.int64)
    if len(truth) == 0:
        return 1.0
    rows = np.arange(len(truth))

    def nll(log_temperature: float) -> float:
        scaled = apply_temperature(probabilities, float(np.exp(log_temperature)))
        return float(-np.mean(np.log(np.maximum(scaled[rows, truth], 1e-30))))

    low, high = np.log(TEMPERATURE_RANGE)
    return float(np.exp(minimize_scalar(nll, bounds=(low, high), method="bounded").x))


def reliability(probabilities: np.ndarray, truth: np.ndarray, n_bins: int = N_BINS) -> dict[str, Any]:
    """Top-label calibration of one head: `ece` (the share-weighted mean |accuracy - confidence|
    over equal-width confidence bins) and the bins themselves (for a reliability diagram)."""
    probabilities, truth = np.asarray(probabilities, np.float64), np.asarray(truth, np.int64)
    confidence = probabilities.max(axis=1) if len(truth) else np.zeros(0)
    correct = (probabilities.argmax(axis=1) == truth) if len(truth) else np.zeros(0, bool)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, n_bins - 1)
    bins, ece = [], 0.0
    for b in range(n_bins):
        members = which == b
        count = int(members.sum())
        if count == 0:
            continue
        accuracy, mean_confidence = float(correct[members].mean()), float(confidence[members].mean())
        ece += count / len(truth) * abs(accuracy - mean_confidence)
        bins.append({"low": float(edges[b]), "high": float(edges[b + 1]), "count": count,
                     "accuracy": accuracy, "confidence": mean_confidence})
    return {"ece": float(ece) if len(truth) else None, "n": int(len(truth)), "bins": bins}


def reliability_figure(curves: dict[str, dict[str, Any]], title: str):
    """A plotly reliability diagram: accuracy against confidence per bin, one line per curve
    (e.g. a head before and after temperature scaling); the diagonal is perfect calibration."""
    import plotly.graph_objects as go

    figure = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
                                  line={"dash": "dot", "color": "grey"}))
    for name, curve in curves.items():
        bins = curve["bins"]
        figure.add_trace(go.Scatter(
            x=[b["confidence"] for b in bins], y=[b["accuracy"] for b in bins], mode="lines+markers",
            name=f"{name} (ECE {curve['ece']:.3f})", text=[f"{b['count']} photos" for b in bins],
            hovertemplate="confidence %{x:.2f}<br>accuracy %{y:.2f}<br>%{text}<extra></extra>"))
    figure.update_layout(title=title, xaxis={"title": {"text": "confidence (top probability)"}, "range": [0, 1]},
                         yaxis={"title": {"text": "accuracy"}, "range": [0, 1]})
    return figure
