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

from fashiongen.runtime import import_tensorflow_quietly

import_tensorflow_quietly()  # before Keras is imported below: its start-up chatter would spoil one-line errors

from fashiongen import model_folder  # noqa: E402
from fashiongen.config import add_arguments, from_namespace  # noqa: E402
from fashiongen.dataset import load_dataset  # noqa: E402
from fashiongen.errors import ClassifierError, DatasetError, GeneratorError  # noqa: E402
from fashiongen.generator.generator import Generator  # noqa: E402
from fashiongen.generator.judge import joint_judge  # noqa: E402
from fashiongen.generator.prior import PRIOR_FILE, LatentPrior  # noqa: E402
from fashiongen.generator.refine import RefinementConfig, refine_prior  # noqa: E402
from fashiongen.labeler.labeler import Labeler  # noqa: E402
from fashiongen.model_folder import CARD_FILE, GENERATOR  # noqa: E402
from fashiongen.paths import DEFAULT_DATA_DIR  # noqa: E402
from fashiongen.splits import DEFAULT_SPLIT_SEED, make_split  # noqa: E402
from fashiongen.training import SPLITS, command_line, script_command  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help=f"dataset folder with styles.csv and images/ (default: {DEFAULT_DATA_DIR})")
    parser.add_argument("--generator", type=Path, default=GENERATOR.shipped,
                        help="generator folder to fit and update in place (default: the shipped one)")
    parser.add_argument("--split", choices=SPLITS, default=None,
                        help="which split's training part to fit on (default: the split in the generator's model card)")
    parser.add_argument("--seed", type=int, default=None,
                        help="the split's seed (default: the seed in the generator's model card)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="decoded-image cache folder")
    parser.add_argument("--judge", type=Path, default=None,
                        help="classifier folder whose labels the refined prior aims at (default: no refinement)")
    add_arguments(parser, RefinementConfig, prefix="judge_")  # --judge-steps, --judge-batch-size, ...
    parser.add_argument("--colour-judge", type=Path, default=None,
                        help="a catalog labeler that judges only the colour each drawn row asks for, while --judge "
                             "judges sub-category and gender (implies --judge-colour; default: --judge judges all)")
    parser.add_argument("--by-colour", action="store_true",
                        help="one Gaussian per (sub-category, gender, colour) instead of per pair, for a colour "
                             "generator whose encoder never saw the colour (a vaegan started from a conv "
                             "generator): its codes hold the colour, so a pair's Gaussian ignores the asked one")
    parser.add_argument("--colour-shrinkage", type=float, default=LatentPrior.COLOUR_SHRINKAGE,
                        help="with --by-colour: pseudo-images by which each colour's centre is shrunk towards "
                             "its pair's, so the many colours with a handful of photos do not draw from a noisy "
                             f"mean (default: {LatentPrior.COLOUR_SHRINKAGE:g})")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    args.refinement = from_namespace(RefinementConfig, args, prefix="judge_")
    if args.judge_steps < 1 or args.judge_batch_size < 1:
        parser.error("--judge-steps and --judge-batch-size must be at least 1")
    if args.colour_judge is not None:
        if args.judge is None:
            parser.error("--colour-judge needs --judge (the classifier that judges sub-category and gender)")
        args.refinement.colour = True
    if args.judge_colour and args.judge is None:
        parser.error("--judge-colour needs --judge (a catalog labeler with a baseColour head)")
    if args.refinement.colour and args.refinement.loss != "heads":  # refine_prior says why
        parser.error("judging colour needs --judge-loss heads")
    if args.judge_colour_weight <= 0:
        parser.error("--judge-colour-weight must be above 0")
    if args.judge_colour_weight != 1 and not args.refinement.colour:
        parser.error("--judge-colour-weight needs colour judged (--colour-judge or --judge-colour)")
    if args.colour_shrinkage < 0:
        parser.error("--colour-shrinkage must be at least 0")
    if args.judge_kl_weight < 0 or args.judge_learning_rate <= 0:
        parser.error("--judge-kl-weight must be at least 0 and --judge-learning-rate above 0")
    args.argv = command_line(argv)  # for the model card
    return args


def card_split(args: argparse.Namespace, card: dict) -> tuple[str, int]:
    """The split to fit on: --split and --seed, else the model card's; a card value that is no split
    is the folder's one-line error, not a traceback from the split code."""
    split_card, folder = card.get("split", {}), GENERATOR.open(args.generator)
    kind = args.split or split_card.get("kind", SPLITS[0])
    if kind not in SPLITS:
        raise folder.error(CARD_FILE, f"has split.kind = {kind!r}, not one of {', '.join(SPLITS)}",
                           "Give --split and --seed instead")
    seed = args.seed if args.seed is not None else split_card.get("seed", DEFAULT_SPLIT_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int):  # JSON true is a Python int
        raise folder.error(CARD_FILE, f"has split.seed = {seed!r}, not a whole number",
                           "Give --split and --seed instead")
    return kind, seed


def fit(args: argparse.Namespace) -> tuple[dict, bool]:
    """The new prior's card entry, and whether the old prior's residual kernel is gone with it."""
    generator = Generator.load(args.generator, with_prior=False)  # the old prior may be the broken part
    if generator.arch == "paper":
        raise GeneratorError("the paper's generator draws from N(0, I) by definition; fit the prior of a conv one")
    if args.by_colour and not generator.colours:
        raise GeneratorError(f"--by-colour: {args.generator} has no colour control")
    if args.refinement.colour and not generator.colours:
        flag = "--colour-judge" if args.colour_judge is not None else "--judge-colour"
        raise GeneratorError(f"{flag}: {args.generator} has no colour control")
    judge = judge_model = colour_judge = None
    if args.judge is not None:  # loaded first: a wrong judge fails before the slow part
        judge = Labeler.load(args.judge)
        # its two heads, and with --judge-colour the colour too, unless --colour-judge judges that
        colour = args.refinement.colour and args.colour_judge is None
        judge_model = judge.as_judge(generator.schema if colour else generator.schema.paper, str(args.judge), colour)
    if args.colour_judge is not None:
        colour_judge = Labeler.load(args.colour_judge)
        colour_model = colour_judge.as_judge(generator.schema, str(args.colour_judge), colour=True)
        judge_model = joint_judge(judge_model, colour_model, generator.schema.paper.size)
    kind, seed = card_split(args, generator.card)
    dataset = load_dataset(args.data_dir, cache_dir=args.cache_dir)
    split = make_split(kind, dataset, seed)
    rows = split.train
    conditions = generator.schema.encode_frame(dataset.styles.iloc[rows])
    prior = generator.fit_prior(dataset.images[rows], conditions, by_colour=args.by_colour,
                                colour_shrinkage=args.colour_shrinkage)
    summary = {**prior.describe(), "fitted_on": f"training part of the {kind} split (seed {seed})",
               "command": script_command("fit_generator_prior.py", args.argv)}
    if args.by_colour:
        summary["colour_shrinkage"] = args.colour_shrinkage
    if judge is not None:
        prior, refinement = refine_prior(generator, judge_model, args.refinement, verbose=0 if args.quiet else 1)
        summary["judge_refinement"] = {"judge": str(args.judge), "judge_command": judge.card.get("command"),
                                       **refinement}
        if colour_judge is not None:
            summary["judge_refinement"].update(colour_judge=str(args.colour_judge),
                                               colour_judge_command=colour_judge.card.get("command"))
    # only the prior and the card change: the Keras files stay byte for byte as they were
    prior.save(args.generator / PRIOR_FILE)
    model_folder.write_card(args.generator / CARD_FILE, dict(generator.card, latent_prior=summary))
    return summary, "kernel" in generator.card.get("latent_prior", {})  # its residuals were the old keys'


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        summary, dropped_kernel = fit(args)
    except (DatasetError, GeneratorError, ClassifierError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"fitted the latent prior of {args.generator}: {summary['pairs']} label pairs from "
          f"{summary['images']:,} training images"
          + (f", refined against {args.judge}" if "judge_refinement" in summary else ""))
    if dropped_kernel:
        print(f"its residual kernel is gone with the old prior: python scripts/fit_prior_kernel.py --generator "
              f"{args.generator} fits it again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
