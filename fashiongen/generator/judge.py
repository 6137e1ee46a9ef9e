"""Label consistency: how far a frozen classifier's scores for generated images are from the labels asked for."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def one_hot_heads(scores: np.ndarray, n_sub_categories: int) -> np.ndarray:
    """Per-head argmax as one-hot (sub-category part, then gender part)."""
    out = np.zeros_like(scores, dtype=np.float32)
    rows = np.arange(len(scores))
    out[rows, scores[:, :n_sub_categories].argmax(axis=1)] = 1.0
    out[rows, n_sub_categories + scores[:, n_sub_categories:].argmax(axis=1)] = 1.0
    return out


def per_head_crossentropy(wanted, scores, n_sub_categories: int):
    """Per row: the sub-category head's categorical cross-entropy plus the gender head's, each on
    the head's sigmoid scores normalised to shares (a judge's verdict as two one-of-n choices)."""
    k = n_sub_categories
    shares = lambda head: head / ops.sum(head, axis=1, keepdims=True)  # noqa: E731
    return (keras.losses.categorical_crossentropy(wanted[:, :k], shares(scores[:, :k]))
            + keras.losses.categorical_crossentropy(wanted[:, k:], shares(scores[:, k:])))
