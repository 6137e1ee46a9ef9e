"""Is the prior or the decoder what keeps generated images from real photos? One generator's images
from five kinds of codes, each measured against the real validation photos as evaluate_generator.py
measures generated ones (the shipped classifier's penultimate features):

    python docs/experiments/2026-12-04-decoder-ceiling.py --data-dir ../shared/data/fashion-small \
        --generator fashiongen/pretrained/generator

- prior: the generator's own latent prior, one code per validation row (what generation draws);
- reconstruction: each validation photo's own mean code (the best code there is for that photo);
- floor photo's code: the mean code of the floor's training photo for the row (a real photo with
  the row's labels), the codes of a perfect prior over the training photos;
- its posterior sample: the same with the encoder's noise;
- near the floor photo's code: plus 0.3 and 0.5 of the pair's spread (a kernel density estimate).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fashiongen.runtime import import_tensorflow_quietly

import_tensorflow_quietly()

from fashiongen.dataset import load_dataset  # noqa: E402
from fashiongen.generator.generator import Generator  # noqa: E402
from fashiongen.generator.quality import BATCH, _set_metrics, floor_rows, penultimate_features, real_validation  # noqa: E402
from fashiongen.labeler.labeler import Labeler  # noqa: E402
from fashiongen.splits import make_split  # noqa: E402

SHOWN = ("frechet_distance", "knn_precision", "knn_recall", "density", "coverage", "sharpness_ratio")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="dataset folder with styles.csv and images/")
    parser.add_argument("--generator", type=Path, required=True, help="generator folder with a latent prior")
    parser.add_argument("--classifier", type=Path, default=Path("fashiongen/pretrained/classifier"),
                        help="classifier whose penultimate features compare the images")
    args = parser.parse_args()
    labeler, generator = Labeler.load(args.classifier), Generator.load(args.generator)
    dataset = load_dataset(args.data_dir)
    split = make_split("random", dataset, 42)
    real = real_validation(labeler, dataset, split)
    truth = generator.schema.encode_frame(real.styles)
    train = np.asarray(split.train)
    rows, _ = floor_rows(dataset.styles.iloc[train], real.styles, 0)
    floor_images = dataset.images[train[rows]]
    floor_conditions = generator.schema.encode_frame(dataset.styles.iloc[train[rows]])

    def measured(codes: np.ndarray) -> dict:
        images = np.concatenate([generator.decode(codes[i : i + BATCH], truth[i : i + BATCH])
                                 for i in range(0, len(codes), BATCH)])
        return _set_metrics(real, images, penultimate_features(labeler, images))

    rng = np.random.default_rng(0)
    floor_codes, floor_log_var = generator.encode(floor_images, floor_conditions)
    _, pairs = generator.prior._pairs_of(truth)
    spreads = generator.prior.scales[generator.prior.scale_of_key[np.maximum(pairs, 0)]]
    codes = {
        "prior": generator.latents(truth, 0),
        "reconstruction": generator.encode(real.images, truth)[0],
        "floor photo's code": floor_codes,
        "its posterior sample": floor_codes + np.exp(0.5 * floor_log_var) * rng.standard_normal(floor_codes.shape),
        **{f"near it, {h} of the pair's spread": floor_codes + h * np.einsum(
            "nij,nj->ni", spreads, rng.standard_normal(floor_codes.shape)) for h in (0.3, 0.5)},
    }
    print("| codes | " + " | ".join(SHOWN) + " |")
    print("|---" * (len(SHOWN) + 1) + "|")
    print("| real photos (the floor) | " + " | ".join(f"{real.floor[key]:.3f}" for key in SHOWN) + " |")
    for name, drawn in codes.items():
        result = measured(np.asarray(drawn, np.float32))
        print(f"| {name} | " + " | ".join(f"{result[key]:.3f}" for key in SHOWN) + " |", flush=True)


if __name__ == "__main__":
    main()
