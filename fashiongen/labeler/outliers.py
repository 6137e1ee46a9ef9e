"""Is it a product photo at all? Scores of how unlike the training photos an image is, computed
from the labeler's own pooled features and logits, and the threshold that flags a chosen share of
real product photos.

Three scores, higher = less like a product photo (docs/labeler.md compares them):
- `max_probability`: minus the sub-category head's top probability (the obvious baseline);
- `energy`: minus the log-sum-exp of each softmax head's logits, summed over heads
  (Liu et al. 2020, "Energy-based out-of-distribution detection");
- `mahalanobis`: the squared Mahalanobis distance of the pooled features to the nearest class
  mean, with one covariance shared by all classes (Lee et al. 2018).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("mahalanobis", "energy", "max_probability")
FALSE_FLAG_RATE = 0.02  # the share of real validation photos the threshold flags
OUTLIER_FILE = "outliers.npz"  # the class means and whitening of `mahalanobis`
RIDGE = 1e-3  # of the covariance's mean variance: keeps the whitening finite for dead features


@dataclass
class ImageSignals:
    """What the scores read, for N images: pooled features (N, D), each softmax head's logits
    (N, K) by column, and the sub-category head's probabilities."""

    features: np.ndarray
    logits: dict[str, np.ndarray]
    sub_category_probabilities: np.ndarray


@dataclass
class MahalanobisStatistics:
    """Class means (K, D) and a whitening W (D, D) with W W^T = the shared covariance's inverse."""

    means: np.ndarray
    whitening: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, classes: np.ndarray) -> "MahalanobisStatistics":
        """From training features (N, D) and their class index (N,; -1 = outside every class)."""
        features, classes = np.asarray(features, np.float64), np.asarray(classes, np.int64)
        known = classes >= 0
        features, classes = features[known], classes[known]
        labels = np.unique(classes)
        means = np.stack([features[classes == c].mean(axis=0) for c in labels])
        residuals = features - means[np.searchsorted(labels, classes)]
        covariance = residuals.T @ residuals / max(len(residuals) - 1, 1)
        covariance += RIDGE * np.trace(covariance) / len(covariance) * np.eye(len(covariance))
        whitening = np.linalg.cholesky(np.linalg.inv(covariance))
        return cls(means.astype(np.float32), whitening.astype(np.float32))

    def distances(self, features: np.ndarray) -> np.ndarray:
        """(N,) squared distance to the nearest class mean."""
        z = np.asarray(features, np.float64) @ self.whitening
        m = self.means.astype(np.float64) @ self.whitening
        squared = (z**2).sum(axis=1, keepdims=True) - 2 * z @ m.T + (m**2).sum(axis=1)[None]
        return np.maximum(squared.min(axis=1), 0.0)


def outlier_scores(method: str, signals: ImageSignals, statistics: MahalanobisStatistics | None = None) -> np.ndarray:
    """(N,) scores of `method`, higher = less like a product photo."""
    if method == "max_probability":
        return -np.asarray(signals.sub_category_probabilities, np.float64).max(axis=1)
    if method == "energy":
        total = np.zeros(len(signals.features))
        for logits in signals.logits.values():
            logits = np.asarray(logits, np.float64)
            top = logits.max(axis=1)
            total -= top + np.log(np.exp(logits - top[:, None]).sum(axis=1))
        return total
    if method == "mahalanobis":
        if statistics is None:
            raise ValueError("the mahalanobis score needs the training photos' statistics")
        return statistics.distances(signals.features)
    raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")


def threshold_at(real_scores: np.ndarray, false_flag_rate: float = FALSE_FLAG_RATE) -> float:
    """The score above which at most `false_flag_rate` of `real_scores` lie."""
    return float(np.quantile(np.asarray(real_scores, np.float64), 1.0 - false_flag_rate, method="higher"))


def detection_summary(real_scores: np.ndarray, other_scores: np.ndarray, threshold: float) -> dict[str, float]:
    """How a threshold separates real product photos from other images: the share of each flagged,
    and the AUROC of the score (1 = every other image scores above every real photo)."""
    from sklearn.metrics import roc_auc_score

    real, other = np.asarray(real_scores, np.float64), np.asarray(other_scores, np.float64)
    truth = np.r_[np.zeros(len(real)), np.ones(len(other))]
    return {
        "false_flag_rate": float(np.mean(real > threshold)),
        "flagged_rate": float(np.mean(other > threshold)),
        "auroc": float(roc_auc_score(truth, np.r_[real, other])),
        "n_real": int(len(real)),
        "n_other": int(len(other)),
    }


@dataclass
class NotAProduct:
    """The shipped detector: a method, its threshold, and its statistics when it has any."""

    method: str
    threshold: float
    false_flag_rate: float = FALSE_FLAG_RATE
    statistics: MahalanobisStatistics | None = None

    def scores(self, signals: ImageSignals) -> np.ndarray:
        return outlier_scores(self.method, signals, self.statistics)

    def flags(self, signals: ImageSignals) -> tuple[np.ndarray, np.ndarray]:
        """(scores, whether each image is flagged as not a product photo)."""
        scores = self.scores(signals)
        return scores, scores > self.threshold

    def to_config(self) -> dict:
        return {"method": self.method, "threshold": self.threshold, "false_flag_rate": self.false_flag_rate}
