"""Would a prior over the training photos' own codes beat the shipped Gaussian prior, alone or mixed
with it? One generator's decoder, one code per validation row, measured against the real validation
photos as evaluate_generator.py measures generated images (the shipped classifier's penultimate
features):

    python docs/experiments/2026-12-07-mixture-prior.py --data-dir ../shared/data/fashion-small \
        --generator fashiongen/pretrained/generator --colour-classifier runs/catalog/grouped

- prior: the generator's own latent prior (what generation draws today);
- k-means K, h: every training photo's mean code, grouped by the row's sub-category, gender and
  colour (else sub-category and gender, else sub-category: the floor's levels but its last); each
  group's codes clustered by k-means into at most K components; a component drawn by its share of
  the group's photos, plus h times the pair's spread from the prior;
- kernel, every code (or K kept): the same with every photo's code as a component (or K of them
  drawn at random per group, each for its share), a kernel density estimate;
- centred kernel: the kernel estimate moved so that each group's codes centre on the prior's
  (judge-refined) mean for the row's labels instead of their own mean;
- mixed, p: the prior's code with probability p, else the kernel's (drawn per row).

A third table: how near the prior's, the kernel's and the centred kernel's images are to their
nearest training photo, against real validation photos' nearness to theirs (memorisation).

Components: how many codes a generator would have to store for the rows drawn (each 128 numbers):
the distinct training codes kept, or the k-means centres, plus the prior's means where it draws
from them too.

Beside the set numbers, the share of rows whose decoded image the classifiers label with the row's
sub-category, gender and colour (for real photos: the photos themselves). This is per validation
row, so common pairs weigh more; a second table measures the kernel estimates and mixtures as
evaluate_generator.py measures conditional accuracy (16 seeds per training pair, the colour drawn
as generate() draws it for "any colour", every pair alike), beside real validation photos'.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from fashiongen.runtime import import_tensorflow_quietly

import_tensorflow_quietly()

from fashiongen.dataset import load_dataset  # noqa: E402
from fashiongen.generator.generator import Generator  # noqa: E402
from fashiongen.generator.quality import (  # noqa: E402
    BATCH,
    COLOUR,
    FLOOR_LEVELS,
    _predicted_classes,
    _set_metrics,
    _training_pairs,
    penultimate_features,
    real_conditional_accuracy,
    real_validation,
)
from fashiongen.labeler.labeler import Labeler  # noqa: E402
from fashiongen.schema import MISSING_VALUES  # noqa: E402
from fashiongen.splits import make_split  # noqa: E402

SEEDS = 16  # per pair, as evaluate_generator.py
SHOWN = ("frechet_distance", "knn_precision", "knn_recall", "density", "coverage", "sharpness_ratio",
         "pattern_ratio")
# (name, how a group's components are made, at most K of them (None: every code), h)
SETTINGS = (("k-means 1, h = 0.5", "kmeans", 1, 0.5), ("k-means 8, h = 0.3", "kmeans", 8, 0.3),
            ("k-means 8, h = 0.5", "kmeans", 8, 0.5), ("k-means 32, h = 0.3", "kmeans", 32, 0.3),
            ("kernel, every code, h = 0.3", "kept", None, 0.3), ("kernel, 32 kept, h = 0.3", "kept", 32, 0.3),
            ("kernel, 8 kept, h = 0.3", "kept", 8, 0.3), ("centred kernel, every code, h = 0.3", "centred", None, 0.3),
            ("centred kernel, every code, h = 0.2", "centred", None, 0.2),
            ("centred kernel, every code, h = 0.45", "centred", None, 0.45),
            ("centred kernel, 32 kept, h = 0.3", "centred", 32, 0.3),
            ("centred kernel, 16 kept, h = 0.3", "centred", 16, 0.3))
MEMORISED = ("prior", "kernel, every code, h = 0.3", "centred kernel, every code, h = 0.3")
MIXED = ((0.3, "kernel, every code, h = 0.3"), (0.5, "kernel, every code, h = 0.3"),
         (0.7, "kernel, every code, h = 0.3"), (0.5, "kernel, 32 kept, h = 0.3"), (0.5, "kernel, 8 kept, h = 0.3"),
         (0.5, "centred kernel, every code, h = 0.3"))


def kept(codes: np.ndarray, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """At most k of `codes`, drawn without replacement, each for an equal share, and their positions."""
    positions = np.arange(len(codes)) if len(codes) <= k else rng.choice(len(codes), k, replace=False)
    return codes[positions], np.full(len(positions), 1.0 / len(positions)), positions


def nearest_distances(features: np.ndarray, train_features: np.ndarray, chunk: int = 256) -> np.ndarray:
    """Each row's Euclidean distance to its nearest row of `train_features`, `chunk` rows at a time."""
    train_norms = (train_features.astype(np.float64) ** 2).sum(axis=1)
    out = []
    for start in range(0, len(features), chunk):
        part = features[start : start + chunk].astype(np.float64)
        squared = (part**2).sum(axis=1)[:, None] - 2 * part @ train_features.T.astype(np.float64) + train_norms[None]
        out.append(np.sqrt(np.maximum(squared.min(axis=1), 0.0)))
    return np.concatenate(out)


