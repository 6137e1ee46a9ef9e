#!/usr/bin/env python
"""Evaluate a trained classifier on a folder of labelled images of any size.

Images are named <id>.<ext> (JPEG, PNG, WebP, ...) and go through the same preprocessing as the
app's uploads. The labels CSV needs an id column; every head of the model whose column it has
(masterCategory, subCategory, articleType, baseColour, gender, season, usage) is scored, so
styles.csv scores them all. Example:
  python scripts/evaluate_classifier.py --images ../shared/data/fashion-small/images \\
      --labels ../shared/data/fashion-small/styles.csv --json eval.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fashiongen.errors import ClassifierError, DatasetError
from fashiongen.files import atomic_write_text, check_writable
from fashiongen.model_folder import LABELER
from fashiongen.runtime import import_tensorflow_quietly


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, required=True, help="folder of images named <id>.<ext>")
    parser.add_argument("--labels", type=Path, required=True,
                        help="CSV with an id column and any of the model's attribute columns (others are ignored)")
    parser.add_argument("--model", type=Path, default=None,
                        help="model folder (classifier.keras + labels.json); default: the shipped model "
                             "in fashiongen/pretrained/classifier")
    parser.add_argument("--validation-split", choices=("random", "grouped"), default=None,
                        help="evaluate only the validation part of this training split of the dataset "
                             "(the rows scripts/train_classifier.py held out; default: every labelled image)")
    parser.add_argument("--seed", type=int, default=42,
                        help="the split's seed: training's --split-seed (default: 42, as in training)")
    parser.add_argument("--json", type=Path, default=None, help="write the full report (with per-class metrics) here")
    parser.add_argument("--figures", type=Path, default=None,
                        help="write confusion matrices (HTML, and PNG when a Chromium is installed) to this folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:  # before the evaluation, so a bad output path does not throw its result away
        if args.json:
            check_writable(args.json)
        if args.figures:
            check_writable(args.figures, folder=True)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    import_tensorflow_quietly()
    # imported here, not at the top: a bad output path fails before TensorFlow's seconds of start-up
    from fashiongen.labeler.evaluation import evaluate_folder, validation_ids
    from fashiongen.labeler.labeler import Labeler
    from fashiongen.labeler.report import format_report_table, save_confusion_figures

    try:
        labeler = Labeler.load(args.model or LABELER.shipped)
        only_ids = (validation_ids(args.images, args.labels, args.validation_split, args.seed)
                    if args.validation_split else None)
        report, skipped = evaluate_folder(labeler, args.images, args.labels, only_ids,
                                                     progress=not args.quiet)
    except (ClassifierError, DatasetError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for line in skipped.lines():
        print(line)
    print(format_report_table(report))
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.figures:
        for path in save_confusion_figures(report, args.figures):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
