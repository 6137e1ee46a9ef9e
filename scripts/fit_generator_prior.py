#!/usr/bin/env python
"""Fit a generator's latent prior: one Gaussian per (sub-category, gender) pair in code space.

The encoder's mean codes of the training images give each pair's centre and the pooled within-pair
covariance; generate() then draws a pair's codes from there instead of from N(0, I), so the images
show the requested labels. train_generator.py does this after training; this script refits an
existing generator in place (for example after changing the data), writing only prior.npz and the
model card.
Example: python scripts/fit_generator_prior.py --data-dir ../shared/data/fashion-small
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
# Import this checkout's package even when another checkout is the one pip installed.
sys.path.insert(0, str(REPO_ROOT))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("data") / "fashion-small",
                        help="dataset folder with styles.csv and images/ (default: data/fashion-small)")
    parser.add_argument("--generator", type=Path, default=REPO_ROOT / "fashiongen" / "pretrained" / "generator",
                        help="generator folder to fit and update in place (default: the shipped one)")
    parser.add_argument("--split", choices=("random", "grouped"), default=None,
                        help="which split's training part to fit on (default: the split in the generator's model card)")
    parser.add_argument("--seed", type=int, default=None,
                        help="the split's seed (default: the seed in the generator's model card)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="decoded-image cache folder")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the model card
    return args


def fit(args: argparse.Namespace) -> dict:
    from fashiongen import data, vae
    from fashiongen.training import script_command

    generator = vae.Generator.load(args.generator, with_prior=False)  # the old prior may be the broken part
    if generator.arch == "paper":
        raise vae.GeneratorError("the paper's generator draws from N(0, I) by definition; fit the prior of a conv one")
    split_card = generator.card.get("split", {})
    kind, seed = args.split or split_card.get("kind", "random"), args.seed
    seed = seed if seed is not None else int(split_card.get("seed", 42))
    dataset = data.load_dataset(args.data_dir, cache_dir=args.cache_dir)
    split = data.make_split(kind, dataset, seed)
    rows = split.train
    conditions = generator.schema.encode_frame(dataset.styles.iloc[rows])
    prior = generator.fit_prior(dataset.images[rows], conditions)
    summary = {**prior.describe(), "fitted_on": f"training part of the {kind} split (seed {seed})",
               "command": script_command("fit_generator_prior.py", args.argv)}
    # only the prior and the card change: the Keras files stay byte for byte as they were
    prior.save(args.generator / vae.PRIOR_FILE)
    data.atomic_write_text(args.generator / vae.CARD_FILE,
                           json.dumps(dict(generator.card, latent_prior=summary), indent=2, default=str) + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    from fashiongen.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    args = parse_args(argv)
    from fashiongen.data import DatasetError
    from fashiongen.vae import GeneratorError

    try:
        summary = fit(args)
    except (DatasetError, GeneratorError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"fitted the latent prior of {args.generator}: {summary['pairs']} label pairs from "
          f"{summary['images']:,} training images")
    return 0


if __name__ == "__main__":
    sys.exit(main())
