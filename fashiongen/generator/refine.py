"""Judge-guided latent prior: move each label pair's Gaussian in code space to where the decoder
draws images that a classifier (the judge) labels as that pair, without touching the decoder.

Why: the fitted prior (vae.LatentPrior) is where the encoder put each pair's training photos,
and parts of it decode to images that look like another pair (a boys' sandal that reads as a
women's one). Fine-tuning the decoder with a judge gains label consistency but costs
reconstruction, because one decoder serves both; moving the prior costs reconstruction nothing,
as reconstruct() never uses it. A KL penalty to the fitted Gaussian keeps each pair's codes where
its photos are, so the images stay varied and realistic (the Fréchet distance and k-NN recall in
evaluate_generator.py say whether they did).

Each pair p learns a shift s_p in its fitted Gaussian's whitened coordinates, and with
stretch=True also a log-stretch l_p: code = mean_p + scale_p @ (s_p + exp(l_p) * noise). The loss
is the judge's verdict on decoded images (binary cross-entropy over its sigmoid scores, or each
head's cross-entropy) plus kl_weight * KL(refined_p || fitted_p), which in those coordinates is
0.5 * sum(exp(2 l_p) + s_p^2 - 1 - 2 l_p) (0.5 * |s_p|^2 without the stretch). With kl_by_count,
a pair's KL weight grows with its training photos: the fitted Gaussian of a pair with three photos
is mostly the pooled covariance and may move far, that of a pair with thousands stays near its
photos. Measured on the shipped generator (README): stretching narrows every pair and costs k-NN
recall; with the count weighting, the rare pairs shrink towards one image each (the seed barely
changes it). Both lift conditional accuracy and cost variety, so both are off by default.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import keras
import numpy as np
from keras import ops

from fashiongen.config import option
from fashiongen.errors import GeneratorError
from fashiongen.generator.generator import Generator
from fashiongen.generator.judge import per_head_crossentropy
from fashiongen.generator.prior import LatentPrior
from fashiongen.schema import COLOUR

LOSSES = ("bce", "heads")


@dataclass
class RefinementConfig:
    """How refine_prior() refines; scripts/fit_generator_prior.py offers each field as a --judge-* flag."""

    steps: int = option(500, "refinement steps")
    batch_size: int = option(128, "images judged per step")
    kl_weight: float = option(0.003, "weight of the KL divergence to the fitted prior: higher keeps the codes "
                                     "nearer the training photos'")
    learning_rate: float = option(0.01, "Adam's learning rate for the refinement")
    loss: str = option("bce", "the judge's verdict: binary cross-entropy over all its scores, or each head's "
                              "cross-entropy", choices=LOSSES)
    stretch: bool = option(False, "also learn each pair's spread, not only its centre: narrower pairs, fewer "
                                  "mislabelled images, less variety", negatable=True)
    kl_by_count: bool = option(False, "scale each pair's KL weight by its training photos over the median "
                                      "pair's, so rare pairs move further than common ones", negatable=True)
    seed: int = option(0, "seed of the refinement's pair and noise draws")
    colour: bool = option(False, "a generator with colour control: the judge (a catalog labeler) also judges "
                                 "the colour each drawn row asks for, by its baseColour head (needs the heads "
                                 "loss; without --by-colour a pair's one shift serves all its colours)",
                          negatable=True)
    colour_weight: float = option(1.0, "with colour judged: the colour head's weight beside sub-category's and "
                                       "gender's (1 each); lower lets the colour judge move the codes less")


class PriorRefiner(keras.Model):
    """(Pair index, the decoder's condition row) -> the judge's scores for an image decoded from
    that pair's refined Gaussian; the only trainable weights are the per-pair shifts (and
    log-stretches). The condition row is the pair's, with a colour when the generator has one."""

    def __init__(self, decoder: keras.Model, judge: keras.Model, prior: LatentPrior, kl_weights: np.ndarray,
                 stretch: bool = False, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.decoder, self.judge = decoder, judge  # frozen by the caller (refine_prior)
        pairs, latent = prior.means.shape
        self.latent_dim = latent
        self.kl_weights = ops.convert_to_tensor(np.asarray(kl_weights, np.float32).reshape(pairs))  # one per pair
        self.means = ops.convert_to_tensor(prior.means, "float32")
        self.scales = ops.convert_to_tensor(prior.key_scales, "float32")
        self.shift = self.add_weight(shape=(pairs, latent), initializer="zeros", name="shift")
        self.log_stretch = self.add_weight(shape=(pairs, latent), initializer="zeros", name="log_stretch",
                                           trainable=stretch)
        self.seed_generator = keras.random.SeedGenerator(seed)

    def kl_per_pair(self):
        log_stretch = self.log_stretch
        return 0.5 * ops.sum(ops.exp(2 * log_stretch) + self.shift**2 - 1 - 2 * log_stretch, axis=1)

    def call(self, inputs):
        pair_index, conditions = inputs
        index = ops.cast(ops.reshape(pair_index, (-1,)), "int32")
        noise = keras.random.normal((ops.shape(index)[0], self.latent_dim), seed=self.seed_generator)
        white = ops.take(self.shift, index, axis=0) + ops.exp(ops.take(self.log_stretch, index, axis=0)) * noise
        codes = ops.take(self.means, index, axis=0) + ops.einsum("nij,nj->ni", ops.take(self.scales, index, axis=0),
                                                                   white)
        # inference mode: generation decodes this way, and the decoder's statistics must not move
        images = self.decoder([codes, conditions], training=False)
        # each drawn row carries its pair's KL, so every pair is held to its photos as often as judged
        self.add_loss(ops.mean(ops.take(self.kl_weights * self.kl_per_pair(), index, axis=0)))
        return self.judge(images, training=False)


@contextmanager
def _frozen(*models: keras.Model) -> Iterator[None]:
    """Models (and every layer in them) not trainable inside, as they were after: the refiner must
    update only its own weights, and the generator and judge go back to their callers unchanged."""
    def walk(layer):
        yield layer
        for inner in getattr(layer, "layers", ()):
            yield from walk(inner)

    flags = [(layer, layer.trainable) for model in models for layer in walk(model)]
    for model in models:
        model.trainable = False
    try:
        yield
    finally:
        for layer, trainable in reversed(flags):
            layer.trainable = trainable


def drawn_conditions(prior: LatentPrior, index: np.ndarray, width: int, rng: np.random.Generator) -> np.ndarray:
    """The decoder's condition rows for the keys `index`: each key's own row, and for a generator
    with colour control whose prior is not keyed by colour, a colour drawn per row from those seen
    with the pair in training, as generate() draws "any colour" (`width`: the generator's columns)."""
    keys = prior.conditions[index]
    if width == prior.key_width:
        return keys
    rows = np.zeros((len(index), width), np.float32)
    rows[:, : prior.key_width] = keys
    n_colours = width - prior.key_width
    for key in np.unique(index):
        mine = np.flatnonzero(index == key)
        weights = prior.colour_weights(prior.conditions[key])
        rows[mine, prior.key_width + rng.choice(n_colours, size=len(mine), p=weights)] = 1.0
    return rows


def refine_prior(generator: Generator, judge: keras.Model, config: RefinementConfig | None = None,
                 verbose: int = 0) -> tuple[LatentPrior, dict]:
    """The generator's prior refined against `judge` (a model from [0, 1] images, as the decoder
    draws them, to scores of the schema's sub-category and gender heads, and with `config.colour`
    of its colours after them: Labeler.as_judge), and a summary for
    the model card. `loss`: "bce" or "heads" (see the module's docstring). kl_by_count: each pair's
    KL weight is kl_weight times its training photos over the median pair's. Pairs are drawn
    uniformly, as conditional accuracy weighs them. The generator itself is left unchanged.
    `config`: RefinementConfig's defaults when None."""
    config = config or RefinementConfig()
    steps, batch_size, kl_weight = config.steps, config.batch_size, config.kl_weight
    learning_rate, loss, stretch = config.learning_rate, config.loss, config.stretch
    kl_by_count, seed = config.kl_by_count, config.seed
    if generator.prior is None:
        raise GeneratorError("refining needs a fitted latent prior; fit one first")
    # the judge scores the paper's two heads, and with `colour` the colours too (Labeler.as_judge)
    judged = generator.schema.size if config.colour else generator.schema.paper.size
    if config.colour and not generator.colours:
        raise GeneratorError("judging colour needs a generator with colour control")
    if config.colour and loss != "heads":
        # a key whose photos' colour is outside the head has no colour target: per head it adds
        # nothing, while binary cross-entropy would push its images towards no colour at all
        raise GeneratorError("judging colour needs the heads loss (--judge-loss heads)")
    if config.colour_weight <= 0:
        raise GeneratorError(f"the colour weight must be above 0, got {config.colour_weight:g}")
    if config.colour_weight != 1 and not config.colour:
        raise GeneratorError("a colour weight other than 1 needs colour judged (--judge-colour or --colour-judge)")
    if judge.output_shape[-1] != judged:
        raise GeneratorError(f"the judge scores {judge.output_shape[-1]} labels, the generator's judged heads have "
                             f"{judged}")
    if loss not in LOSSES:
        raise GeneratorError(f"unknown refinement loss {loss!r}; valid: {', '.join(LOSSES)}")
    if steps < 1 or batch_size < 1 or kl_weight < 0 or learning_rate <= 0:
        raise GeneratorError("steps and batch size must be at least 1, the KL weight at least 0 and the learning "
                             "rate above 0")
    prior = generator.prior
    with _frozen(generator.decoder, judge):
        trust = prior.counts / np.median(prior.counts) if kl_by_count else np.ones(len(prior.counts))
        kl_weights = kl_weight * trust
        refiner = PriorRefiner(generator.decoder, judge, prior, kl_weights, stretch=stretch, seed=seed)
        starts = [part.start for part in generator.schema.slices.values()][1:]
        starts = starts if config.colour else starts[:1]
        weights = ([config.colour_weight if head == COLOUR else 1.0 for head in generator.schema.slices]
                   if config.colour else None)
        verdict = ("binary_crossentropy" if loss == "bce" else
                   lambda wanted, scores: per_head_crossentropy(wanted, scores, starts, weights))
        refiner.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=verdict)
        rng = np.random.default_rng(seed)
        index = rng.integers(0, len(prior.means), steps * batch_size)
        conditions = drawn_conditions(prior, index, generator.schema.size, rng)
        history = refiner.fit((index, conditions), conditions[:, :judged], batch_size=batch_size,
                              epochs=1, shuffle=False, verbose=verbose)
    shift, log_stretch = np.asarray(refiner.shift), np.asarray(refiner.log_stretch)
    kl = np.asarray(refiner.kl_per_pair())
    summary = {"loss": loss, "colour": config.colour, "colour_weight": config.colour_weight,
               "stretch": stretch, "kl_by_count": kl_by_count, "steps": steps, "batch_size": batch_size,
               "kl_weight": kl_weight, "learning_rate": learning_rate, "seed": seed,
               "final_loss": float(history.history["loss"][-1]), "kl_per_pair_mean": float(kl.mean()),
               "kl_per_pair_max": float(kl.max()), "stretch_mean": float(np.exp(log_stretch).mean())}
    return prior.refined(shift, log_stretch), summary
