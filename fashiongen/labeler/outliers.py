"""Is it a product photo at all? Scores of how unlike the training photos an image is, computed
from the labeler's own pooled features and logits, and the threshold that flags a chosen share of
real product photos.

Four scores, higher = less like a product photo (docs/labeler.md#not-a-product-photo compares them):
- `nearest_neighbour`: the distance from the image's texture statistics (each channel's mean and
  standard deviation over the image, after the third convolution stage, scaled to unit length) to
  the nearest of a bank of training photos' (Sun et al. 2022, "Out-of-distribution detection with
  deep nearest neighbors", on a middle layer, which sees more than the pooled features);
- `max_probability`: minus the sub-category head's top probability (the obvious baseline);
- `energy`: minus the log-sum-exp of each softmax head's logits, summed over heads
  (Liu et al. 2020, "Energy-based out-of-distribution detection");
- `mahalanobis`: the squared Mahalanobis distance of the pooled features to the nearest class
  mean, with one covariance shared by all classes (Lee et al. 2018).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METHODS = ("nearest_neighbour", "mahalanobis", "energy", "max_probability")
# chosen on the two-head model shipped before the catalog one (docs/labeler.md), so the catalog
# model's numbers on the non-product set are not the ones the choice was made on
DEFAULT_METHOD = "nearest_neighbour"
FALSE_FLAG_RATE = 0.02  # the share of real validation photos the threshold flags
OUTLIER_FILE = "outliers.npz"  # the neighbour bank of `nearest_neighbour`, the statistics of `mahalanobis`
TEXTURE_LAYER = "relu3_2"  # the compact arch's third stage: where nearest_neighbour reads
BANK_SIZE = 8000  # training photos in the neighbour bank: 4 MB at float16
RIDGE = 1e-3  # of the covariance's mean variance: keeps the whitening finite for dead features


@dataclass
class ImageSignals:
    """What the scores read, for N images: pooled features (N, D), each softmax head's logits
    (N, K) by column, the sub-category head's probabilities, and the texture statistics of
    `TEXTURE_LAYER` (N, 2C; None when the model has no such layer)."""

    features: np.ndarray
    logits: dict[str, np.ndarray]
    sub_category_probabilities: np.ndarray
    texture: np.ndarray | None = None


@dataclass
class NeighbourBank:
    """Unit-length texture statistics (M, 2C) of training photos, at float16."""

    bank: np.ndarray

    @classmethod
    def fit(cls, texture: np.ndarray, size: int = BANK_SIZE, seed: int = 0) -> "NeighbourBank":
        """A seeded sample of `size` rows of training photos' texture statistics."""
        texture = np.asarray(texture, np.float32)
        rows = np.random.default_rng(seed).choice(len(texture), min(size, len(texture)), replace=False)
        return cls(_unit(texture[np.sort(rows)]).astype(np.float16))

    def distances(self, texture: np.ndarray) -> np.ndarray:
        """(N,) one minus the cosine similarity to the nearest photo of the bank."""
        similarity = _unit(np.asarray(texture, np.float32)) @ self.bank.astype(np.float32).T
        return 1.0 - similarity.max(axis=1)


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)


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
        if known.any():  # else: one class of every photo
            features, classes = features[known], classes[known]
        else:
            classes = np.zeros(len(features), np.int64)
        labels = np.unique(classes)
        means = np.stack([features[classes == c].mean(axis=0) for c in labels])
        residuals = features - means[np.searchsorted(labels, classes)]
        covariance = residuals.T @ residuals / max(len(residuals) - 1, 1)
        # the floor: a covariance of zero (every photo of a tiny set on its class mean) stays invertible
        covariance += (RIDGE * np.trace(covariance) / len(covariance) + 1e-6) * np.eye(len(covariance))
        whitening = np.linalg.cholesky(np.linalg.inv(covariance))
        return cls(means.astype(np.float32), whitening.astype(np.float32))

    def distances(self, features: np.ndarray) -> np.ndarray:
        """(N,) squared distance to the nearest class mean."""
        z = np.asarray(features, np.float64) @ self.whitening
        m = self.means.astype(np.float64) @ self.whitening
        squared = (z**2).sum(axis=1, keepdims=True) - 2 * z @ m.T + (m**2).sum(axis=1)[None]
        return np.maximum(squared.min(axis=1), 0.0)


def outlier_scores(method: str, signals: ImageSignals,
                   statistics: "MahalanobisStatistics | NeighbourBank | None" = None) -> np.ndarray:
    """(N,) scores of `method`, higher = less like a product photo."""
    if method == "nearest_neighbour":
        if not isinstance(statistics, NeighbourBank) or signals.texture is None:
            raise ValueError(f"the nearest_neighbour score needs a neighbour bank and the {TEXTURE_LAYER} layer")
        return statistics.distances(signals.texture)
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
        if not isinstance(statistics, MahalanobisStatistics):
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
    statistics: MahalanobisStatistics | NeighbourBank | None = None

    def scores(self, signals: ImageSignals) -> np.ndarray:
        return outlier_scores(self.method, signals, self.statistics)

    def flags(self, signals: ImageSignals) -> tuple[np.ndarray, np.ndarray]:
        """(scores, whether each image is flagged as not a product photo)."""
        scores = self.scores(signals)
        return scores, scores > self.threshold

    def to_config(self) -> dict:
        return {"method": self.method, "threshold": self.threshold, "false_flag_rate": self.false_flag_rate}
