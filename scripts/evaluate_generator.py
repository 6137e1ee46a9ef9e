#!/usr/bin/env python
"""Compare the paper's CVAE and the default generator on the validation split, side by side.

Reconstruction: the paper's loss (reconstruction BCE + KL/14400) and rounded accuracy under its
exact definitions, MSE and SSIM. Conditional accuracy: for every (sub-category, gender) pair of the
training data, images from many seeds, labeled by the shipped classifier, every pair weighing
alike; the same measure on real validation photos is printed beside it as the reference. Fréchet distance and
k-NN precision/recall between generated and real validation images on the classifier's
penultimate features: Inception weights cannot be downloaded here, so the numbers compare models
with each other, not with published FIDs.
Example: python scripts/evaluate_generator.py --data-dir ../shared/data/fashion-small --json gen.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fashiongen.runtime import import_tensorflow_quietly

import_tensorflow_quietly()  # before Keras is imported below: its start-up chatter would spoil one-line errors

from fashiongen.dataset import load_dataset  # noqa: E402
from fashiongen.errors import ClassifierError, DatasetError, GeneratorError  # noqa: E402
from fashiongen.files import check_writable  # noqa: E402
from fashiongen.generator.generator import Generator  # noqa: E402
from fashiongen.generator.quality import evaluate_generator, real_validation  # noqa: E402
from fashiongen.labeler.labeler import Labeler  # noqa: E402
from fashiongen.paths import DEFAULT_DATA_DIR, PRETRAINED_ROOT  # noqa: E402
from fashiongen.splits import make_split  # noqa: E402
from fashiongen.training import SPLITS  # noqa: E402

ROWS = [("val_loss", "validation loss (paper's)", "{:.4f}"), ("rounded_accuracy", "rounded accuracy", "{:.4f}"),
        ("mse", "MSE", "{:.5f}"), ("ssim", "SSIM", "{:.4f}"),
        ("conditional_subCategory_accuracy", "conditional subCategory acc.", "{:.3f}"),
        ("conditional_gender_accuracy", "conditional gender acc.", "{:.3f}"),
        ("frechet_distance", "Fréchet distance (classifier features)", "{:.2f}"),
        ("knn_precision", "k-NN precision (k=3)", "{:.3f}"), ("knn_recall", "k-NN recall (k=3)", "{:.3f}")]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help=f"dataset folder with styles.csv and images/ (default: {DEFAULT_DATA_DIR})")
    parser.add_argument("--default", type=Path, default=PRETRAINED_ROOT / "generator",
                        help="the default generator's folder (default: fashiongen/pretrained/generator)")
    parser.add_argument("--paper", type=Path, default=PRETRAINED_ROOT / "generator-paper",
                        help="the paper architecture's folder (default: fashiongen/pretrained/generator-paper)")
    parser.add_argument("--classifier", type=Path, default=PRETRAINED_ROOT / "classifier",
                        help="the classifier that judges and provides features (default: the shipped one)")
    parser.add_argument("--split", choices=SPLITS, default="random",
                        help="whose validation part to use; match the models' training split (default: random)")
    parser.add_argument("--seed", type=int, default=42, help="the split's seed (default: 42)")
    parser.add_argument("--seeds-per-pair", type=int, default=16,
                        help="generated images per (sub-category, gender) pair (default: 16)")
    parser.add_argument("--json", type=Path, default=None, help="write both reports here (keys paper, default)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="decoded-image cache folder")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.json:  # before the evaluation, so a bad output path does not throw its result away
            check_writable(args.json)
        labeler = Labeler.load(args.classifier)
        models = {name: Generator.load(folder) for name, folder in (("paper", args.paper), ("default", args.default))}
        dataset = load_dataset(args.data_dir, cache_dir=args.cache_dir)
        split = make_split(args.split, dataset, args.seed)
        real = real_validation(labeler, dataset, split)  # once for both generators
        reports = {name: evaluate_generator(model, labeler, dataset, split, args.seeds_per_pair, real=real)
                   for name, model in models.items()}
    except (ClassifierError, GeneratorError, DatasetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    width = max(len(label) for _, label, _ in ROWS)
    print(f"{'':{width}}  {'paper':>10}  {'default':>10}")
    for key, label, fmt in ROWS:
        print(f"{label:{width}}  {_shown(reports['paper'][key], fmt):>10}  {_shown(reports['default'][key], fmt):>10}")
    reference = reports["default"]["real_validation_conditional_accuracy"]
    if reference["pairs"]:
        print(f"reference, real validation photos of {reference['pairs']} of these pairs, same measure: "
              f"subCategory {reference['subCategory_accuracy']:.3f}, gender {reference['gender_accuracy']:.3f}")
    distances = reports["default"]["frechet_distance"], reports["paper"]["frechet_distance"]
    if None not in distances and distances[1] > 0:
        print(f"default / paper Fréchet distance: {distances[0] / distances[1]:.2f}")
    if args.json:
        reports["notes"] = ("Fréchet distance and k-NN precision/recall use the shipped classifier's penultimate "
                            "features: Inception weights cannot be downloaded here.")
        reports["split"] = {"kind": args.split, "seed": args.seed, "n_validation": int(len(split.validation))}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(reports, indent=2) + "\n")
        print(f"wrote {args.json}")
    return 0


def _shown(value: float | None, fmt: str) -> str:
    """None (a number that too few validation images cannot give) as n/a."""
    return "n/a" if value is None else fmt.format(value)


if __name__ == "__main__":
    sys.exit(main())
