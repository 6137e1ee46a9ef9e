#!/usr/bin/env python
"""Fit a generator's latent prior: one Gaussian per (sub-category, gender) pair in code space.

The encoder's mean codes of the training images give each pair's centre and the pooled within-pair
covariance; generate() then draws a pair's codes from there instead of from N(0, I), so the images
show the requested labels. train_generator.py does this after training; this script refits an
existing generator in place (for example after changing the data), writing only prior.npz and the
model card.

With --judge, each pair's Gaussian is then refined: moved, within a KL budget, to where the decoder
draws images that the judge classifier labels as that pair (fashiongen/generator/refine.py). Reconstruction
does not use the prior, so it is unchanged. Use a judge other than the classifier that evaluates
the generator, for example one trained with --split grouped, or the evaluation grades its own judge.
Example: python scripts/fit_generator_prior.py --data-dir ../shared/data/fashion-small
         --judge runs/classifier/compact-grouped
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from fashiongen.model_folder import CARD_FILE

REPO_ROOT = Path(__file__).resolve().parents[1]
# Import this checkout's package even when another checkout is the one pip installed.
sys.path.insert(0, str(REPO_ROOT))

# the refinement's defaults, kept here so that --help works before TensorFlow is imported;
# tests/test_guidance.py checks they equal fashiongen.guidance's
DEFAULT_STEPS, DEFAULT_BATCH_SIZE, DEFAULT_KL_WEIGHT, DEFAULT_LEARNING_RATE = 500, 128, 0.003, 0.01
DEFAULT_LOSS, DEFAULT_STRETCH, DEFAULT_KL_BY_COUNT = "bce", False, False


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
    parser.add_argument("--judge", type=Path, default=None,
                        help="classifier folder whose labels the refined prior aims at (default: no refinement)")
    parser.add_argument("--judge-steps", type=int, default=DEFAULT_STEPS,
                        help=f"refinement steps (default: {DEFAULT_STEPS})")
    parser.add_argument("--judge-batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"images judged per step (default: {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--judge-kl-weight", type=float, default=DEFAULT_KL_WEIGHT,
                        help="weight of the KL divergence to the fitted prior: higher keeps the codes nearer the "
                             f"training photos' (default: {DEFAULT_KL_WEIGHT})")
    parser.add_argument("--judge-learning-rate", type=float, default=DEFAULT_LEARNING_RATE,
                        help=f"Adam's learning rate for the refinement (default: {DEFAULT_LEARNING_RATE})")
    parser.add_argument("--judge-loss", choices=("bce", "heads"), default=DEFAULT_LOSS,
                        help="the judge's verdict: binary cross-entropy over all its scores, or each head's "
                             f"cross-entropy (default: {DEFAULT_LOSS})")
    parser.add_argument("--judge-stretch", action=argparse.BooleanOptionalAction, default=DEFAULT_STRETCH,
                        help="also learn each pair's spread, not only its centre: narrower pairs, fewer "
                             f"mislabelled images, less variety (default: {'on' if DEFAULT_STRETCH else 'off'})")
    parser.add_argument("--judge-kl-by-count", action=argparse.BooleanOptionalAction, default=DEFAULT_KL_BY_COUNT,
                        help="scale each pair's KL weight by its training photos over the median pair's, so rare "
                             "pairs move further than common ones (default: "
                             f"{'on' if DEFAULT_KL_BY_COUNT else 'off'})")
    parser.add_argument("--judge-seed", type=int, default=0,
                        help="seed of the refinement's pair and noise draws (default: 0)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.judge_steps < 1 or args.judge_batch_size < 1:
        parser.error("--judge-steps and --judge-batch-size must be at least 1")
    if args.judge_kl_weight < 0 or args.judge_learning_rate <= 0:
        parser.error("--judge-kl-weight must be at least 0 and --judge-learning-rate above 0")
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for the model card
    return args


def fit(args: argparse.Namespace) -> dict:
    from fashiongen import model_folder
    from fashiongen.dataset import load_dataset
    from fashiongen.errors import GeneratorError
    from fashiongen.generator.generator import Generator
    from fashiongen.generator.prior import PRIOR_FILE
    from fashiongen.generator.refine import refine_prior
    from fashiongen.labeler.labeler import Labeler
    from fashiongen.splits import make_split
    from fashiongen.training import script_command

    generator = Generator.load(args.generator, with_prior=False)  # the old prior may be the broken part
    if generator.arch == "paper":
        raise GeneratorError("the paper's generator draws from N(0, I) by definition; fit the prior of a conv one")
    judge = judge_model = None
    if args.judge is not None:  # loaded first: a wrong judge fails before the slow part
        judge = Labeler.load(args.judge)
        judge_model = judge.as_judge(generator.schema, str(args.judge))
    split_card = generator.card.get("split", {})
    kind, seed = args.split or split_card.get("kind", "random"), args.seed
    seed = seed if seed is not None else int(split_card.get("seed", 42))
    dataset = load_dataset(args.data_dir, cache_dir=args.cache_dir)
    split = make_split(kind, dataset, seed)
    rows = split.train
    conditions = generator.schema.encode_frame(dataset.styles.iloc[rows])
    prior = generator.fit_prior(dataset.images[rows], conditions)
    summary = {**prior.describe(), "fitted_on": f"training part of the {kind} split (seed {seed})",
               "command": script_command("fit_generator_prior.py", args.argv)}
    if judge is not None:
        prior, refinement = refine_prior(
            generator, judge_model, steps=args.judge_steps, batch_size=args.judge_batch_size,
            kl_weight=args.judge_kl_weight, learning_rate=args.judge_learning_rate, loss=args.judge_loss,
            stretch=args.judge_stretch, kl_by_count=args.judge_kl_by_count, seed=args.judge_seed,
            verbose=0 if args.quiet else 1)
        summary["judge_refinement"] = {"judge": str(args.judge), "judge_command": judge.card.get("command"),
                                       **refinement}
    # only the prior and the card change: the Keras files stay byte for byte as they were
    prior.save(args.generator / PRIOR_FILE)
    model_folder.write_card(args.generator / CARD_FILE, dict(generator.card, latent_prior=summary))
    return summary


def main(argv: list[str] | None = None) -> int:
    from fashiongen.runtime import import_tensorflow_quietly

    import_tensorflow_quietly()
    args = parse_args(argv)
    from fashiongen.errors import ClassifierError, DatasetError, GeneratorError

    try:
        summary = fit(args)
    except (DatasetError, GeneratorError, ClassifierError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"fitted the latent prior of {args.generator}: {summary['pairs']} label pairs from "
          f"{summary['images']:,} training images"
          + (f", refined against {args.judge}" if "judge_refinement" in summary else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