def share(hits: np.ndarray) -> float:
    """The share of True among the known (not None) entries; NaN when none is known."""
    known = [bool(hit) for hit in hits if hit is not None]
    return float(np.mean(known)) if known else float("nan")


def kmeans(codes: np.ndarray, k: int, rng: np.random.Generator, steps: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """At most k centres of `codes` (Lloyd's algorithm from k distinct codes) and each one's share."""
    if len(codes) <= k:
        return codes, np.full(len(codes), 1.0 / len(codes))
    centres = codes[rng.choice(len(codes), k, replace=False)]
    for _ in range(steps):
        nearest = ((codes[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.stack([codes[nearest == j].mean(0) if np.any(nearest == j) else centres[j] for j in range(k)])
    nearest = ((codes[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)  # the shares of the final centres
    counts = np.bincount(nearest, minlength=k).astype(float)
    return centres[counts > 0], counts[counts > 0] / counts.sum()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="dataset folder with styles.csv and images/")
    parser.add_argument("--generator", type=Path, required=True, help="generator folder with a latent prior")
    parser.add_argument("--classifier", type=Path, default=Path("fashiongen/pretrained/classifier"),
                        help="classifier whose penultimate features compare the images and that labels "
                             "sub-category and gender")
    parser.add_argument("--colour-classifier", type=Path, required=True, help="labeler with a colour head")
    args = parser.parse_args()
    labeler, colour_labeler = Labeler.load(args.classifier), Labeler.load(args.colour_classifier)
    generator = Generator.load(args.generator)
    # the Gaussian alone is the "prior" row: the default's prior has had a residual kernel since this
    # note (the note's numbers are the folder at git d464b9d, encoder at full precision)
    generator.prior = generator.prior.with_kernel(None)
    dataset = load_dataset(args.data_dir)
    split = make_split("random", dataset, 42)
    real = real_validation(labeler, dataset, split)
    truth = generator.schema.encode_frame(real.styles)
    train_styles = dataset.styles.iloc[np.asarray(split.train)]
    train_codes = generator.encode(dataset.images[np.asarray(split.train)],
                                   generator.schema.encode_frame(train_styles))[0]
    tables = [train_styles.groupby(list(columns)).indices for columns in FLOOR_LEVELS[:-1]]

    def group_of(row) -> np.ndarray:
        """The training rows with a row's labels, at the first level of the floor's that has any."""
        for columns, table in zip(FLOOR_LEVELS, tables):
            if COLOUR in columns and row[COLOUR] in MISSING_VALUES:
                continue
            key = tuple(row[column] for column in columns)
            found = table.get(key if len(key) > 1 else key[0])
            if found is not None:
                return found
        raise SystemExit(f"no training photo of sub-category {row['subCategory']}")

    # (making, K, group's first row, its size) -> (codes, shares, training rows kept or None for
    # centres): the same in both tables
    components: dict = {}

    def kernel_codes(conditions: np.ndarray, styles: pd.DataFrame, making: str, k: int | None, h: float,
                     seed: int = 0) -> tuple[np.ndarray, int]:
        rng, drawn, used, moves = np.random.default_rng(seed), [], set(), []
        for _, row in styles.iterrows():
            rows = group_of(row)
            key = (making, k, int(rows[0]), len(rows))
            if key not in components:
                codes, fit_rng = train_codes[rows], np.random.default_rng(int(rows[0]))
                if making == "kmeans":
                    components[key] = (*kmeans(codes, k, fit_rng), None)
                else:
                    chosen, shares, positions = kept(codes, k or len(codes), fit_rng)
                    components[key] = (chosen, shares, rows[positions])
            used.add(key)
            centres, shares, _ = components[key]
            drawn.append(centres[rng.choice(len(centres), p=shares)])
            moves.append(train_codes[rows].mean(axis=0))
        if making == "centred":
            drawn = list(np.stack(drawn) + generator.prior.centres(conditions) - np.stack(moves))
        _, pairs = generator.prior._pairs_of(conditions)
        # as LatentPrior.sample: a row whose key the prior never saw draws with the pooled spread
        spreads = np.where((pairs >= 0)[:, None, None],
                           generator.prior.scales[generator.prior.scale_of_key[np.maximum(pairs, 0)]],
                           generator.prior.pooled_scale)
        noise = rng.standard_normal((len(drawn), train_codes.shape[1]))
        # what a generator would store: each kept training code once (groups overlap where a row
        # falls back to its pair), each k-means centre, and the prior's means for the centred kernel
        if making == "kmeans":
            stored = sum(len(components[key][0]) for key in used)
        else:
            stored = len(np.unique(np.concatenate([components[key][2] for key in used])))
        stored += len(generator.prior.means) if making == "centred" else 0
        return np.stack(drawn) + h * np.einsum("nij,nj->ni", spreads, noise), stored

    def candidates(conditions: np.ndarray, styles: pd.DataFrame, prior_codes: np.ndarray, settings, mixed) -> dict:
        """name -> (codes, components) for every setting and mixture."""
        found = {"prior": (prior_codes, len(generator.prior.means))}
        for name, making, k, h in settings:
            found[name] = kernel_codes(conditions, styles, making, k, h)
        from_prior = np.random.default_rng(1).random(len(prior_codes))
        for p, kernel_name in mixed:
            kernel, count = found[kernel_name]
            found[f"mixed, p = {p}, with {kernel_name.rsplit(',', 1)[0]}"] = (
                np.where((from_prior < p)[:, None], prior_codes, kernel),
                count + (0 if kernel_name.startswith("centred") else len(generator.prior.means)))
        return found

    def labels_of(images: np.ndarray, styles: pd.DataFrame) -> dict:
        """Per head, whether the classifiers label each image with its row's class (colour: None where
        the colour head does not know the row's colour)."""
        predicted = _predicted_classes(labeler.schema, labeler.scores(images), ("subCategory", "gender"))
        colours = _predicted_classes(colour_labeler.schema, colour_labeler.scores(images), (COLOUR,))[COLOUR]
        known = styles[COLOUR].isin(colour_labeler.schema.heads[COLOUR]).to_numpy()
        hits = {column: predicted[column] == styles[column].to_numpy() for column in ("subCategory", "gender")}
        return hits | {COLOUR: np.where(known, colours == styles[COLOUR].to_numpy(), None)}

    def decoded(codes: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        return np.concatenate([generator.decode(codes[i : i + BATCH], conditions[i : i + BATCH])
                               for i in range(0, len(codes), BATCH)])

    heads = ("subCategory", "gender", COLOUR)
    shown = SHOWN + heads
    print("Per validation row:\n")
    print("| codes | components | " + " | ".join(shown) + " |")
    print("|---" * (len(shown) + 2) + "|")
    labelled = labels_of(real.images, real.styles)
    print("| real photos (the floor; labels: the validation photos) | | "
          + " | ".join(f"{real.floor.get(key, float('nan')):.3f}" for key in SHOWN) + " | "
          + " | ".join(f"{share(labelled[h]):.3f}" for h in heads) + " |", flush=True)
    features = {"real validation photos": real.features}
    for name, (codes, count) in candidates(truth, real.styles, generator.latents(truth, 0), SETTINGS, MIXED).items():
        images = decoded(np.asarray(codes, np.float32), truth)
        result = _set_metrics(real, images, penultimate_features(labeler, images))
        if name in MEMORISED:
            features[name] = penultimate_features(labeler, images)
        hits = labels_of(images, real.styles)
        print(f"| {name} | {count} | " + " | ".join(f"{result[key]:.3f}" for key in SHOWN) + " | "
              + " | ".join(f"{share(hits[h]):.3f}" for h in heads) + " |", flush=True)

    # evaluate_generator.py's measure: 16 seeds per training pair, colour drawn as generate() draws
    # it for "any", each pair's share averaged with every pair alike
    pairs = _training_pairs(dataset, split, generator.schema)
    conditions = np.concatenate([generator.conditions(sub, gender, seed, 1) for sub, gender in pairs
                                 for seed in range(SEEDS)])
    drawn = _predicted_classes(generator.schema, conditions, heads)
    styles = pd.DataFrame({column: drawn[column] for column in heads})
    prior_codes = np.concatenate([generator.latents(conditions[i : i + 1], i % SEEDS) for i in range(len(conditions))])
    real_reference = real_conditional_accuracy(colour_labeler.schema, colour_labeler.scores(real.images), real.styles,
                                               pairs, colour=True)
    real_pairs = real_conditional_accuracy(labeler.schema, real.scores, real.styles, pairs)
    print(f"\nPer training pair ({len(pairs)} pairs, {SEEDS} seeds each):\n")
    print("| codes | " + " | ".join(heads) + " |")
    print("|---" * (len(heads) + 1) + "|")
    print("| real validation photos | " + " | ".join(
        f"{(real_pairs if h != COLOUR else real_reference)[f'{h}_accuracy']:.3f}" for h in heads) + " |", flush=True)
    kept_settings = [setting for setting in SETTINGS if setting[1] != "kmeans"]
    for name, (codes, _) in candidates(conditions, styles, prior_codes, kept_settings, MIXED).items():
        hits = labels_of(decoded(np.asarray(codes, np.float32), conditions), styles)
        per_pair = {h: [share(hits[h][i : i + SEEDS]) for i in range(0, len(conditions), SEEDS)] for h in heads}
        print(f"| {name} | " + " | ".join(f"{np.nanmean(per_pair[h]):.3f}" for h in heads) + " |", flush=True)

    # How near each image is to its nearest training photo, on the same features, against how near
    # the real validation photos (new photos of the same catalogue) are to theirs
    train_features = penultimate_features(labeler, dataset.images[np.asarray(split.train)])
    nearest = {name: nearest_distances(found, train_features) for name, found in features.items()}
    real_nearest = nearest["real validation photos"]
    print("\nNearest training photo:\n")
    print("| images | median distance / real photos' | share nearer than 99% of real photos' |")
    print("|---|---|---|")
    for name, distances in nearest.items():
        print(f"| {name} | {np.median(distances) / np.median(real_nearest):.3f} | "
              f"{np.mean(distances < np.percentile(real_nearest, 1)):.3f} |", flush=True)

if __name__ == "__main__":
    main()
