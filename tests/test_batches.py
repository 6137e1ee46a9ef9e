"""fashiongen.batches.ImageBatches: float32 batches from uint8, without a float32 copy of the set."""

from __future__ import annotations

import tracemalloc

import keras
import numpy as np
import pytest

from fashiongen.batches import ImageBatches


@pytest.fixture
def arrays() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (203, 80, 60, 3), dtype=np.uint8)
    labels = rng.random((203, 25)).astype(np.float32)
    return images, labels


def test_batches_are_unit_float_and_aligned(arrays) -> None:
    images, labels = arrays
    batches = ImageBatches(images, labels, batch_size=64)
    assert len(batches) == 4
    x, y = batches[3]
    assert x.dtype == np.float32 and x.shape == (11, 80, 60, 3)
    np.testing.assert_array_equal(x, images[192:].astype(np.float32) / 255)
    np.testing.assert_array_equal(y, labels[192:])
    assert 0.0 <= x.min() and x.max() <= 1.0
    with pytest.raises(IndexError):
        batches[4]


def test_shuffle_is_seeded_covers_every_row_and_changes_per_epoch(arrays) -> None:
    images, labels = arrays
    indices = np.arange(10, 150)

    def epoch_rows(batches: ImageBatches) -> list[int]:
        rows = []
        for i in range(len(batches)):
            _, y = batches[i]
            rows += [int(np.flatnonzero((labels == row).all(axis=1))[0]) for row in y]
        return rows

    first = ImageBatches(images, labels, batch_size=32, indices=indices, shuffle=True, seed=5)
    epoch1 = epoch_rows(first)
    assert sorted(epoch1) == list(indices)
    assert epoch1 != sorted(epoch1)
    first.on_epoch_end()
    epoch2 = epoch_rows(first)
    assert sorted(epoch2) == list(indices) and epoch2 != epoch1
    again = ImageBatches(images, labels, batch_size=32, indices=indices, shuffle=True, seed=5)
    assert epoch_rows(again) == epoch1


def test_memory_stays_at_batch_size(arrays) -> None:
    images = np.zeros((2000, 80, 60, 3), np.uint8)
    batches = ImageBatches(images, batch_size=50)
    float_copy_bytes = images.size * 4
    tracemalloc.start()
    for i in range(len(batches)):
        batches[i]
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < float_copy_bytes / 10, f"peak {peak} bytes looks like a float32 copy of the set"


def test_rejects_bad_arrays(arrays) -> None:
    images, labels = arrays
    with pytest.raises(ValueError, match="uint8"):
        ImageBatches(images.astype(np.int32), labels)
    with pytest.raises(ValueError, match="label rows"):
        ImageBatches(images, labels[:5])


def test_keras_fits_and_predicts_from_batches(arrays) -> None:
    images, labels = arrays
    targets = (labels > 0.5).astype(np.float32)
    model = keras.Sequential([keras.Input((80, 60, 3)), keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(25, activation="sigmoid")])
    model.compile("adam", "binary_crossentropy")
    history = model.fit(ImageBatches(images, targets, batch_size=64, shuffle=True), epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and np.isfinite(history.history["loss"]).all()
    predictions = model.predict(ImageBatches(images, batch_size=64), verbose=0)
    assert predictions.shape == (203, 25)


def test_replica_batches_split_evenly_and_weight_padding_zero() -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 80, 60, 3), dtype=np.uint8)
    labels = rng.random((20, 25)).astype(np.float32)
    rows = np.arange(3, 14)  # 11 rows: batches of 4, 4 and 3
    batches = ImageBatches(images, labels, 4, indices=rows, shuffle=True, seed=1, replicas=3)
    assert len(batches) == 3
    orders = []
    for _ in range(2):
        seen = []
        for i in range(len(batches)):
            x, y, weights = batches[i]
            assert len(x) % 3 == 0 and len(x) == len(y) == len(weights) and len(x) >= 3
            assert x.dtype == np.float32 and x.max() <= 1.0
            real = weights == 1.0
            assert set(np.unique(weights)) <= {0.0, 1.0} and real[: real.sum()].all()  # padding last
            matches = [int(np.flatnonzero((labels == label).all(axis=1))[0]) for label in y]
            np.testing.assert_array_equal(x, images[matches] / np.float32(255))
            seen += [m for m, keep in zip(matches, real) if keep]
        assert sorted(seen) == list(rows)  # every row exactly once per epoch, padding aside
        orders.append(seen)
        batches.on_epoch_end()
    assert orders[0] != orders[1]
    features = rng.random((20, 7)).astype(np.float32)
    x, _, weights = ImageBatches(features, labels, 256, indices=[5], replicas=2)[0]
    np.testing.assert_array_equal(x, features[[5, 5]])  # float features pass through unscaled
    assert weights.tolist() == [1.0, 0.0]
