"""Does sharpening a generator's images after the decoder bring them closer to real photos, or only
raise the sharpness ratio? Each generated image goes through an unsharp mask,
image + amount * (image - Gaussian blur of it, sigma in pixels), before evaluate_generator measures
it against the real validation photos, as it measures the shipped generators:

    python docs/experiments/2026-12-07-unsharp.py --data-dir ../shared/data/fashion-small \
        --generator fashiongen/pretrained/generator --amount 0 --amount 0.5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter

from fashiongen.runtime import import_tensorflow_quietly

import_tensorflow_quietly()

from fashiongen.dataset import load_dataset  # noqa: E402
from fashiongen.generator.generator import Generator  # noqa: E402
from fashiongen.generator.quality import evaluate_generator, real_validation  # noqa: E402
from fashiongen.labeler.labeler import Labeler  # noqa: E402
from fashiongen.model_folder import LABELER  # noqa: E402
from fashiongen.splits import make_split  # noqa: E402

ROWS = ("frechet_distance", "knn_precision", "knn_recall", "density", "coverage", "sharpness_ratio",
        "texture_ratio", "pattern_ratio", "conditional_subCategory_accuracy_real_pairs",
        "conditional_gender_accuracy_real_pairs")


def unsharp(images: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """uint8 images + amount * (images - their blur), per channel, clipped back to uint8."""
    if amount == 0:
        return images
    x = images.astype(np.float32)
    blurred = gaussian_filter(x, sigma=(0, sigma, sigma, 0), mode="nearest")
    return np.clip(np.round(x + amount * (x - blurred)), 0, 255).astype(np.uint8)


class Sharpened(Generator):
    """A loaded generator whose decoded images are unsharp-masked (reconstruction_metrics calls the
    decoder itself, so its numbers stay the generator's own)."""

    amount: float = 0.0
    sigma: float = 1.0

    def decode(self, codes: np.ndarray, conditions: np.ndarray) -> np.ndarray:
        return unsharp(super().decode(codes, conditions), self.amount, self.sigma)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="dataset folder with styles.csv and images/")
    parser.add_argument("--generator", type=Path, required=True, help="generator folder")
    parser.add_argument("--amount", type=float, action="append", required=True, help="unsharp amount (repeat)")
    parser.add_argument("--sigma", type=float, default=1.0, help="the blur's sigma in pixels")
    parser.add_argument("--classifier", type=Path, default=LABELER.shipped, help="the judging classifier")
    args = parser.parse_args()
    dataset = load_dataset(args.data_dir)
    split = make_split("random", dataset, 42)
    labeler = Labeler.load(args.classifier)
    real = real_validation(labeler, dataset, split)
    print("| amount | " + " | ".join(ROWS) + " |")
    print("|---" * (len(ROWS) + 1) + "|")
    print("| real photos (floor) | " + " | ".join(
        f"{real.floor[key]:.3f}" if isinstance(real.floor.get(key), float) else "" for key in ROWS) + " |")
    for amount in args.amount:
        generator = Sharpened.load(args.generator)
        generator.amount, generator.sigma = amount, args.sigma
        report = evaluate_generator(generator, labeler, dataset, split, real=real)
        print(f"| {amount:g} | " + " | ".join(f"{report[key]:.3f}" for key in ROWS) + " |")


if __name__ == "__main__":
    main()
