"""What a colour generator draws for its rare keys: the (sub-category, gender, colour) keys with
fewer training photos than its kernel's `min_photos`, which draw from their Gaussian, against the
same keys drawing a residual of any photo of their (sub-category, gender) pair (`rare_from_pair`).

For every rare key, `--draws` images (one seed, rows of their own), each variant from the same
noise and choices. Measured against the training photos of those keys (the only real photos most
of them have): Fréchet distance and k-NN precision / recall on the shipped classifier's features,
sharpness (mean squared Laplacian over the real photos'), the spread of each key's images (mean
pairwise feature distance, over the real photos' of keys with 2+ photos), and the share labelled
as asked (sub-category and gender by the shipped classifier, colour by `--colour-classifier`):

    python docs/experiments/2026-12-07-rare-keys.py --data-dir ../shared/data/fashion-small \
        --generator fashiongen/pretrained/generator --colour-classifier runs/catalog/grouped
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from fashiongen.runtime import import_tensorflow_quietly

import_tensorflow_quietly()

from fashiongen.dataset import load_dataset  # noqa: E402
from fashiongen.generator.generator import Generator  # noqa: E402
from fashiongen.generator.quality import (  # noqa: E402
    BATCH,
    _predicted_classes,
    frechet_distance,
    knn_precision_recall,
    laplacian_energy,
    penultimate_features,
    sharpness_ratio,
)
from fashiongen.labeler.labeler import Labeler  # noqa: E402
from fashiongen.model_folder import LABELER  # noqa: E402
from fashiongen.splits import split_of_card  # noqa: E402


def spread_per_key(features: np.ndarray, keys: np.ndarray) -> float:
    """The mean over keys of 2+ rows of their rows' mean pairwise Euclidean distance."""
    values = []
    for key in np.unique(keys):
        rows = features[keys == key]
        if len(rows) >= 2:
            d = np.sqrt(((rows[:, None] - rows[None]) ** 2).sum(-1))
            values.append(d[np.triu_indices(len(rows), 1)].mean())
    return float(np.mean(values))


def asked(labeler: Labeler, images: np.ndarray, conditions: np.ndarray, schema, heads) -> dict[str, float]:
    """The share of `images` the labeler names as their `conditions` (rows in `schema`) ask, per head."""
    theirs = _predicted_classes(labeler.schema, labeler.scores(images), heads)
    mine = _predicted_classes(schema, conditions, heads)  # one-hot rows: argmax is the class
    return {column: float(np.mean(mine[column] == theirs[column])) for column in heads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="dataset folder with styles.csv and images/")
    parser.add_argument("--generator", type=Path, required=True, help="a colour generator whose prior has a kernel")
    parser.add_argument("--colour-classifier", type=Path, required=True, help="a labeler with a baseColour head")
    parser.add_argument("--draws", type=int, default=4, help="images per rare key")
    parser.add_argument("--seed", type=int, default=0, help="the seed of every draw")
    args = parser.parse_args()

    generator = Generator.load(args.generator)
    prior = generator.prior
    dataset = load_dataset(args.data_dir)
    train = split_of_card(generator.card.get("split"), dataset, str(args.generator)).train
    conditions = generator.schema.encode_frame(dataset.styles.iloc[train])
    _, key_of_photo = prior._pairs_of(conditions)
    counts = np.bincount(prior.kernel.keys, minlength=len(prior.conditions))
    rare = np.flatnonzero((counts > 0) & (counts < prior.kernel.min_photos))
    photos = np.isin(key_of_photo, rare)
    print(f"{len(rare)} rare keys of {len(counts)} hold {photos.sum()} training photos")

    classifier, colour = Labeler.load(LABELER.shipped), Labeler.load(args.colour_classifier)
    real_images = dataset.images[train][photos]
    real_features = penultimate_features(classifier, real_images)
    real_energy = laplacian_energy(real_images)
    rows = np.repeat(rare, args.draws)
    row_conditions = prior.conditions[rows]
    full = np.zeros((len(rows), generator.schema.size), np.float32)
    full[:, : row_conditions.shape[1]] = row_conditions
    noise = generator.codes(args.seed, len(rows))
    choice = np.random.default_rng(args.seed).random(len(rows))
    print("| rare keys draw | Fréchet distance | precision / recall | sharpness | spread per key | "
          "subCategory / gender / colour |")
    print("|---|---|---|---|---|---|")
    real_spread = spread_per_key(real_features, key_of_photo[photos])
    labels = asked(classifier, real_images, conditions[photos], generator.schema, ("subCategory", "gender"))
    labels |= asked(colour, real_images, conditions[photos], generator.schema, ("baseColour",))
    print(f"| (their training photos) | | | 1.00 | {real_spread:.2f} | {labels['subCategory']:.3f} / "
          f"{labels['gender']:.3f} / {labels['baseColour']:.3f} |")
    for name, from_pair in (("their Gaussian", False), ("their pair's residuals", True)):
        variant = prior.with_kernel(dataclasses.replace(prior.kernel, rare_from_pair=from_pair))
        codes = variant.sample(full, noise, choice)
        images = np.concatenate([generator.decode(codes[i : i + BATCH], full[i : i + BATCH])
                                 for i in range(0, len(codes), BATCH)])
        features = penultimate_features(classifier, images)
        pr = knn_precision_recall(real_features, features)
        labels = asked(classifier, images, full, generator.schema, ("subCategory", "gender"))
        labels |= asked(colour, images, full, generator.schema, ("baseColour",))
        print(f"| {name} | {frechet_distance(real_features, features):.2f} | {pr['precision']:.3f} / "
              f"{pr['recall']:.3f} | {sharpness_ratio(laplacian_energy(images), real_energy):.2f} | "
              f"{spread_per_key(features, rows):.2f} | {labels['subCategory']:.3f} / {labels['gender']:.3f} / "
              f"{labels['baseColour']:.3f} |")


if __name__ == "__main__":
    main()
