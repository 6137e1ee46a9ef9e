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
    `shuffle=True` draws a new order each epoch from `seed`, the same on every run.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray | None = None,
        batch_size: int = 64,
        indices: Sequence[int] | np.ndarray | None = None,
        shuffle: bool = False,
        seed: int = 0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(f"images must be uint8 (N, H, W, C), got {images.dtype} {images.shape}")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{len(labels)} label rows for {len(images)} images")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.images = images
        self.labels = labels
        self.batch_size = batch_size
        self.indices = np.arange(len(images)) if indices is None else np.asarray(indices, np.int64)
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = self._rng.permutation(self.indices) if shuffle else self.indices

    def __len__(self) -> int:
        return math.ceil(len(self.indices) / self.batch_size)

    def __getitem__(self, batch: int):
        if not 0 <= batch < len(self):
            raise IndexError(f"batch {batch} out of range 0..{len(self) - 1}")
        # sorted rows read the big array front to back: kinder to the CPU cache
        rows = np.sort(self._order[batch * self.batch_size : (batch + 1) * self.batch_size])
        x = to_unit_float(self.images[rows])
        if self.labels is None:
            return x
        return x, self.labels[rows]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._rng.permutation(self.indices)


def to_unit_float(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [0, 1], in one pass."""
    out = images.astype(np.float32)
    np.divide(out, np.float32(255), out=out)
    return out
