"""Perceptual classifiers before any decoder trains against them: how robust each is, and whether its
perceptual distance rewards a plaid painted over a blurred photo.

For each classifier, on validation photos of its own (grouped) split:
- sub-category accuracy on the photos, and under a 10-step L-inf PGD attack (step epsilon / 4) at
  each --epsilon (levels of 255); fast adversarial training can collapse into a classifier that
  only resists its own one-step attack (Wong et al. 2020's "catastrophic overfitting"), which PGD
  shows;
- the perceptual distance (`PerceptualDistance`, its four blocks) between each photo and a
  Gaussian blur of it, and between the photo and the same blur with a plaid painted on the product
  (a product of two sines, as tests/test_quality.py paints one, where the photo is not its white
  background): the share of photos for which the plaid brings the blur closer to the photo. A
  network for which a plaid makes a blur look more like the photo pays a decoder for painting one;
- with --frechet CLASSIFIER, the Fréchet distance that evaluate_generator.py reads (that
  classifier's pooled features) from the photos to their blur, and to the blur with each plaid.

    python docs/experiments/2026-12-07-robust-perceptual.py --data-dir ../shared/data/fashion-small \
        --classifier runs/classifier/compact-grouped-aa --classifier runs/classifier/robust8
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fashiongen.runtime import import_tensorflow_quietly

import_tensorflow_quietly()

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402
from keras import ops  # noqa: E402

from fashiongen.dataset import load_dataset  # noqa: E402
from fashiongen.generator.perceptual import (  # noqa: E402
    COMPACT_LAYERS,
    PerceptualDistance,
    blurred,
    gaussian_taps,
    random_features,
)
from fashiongen.generator.quality import frechet_distance, penultimate_features  # noqa: E402
from fashiongen.labeler.labeler import Labeler  # noqa: E402
from fashiongen.labeler.model import classifier_loss  # noqa: E402
from fashiongen.splits import DEFAULT_SPLIT_SEED, make_split  # noqa: E402

BATCH = 64
BACKGROUND = 0.92  # a pixel whose darkest channel is at least this is the white background
RANDOM_SEED = DEFAULT_SPLIT_SEED + 2  # train_generator.py draws its random features from --seed + 2


def pgd(model: keras.Model, loss, images: np.ndarray, labels: np.ndarray, epsilon: float, steps: int = 10,
        seed: int = 0) -> np.ndarray:
    """L-inf PGD from a random start, step epsilon / 4, in [0, 1]."""
    x0 = tf.constant(images)
    delta = tf.random.stateless_uniform(images.shape, (seed, 0), -epsilon, epsilon)
    for _ in range(steps):
        with tf.GradientTape() as tape:
            tape.watch(delta)
            value = loss(labels, model(tf.clip_by_value(x0 + delta, 0, 1), training=False))
        delta = tf.clip_by_value(delta + epsilon / 4 * tf.sign(tape.gradient(value, delta)), -epsilon, epsilon)
    return tf.clip_by_value(x0 + delta, 0, 1).numpy()


def plaid(period: float, amplitude: float) -> np.ndarray:
    rows, columns = np.arange(80)[:, None], np.arange(60)[None, :]
    return (amplitude * np.sin(2 * np.pi * rows / period + 0.3)
            * np.sin(2 * np.pi * columns / period + 0.7))[None, :, :, None].astype(np.float32)


def grain(period: float, amplitude: float, count: int, seed: int = 0) -> np.ndarray:
    """Grey noise of the plaid's scale and amplitude: white noise blurred by a Gaussian of sigma
    `period` / 4 (a "4 px" grain: sigma 1 px), a new pattern for every image, scaled to the plaid's
    root-mean-square (amplitude / 2)."""
    noise = np.random.default_rng(seed).normal(size=(count, 80, 60, 1)).astype(np.float32)
    noise = ops.convert_to_numpy(blurred(noise, gaussian_taps(period / 4)))
    return noise * (amplitude / 2 / noise.std())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="dataset folder with styles.csv and images/")
    parser.add_argument("--classifier", type=Path, action="append", required=True,
                        help="classifier folder (repeat the flag for several)")
    parser.add_argument("--photos", type=int, default=512, help="validation photos measured (the first N)")
    parser.add_argument("--epsilon", type=float, nargs="*", default=[4.0, 8.0],
                        help="PGD radii, levels of 255 (the flag alone: no attack)")
    parser.add_argument("--blur", type=float, default=1.5, help="the blur's Gaussian sigma, pixels")
    parser.add_argument("--period", type=float, nargs="+", default=[12.0, 16.0], help="plaid periods, pixels")
    parser.add_argument("--amplitude", type=float, default=10.0, help="the plaid's amplitude, levels of 255")
    parser.add_argument("--grain", action="store_true",
                        help="paint grain (blurred noise of the same scale and strength) instead of a plaid")
    parser.add_argument("--sub-category", default=None, help="only validation photos of this sub-category")
    parser.add_argument("--per-block", action="store_true", help="also each block's distance alone")
    parser.add_argument("--frechet", type=Path, default=None,
                        help="also the Fréchet distances on this classifier's pooled features (the evaluation's)")
    parser.add_argument("--random", action="store_true",
                        help="also the random features of train_generator.py --perceptual-random at its default "
                             f"--seed (seed {RANDOM_SEED}, random10's network)")
    args = parser.parse_args()
    dataset = load_dataset(args.data_dir)
    rows = make_split("grouped", dataset, 42).validation
    if args.sub_category is not None:
        rows = rows[dataset.styles["subCategory"].to_numpy()[rows] == args.sub_category]
    rows = rows[: args.photos]
    photos = dataset.images[rows].astype(np.float32) / 255
    soft = ops.convert_to_numpy(blurred(photos, gaussian_taps(args.blur)))
    product = (photos.min(axis=-1, keepdims=True) < BACKGROUND).astype(np.float32)
    pattern = ((lambda period: grain(period, args.amplitude / 255, len(photos))) if args.grain
               else (lambda period: plaid(period, args.amplitude / 255)))
    plaids = {period: np.clip(soft + product * pattern(period), 0, 1) for period in args.period}
    kind = "grain" if args.grain else "plaid"
    print(f"{len(rows)} validation photos of the grouped split ({args.sub_category or 'all sub-categories'}); "
          f"blur sigma {args.blur} px, {kind} amplitude {args.amplitude:g} of 255 on {product.mean():.0%} of pixels")
    for folder in args.classifier:
        labeler = Labeler.load(folder)
        model, schema = labeler.model, labeler.schema
        labels = dataset.labels(schema)[rows].astype(np.float32)
        loss = classifier_loss(model, schema)
        part = schema.slices["subCategory"]
        truth = labels[:, part].argmax(axis=1)
        labelled = labels[:, part].any(axis=1)  # a sub-category outside the classifier's heads has no truth

        def accuracy(images: np.ndarray) -> float:
            scores = model.predict(images, batch_size=256, verbose=0)
            return float(np.mean((scores[:, part].argmax(axis=1) == truth)[labelled]))

        line = [f"{folder}: sub-category accuracy {accuracy(photos):.3f}"]
        for epsilon in args.epsilon:
            attacked = np.concatenate([pgd(model, loss, photos[i : i + BATCH], labels[i : i + BATCH], epsilon / 255)
                                       for i in range(0, len(photos), BATCH)])
            line.append(f"PGD {epsilon:g}: {accuracy(attacked):.3f}")
        print("; ".join(line), flush=True)
        plaid_rewards(str(folder), model, photos, soft, plaids, args.per_block, kind)
    if args.random:
        plaid_rewards(f"random features (seed {RANDOM_SEED})", random_features(RANDOM_SEED), photos, soft, plaids,
                      args.per_block, kind)
    if args.frechet is not None:
        judge = Labeler.load(args.frechet)

        def frechet(images: np.ndarray) -> float:
            return frechet_distance(real, penultimate_features(judge, np.round(images * 255).astype(np.uint8)))

        real = penultimate_features(judge, dataset.images[rows])
        line = [f"Fréchet distance on {args.frechet}: to the blur {frechet(soft):.3f}"]
        line += [f"to the blur and a {kind} of {period:g} px {frechet(painted):.3f}"
                 for period, painted in plaids.items()]
        print("; ".join(line), flush=True)


def plaid_rewards(name: str, network: keras.Model, photos: np.ndarray, soft: np.ndarray,
                  plaids: dict[float, np.ndarray], per_block: bool, kind: str = "plaid") -> None:
    """Prints the distance from each photo to its blur and to each plaid over it: all four blocks,
    and with `per_block` each block alone."""
    for blocks in [COMPACT_LAYERS] + ([(block,) for block in COMPACT_LAYERS] if per_block else []):
        distance = PerceptualDistance(network, blocks)

        def distances(images: np.ndarray) -> np.ndarray:
            return np.concatenate([ops.convert_to_numpy(distance.distance(photos[i : i + BATCH], images[i : i + BATCH]))
                                   for i in range(0, len(photos), BATCH)])

        to_blur = distances(soft)
        line = [f"  {name}, {'all blocks' if len(blocks) > 1 else blocks[0]}: distance to blur {to_blur.mean():.4f}"]
        for period, painted in plaids.items():
            to_plaid = distances(painted)
            line.append(f"{kind} {period:g} px: {to_plaid.mean():.4f} ({to_plaid.mean() / to_blur.mean() - 1:+.1%}), "
                        f"closer for {np.mean(to_plaid < to_blur):.1%}")
        print("; ".join(line), flush=True)


if __name__ == "__main__":
    main()
