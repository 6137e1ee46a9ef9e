"""Adversarial training: a classifier whose features a faint pattern cannot move.

The perceptual distance (fashiongen/generator/perceptual.py) compares a photo and its reconstruction
by a classifier's features. An ordinary classifier's features move a lot for a faint, fine
pattern, so a decoder trained against them can meet the distance by painting one (the plaid on
watches, docs/experiments/2026-12-06-plaid-source.md). Classifiers trained on adversarial examples
have features that follow what a person sees instead: their input gradients look like the image,
not like noise (Tsipras et al. 2019; Santurkar et al. 2019 draw images with one). So such a
classifier was a candidate perceptual network that a decoder could not fool with a pattern. Here it
rewarded the plaid more, not less (docs/experiments/2026-12-07-plaid-probe.md).

The recipe is fast adversarial training (Wong, Rice and Kolter 2020, "Fast is better than free"):
for every batch, one signed-gradient step (FGSM) from a random start in the L-inf ball of radius
epsilon, of 1.25 epsilon, kept inside the ball and in [0, 1]. Then the usual training step runs on
those images. The classifier's random shift would interpolate the moved pixels and blur the
perturbation, so train_classifier.py refuses one (--shift 0).
"""

from __future__ import annotations

import keras
from keras import KerasTensor, ops

# Wong et al.'s step, as a share of epsilon: past 1 so that a random start near the ball's edge
# still moves, and not much past it (their 2 epsilon led to catastrophic overfitting)
STEP_SHARE = 1.25


class AdversarialTraining(keras.Model):
    """Trains `classifier` (image in [0, 1] -> scores) on FGSM images within `epsilon` of each
    training image; validation and prediction are the classifier's own, and it is the classifier
    that should be saved (this wrapper has no config). Compile it with a loss object, as the
    classifier would be compiled: the attack maximises that loss."""

    def __init__(self, classifier: keras.Model, epsilon: float, seed: int | None = None, **kwargs) -> None:
        super().__init__(name=kwargs.pop("name", f"adversarial_{classifier.name}"), **kwargs)
        if not 0 < epsilon < 1:
            raise ValueError(f"epsilon is a change per pixel of [0, 1] images, in (0, 1); got {epsilon}")
        self.classifier = classifier
        self.epsilon = float(epsilon)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = classifier.built  # its weights are all this model has (BackupAndRestore needs it built)

    def call(self, images, training=None):
        return self.classifier(images, training=training)

    def adversarial(self, images: KerasTensor, labels: KerasTensor,
                    sample_weight: KerasTensor | None = None) -> KerasTensor:
        """`images` moved by one FGSM step from a random start, at most epsilon per pixel."""
        import tensorflow as tf  # the gradient tape is the TensorFlow backend's (as in keras-io's vae.py)

        start = keras.random.uniform(ops.shape(images), -self.epsilon, self.epsilon, seed=self.seed_generator)
        # into [0, 1] before the gradient, as Wong et al. do: a clip inside it would give a white
        # background pixel that started upwards no gradient, and no move
        start = ops.clip(images + start, 0.0, 1.0) - images
        with tf.GradientTape() as tape:
            tape.watch(start)
            # inference mode (batch statistics from the moving averages): no random flip, dropout
            # or statistics update for the attack; the training step flips the moved image as a whole
            scores = self.classifier(images + start, training=False)
            loss = self.loss(labels, scores, sample_weight)
        step = STEP_SHARE * self.epsilon * ops.sign(tape.gradient(loss, start))
        delta = ops.clip(start + step, -self.epsilon, self.epsilon)
        return ops.stop_gradient(ops.clip(images + delta, 0.0, 1.0))

    def train_step(self, data):
        images, labels, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        moved = self.adversarial(images, labels, sample_weight)
        return super().train_step((moved, labels) if sample_weight is None else (moved, labels, sample_weight))
