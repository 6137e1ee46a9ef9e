"""Label consistency: how far a frozen classifier's scores for generated images are from the labels asked for."""

from __future__ import annotations

import numbers
from typing import TYPE_CHECKING, Sequence

import keras
import numpy as np
from keras import ops

if TYPE_CHECKING:
    from fashiongen.generator.prior import LatentPrior


def per_head_crossentropy(wanted, scores, starts: int | Sequence[int], weights: Sequence[float] | None = None):
    """Per row: the weighted sum over heads of each head's categorical cross-entropy, on the head's scores
    normalised to shares (a judge's verdict as one-of-n choices). `starts`: the first column of each
    head after the first; the sub-category count alone gives the paper's two heads. `weights`: one
    per head (default: all 1)."""
    bounds = [0, *([starts] if isinstance(starts, numbers.Integral) else starts), None]
    weights = [1.0] * (len(bounds) - 1) if weights is None else list(weights)
    if len(weights) != len(bounds) - 1:
        raise ValueError(f"{len(bounds) - 1} heads but {len(weights)} weights")
    shares = lambda head: head / ops.sum(head, axis=1, keepdims=True)  # noqa: E731
    return sum(weight * keras.losses.categorical_crossentropy(wanted[:, a:b], shares(scores[:, a:b]))
               for weight, a, b in zip(weights, bounds[:-1], bounds[1:]))


def joint_judge(heads: keras.Model, colour: keras.Model, paper_size: int) -> keras.Model:
    """One judge from two, each scoring what it reads best: `heads` the paper's sub-category and
    gender (its first `paper_size` columns), `colour` the colours (its columns after those, as
    Labeler.as_judge(..., colour=True) gives them). Both take the same [0, 1] images."""
    images = keras.Input(heads.input_shape[1:], name="images")
    # renamed views of the same layers: one functional model cannot hold two models named "judge"
    heads = keras.Model(heads.input, heads.output, name="heads_judge")
    colour = keras.Model(colour.input, colour.output, name="colour_judge")
    paper = keras.layers.Lambda(lambda scores: scores[:, :paper_size], name="paper_scores")(heads(images))
    colours = keras.layers.Lambda(lambda scores: scores[:, paper_size:], name="colour_scores")(colour(images))
    return keras.Model(images, keras.layers.Concatenate(name="scores")([paper, colours]), name="judge")


class LabelConsistency:
    """The CVAE's label-consistency term: a frozen classifier (the judge) scores images decoded from
    drawn codes and labels, so the decoder must show the requested labels instead of whatever the
    code happens to encode.

    Requested labels: the batch's own, or drawn uniformly from `pairs` (the training data's label
    pairs), so rare pairs count as much as common ones, as at evaluation. With a fitted `prior`
    (fine-tuning a generator that has one) the pairs are its pairs and each code comes from its
    pair's Gaussian, as at generation time; otherwise codes come from N(0, I).
    `heads` = the number of sub-category columns: the loss is then each head's cross-entropy, so
    gender's 5 columns weigh as much as the 20 sub-category ones; None: binary cross-entropy over all.
    """

    def __init__(self, judge: keras.Model, weight: float, pairs: np.ndarray | None = None,
                 prior: "LatentPrior | None" = None, heads: int | None = None) -> None:
        judge.trainable = False
        self.judge, self.weight, self.heads = judge, weight, heads
        if prior is not None:
            pairs = prior.conditions
        self.pairs = None if pairs is None else ops.convert_to_tensor(np.asarray(pairs, np.float32))
        self.means = None if prior is None else ops.convert_to_tensor(prior.means)
        self.scales = None if prior is None else ops.convert_to_tensor(prior.key_scales)

    def draw(self, conditions, latent_dim: int, seed: keras.random.SeedGenerator):
        """(label rows, codes) to judge, as many as `conditions` has rows (see the class)."""
        n = ops.shape(conditions)[0]
        noise = keras.random.normal((n, latent_dim), seed=seed)
        if self.pairs is None:
            return conditions, noise
        index = keras.random.randint((n,), 0, ops.shape(self.pairs)[0], seed=seed)
        drawn = ops.take(self.pairs, index, axis=0)
        if self.means is None:
            return drawn, noise
        scales = ops.take(self.scales, index, axis=0)
        return drawn, ops.take(self.means, index, axis=0) + ops.einsum("nij,nj->ni", scales, noise)

    def loss(self, decoder: keras.Model, conditions, codes):
        """The judge's loss against `conditions` for the images `decoder` draws from `codes`."""
        drawn = _decode_keeping_statistics(decoder, codes, conditions)
        judged = self.judge(drawn, training=False)
        if self.heads is None:
            return ops.mean(keras.losses.binary_crossentropy(conditions, judged))
        return ops.mean(per_head_crossentropy(conditions, judged, self.heads))


def _decode_keeping_statistics(decoder: keras.Model, codes, conditions):
    """The decoder in training mode (gradients through inference-mode BatchNormalization trained a
    second, inference-only behaviour of the decoder), with its BatchNormalization moving statistics
    restored afterwards: they must describe real images only, not these drawn rows (docs/generator.md)."""
    statistics = [v for layer in decoder.layers if isinstance(layer, keras.layers.BatchNormalization)
                  for v in (layer.moving_mean, layer.moving_variance)]
    before = [ops.copy(v) for v in statistics]  # copies: a converted variable would follow its updates
    drawn = decoder([codes, conditions], training=True)
    for variable, value in zip(statistics, before):
        variable.assign(value)
    return drawn
