"""fashiongen/labeler/robust.py: the FGSM images stay within epsilon, raise the loss, and are what trains."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import layers

from fashiongen.labeler.model import HeadsCrossentropy
from fashiongen.labeler.robust import AdversarialTraining

EPSILON = 8 / 255
SLICES = {"a": slice(0, 3), "b": slice(3, 5)}


def small_classifier(seed: int = 0) -> keras.Model:
    """Two softmax heads on a convolution of 16x12 images: no dropout or random layer, so a training
    call computes what an inference call does."""
    keras.utils.set_random_seed(seed)
    image = keras.Input((16, 12, 3), name="image")
    x = layers.Conv2D(4, 3, activation="relu", name="conv")(image)
    x = layers.Flatten()(x)
    heads = [layers.Dense(part.stop - part.start, activation="softmax", name=f"head_{name}")(x)
             for name, part in SLICES.items()]
    return keras.Model(image, layers.Concatenate(name="scores")(heads))


def batch(rows: int = 8, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 1, (rows, 16, 12, 3)).astype("float32")
    images[:2] = 0.0  # dark and light photos: the moved image must stay inside [0, 1]
    images[2:4] = 1.0
    labels = np.zeros((rows, 5), "float32")
    labels[np.arange(rows), rng.integers(0, 3, rows)] = 1
    labels[np.arange(rows), 3 + rng.integers(0, 2, rows)] = 1
    return images, labels


def trainer(classifier: keras.Model, epsilon: float = EPSILON) -> AdversarialTraining:
    model = AdversarialTraining(classifier, epsilon, seed=3)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss=HeadsCrossentropy(SLICES))
    return model


def clean_loss(classifier: keras.Model, images: np.ndarray, labels: np.ndarray) -> float:
    return float(HeadsCrossentropy(SLICES)(labels, classifier(images, training=False)))


def test_the_moved_images_stay_within_epsilon_and_in_range() -> None:
    images, labels = batch()
    moved = keras.ops.convert_to_numpy(trainer(small_classifier()).adversarial(images, labels))
    change = np.abs(moved - images)
    assert change.max() <= EPSILON + 1e-6
    assert moved.min() >= 0.0 and moved.max() <= 1.0
    # FGSM moves nearly every pixel by most of epsilon (those not at 0 or 1 already)
    assert np.mean(change[4:] > EPSILON / 2) > 0.8


def test_white_background_moves_as_often_as_any_pixel() -> None:
    """The random start is put inside [0, 1] before the gradient (Wong et al.): a white pixel that
    started upwards still has a gradient, and half of them move down by most of epsilon."""
    images, labels = batch(32)
    images[:, :, :6] = 1.0  # a white band down every photo
    moved = keras.ops.convert_to_numpy(trainer(small_classifier()).adversarial(images, labels))
    assert np.mean(np.abs(moved - images)[4:, :, :6] > EPSILON / 2) > 0.4  # a clip in the tape: 0.25


def test_sample_weights_reach_the_attack_and_the_step() -> None:
    """Batch padding (weight 0, under a mirrored strategy) neither steers the attack nor trains."""
    labels = batch(8)[1]
    images = np.random.default_rng(2).uniform(0.1, 0.9, (8, 16, 12, 3)).astype("float32")  # no pixel at 0 or 1
    weights = np.array([1, 1, 1, 1, 0, 0, 0, 0], np.float32)
    model = trainer(small_classifier())
    moved = keras.ops.convert_to_numpy(model.adversarial(images, labels, weights))
    # a padding row has no gradient: its random start stays, inside the ball, not pushed to its edge
    assert np.mean(np.abs(moved[4:] - images[4:]) > 0.99 * EPSILON) < 0.1
    # a weighted row's step of 1.25 epsilon reaches the edge from 5/8 of the starts
    assert np.mean(np.abs(moved[:4] - images[:4]) > 0.99 * EPSILON) > 0.5
    padded = trainer(small_classifier()).train_on_batch(images, labels, sample_weight=weights, return_dict=True)
    assert np.isfinite(padded["loss"])


def test_the_attack_raises_the_loss_more_than_noise_does() -> None:
    classifier = small_classifier()
    images, labels = batch(32)
    moved = keras.ops.convert_to_numpy(trainer(classifier).adversarial(images, labels))
    noise = np.clip(images + np.random.default_rng(5).choice([-EPSILON, EPSILON], images.shape), 0, 1)
    clean, noisy, attacked = (clean_loss(classifier, x, labels) for x in (images, noise, moved))
    # a gradient step the wrong way, or a random one, would not beat the noise
    assert attacked > noisy + 0.05 and attacked > clean + 0.05


def test_the_training_step_learns_from_the_moved_images() -> None:
    classifier = small_classifier()
    images, labels = batch(32)
    before = clean_loss(classifier, images, labels)
    logs = trainer(classifier).train_on_batch(images, labels, return_dict=True)
    # the step's loss is of the moved images, before its update: above the clean loss
    assert logs["loss"] > before + 0.05
    assert clean_loss(classifier, images, labels) != pytest.approx(before)  # and the classifier trained


@pytest.mark.parametrize("epsilon", [0.0, -0.1, 1.0, float("nan")])
def test_an_epsilon_outside_the_pixel_range_is_refused(epsilon: float) -> None:
    with pytest.raises(ValueError, match="epsilon"):
        AdversarialTraining(small_classifier(), epsilon)
