"""The pattern ratio of a generator's reconstructions of the real validation photos, per
sub-category, against the photos themselves: a plaid or bands the decoder paints show here without
any latent prior (2026-12-06 plaid note, 2026-12-07 feature-matching note):

    python docs/experiments/2026-12-07-reconstruction-pattern.py --data-dir ../shared/data/fashion-small \
        --generator fashiongen/pretrained/generator --generator runs/generator/fm30
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from fashiongen.runtime import import_tensorflow_quietly

import_tensorflow_quietly()

from fashiongen.dataset import load_dataset  # noqa: E402
from fashiongen.generator.generator import Generator  # noqa: E402
from fashiongen.generator.quality import BATCH, log_power_spectra, pattern_ratios  # noqa: E402
from fashiongen.splits import make_split  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="dataset folder with styles.csv and images/")
    parser.add_argument("--generator", type=Path, action="append", required=True,
                        help="generator folder (repeat the flag for several)")
    args = parser.parse_args()
    dataset = load_dataset(args.data_dir)
    validation = make_split("random", dataset, 42).validation
    styles, photos = dataset.styles.iloc[validation], dataset.images[validation]
    classes = styles["subCategory"].to_numpy()
    real = log_power_spectra(photos, classes)
    for folder in args.generator:
        generator = Generator.load(folder, with_prior=False)
        conditions = generator.schema.encode_frame(styles)
        rebuilt = np.concatenate([generator.reconstruct(photos[i : i + BATCH], conditions[i : i + BATCH])
                                  for i in range(0, len(photos), BATCH)])
        ratios = pattern_ratios(log_power_spectra(rebuilt, classes), real)
        print(folder, " ".join(f"{name} {ratio:.2f}" for name, ratio in sorted(ratios.items())), flush=True)


if __name__ == "__main__":
    main()
