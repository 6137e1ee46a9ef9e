"""Feed uint8 images to Keras as float32 batches in [0, 1], without a float32 copy of the set.

The whole dataset as float32 is 2.4 GB; as uint8 it is 0.6 GB. `ImageBatches` keeps the uint8
array and converts one batch at a time, so memory stays flat whatever the dataset size.
"""

from __future__ import annotations

import math
from typing import Sequence

import keras
import numpy as np


class ImageBatches(keras.utils.PyDataset):
    """Batches of `(images / 255, labels)` (or images alone) for `model.fit`/`predict`.

    `indices` picks rows (a split's train or validation part) without copying the arrays;
    `shuffle=True` draws a new order each epoch from `seed`, the same on every run. Float input
    (e.g. cached backbone features) passes through unscaled. With `replicas > 1` each batch is
    padded to a multiple of `replicas` and comes with sample weights (0 for the padding).
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | None = None,
        batch_size: int = 64,
        indices: Sequence[int] | np.ndarray | None = None,
        shuffle: bool = False,
        seed: int = 0,
        replicas: int = 1,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if images.dtype != np.uint8 and not np.issubdtype(images.dtype, np.floating):
            raise ValueError(f"images must be uint8 images (or float features), got {images.dtype}")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{len(labels)} label rows for {len(images)} images")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.indices = np.arange(len(images)) if indices is None else np.asarray(indices, np.int64)
        self.shuffle = shuffle
        self.replicas = replicas
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(self.indices) if shuffle else self.indices

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def __getitem__(self, batch: int):
        if not 0 <= batch < len(self):
            raise IndexError(f"batch {batch} out of range 0..{len(self) - 1}")
        # sorted rows read the big array front to back: kinder to the CPU cache
        rows = np.sort(self._order[batch * self.batch_size : (batch + 1) * self.batch_size])
        weights = None
        if self.replicas > 1:
            # tf.distribute in Keras 3 fails on a batch that does not split evenly over replicas
            # (a replica without rows breaks BatchNormalization): pad with this batch's own rows,
            # weighted 0 so that metrics are unchanged
            padding = -len(rows) % self.replicas
            weights = np.ones(len(rows) + padding, np.float32)
            weights[len(rows):] = 0.0
            rows = np.concatenate([rows, rows[np.arange(padding) % len(rows)]])
        x = to_unit_float(self.images[rows]) if self.images.dtype == np.uint8 else self.images[rows]
        if self.labels is None:
            return x
        return (x, self.labels[rows]) if weights is None else (x, self.labels[rows], weights)

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._rng.permutation(self.indices)


def to_unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1], in one pass."""
    out = images.astype(np.float32)
    np.divide(out, np.float32(255), out=out)
    return out
