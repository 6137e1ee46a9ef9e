#!/usr/bin/env python
"""Store model folders' weights at half precision (float16), after measuring that the outputs do not change.

Each folder (a labeler or a generator) is copied to a temporary folder, every .keras file of the copy
is halved, and the copy's outputs are compared with the original's: for a generator, the uint8 pixels
of images generated for a few sub-category and gender pairs and seeds, and of reconstructed photos;
for a labeler, each head's top class and probabilities on photos (and its not-a-product flags). The
folders are rewritten, atomically and with "weights": "float16" in their model card, only when every
folder stays within the limits (or with --force); --check-only writes nothing. The other files
(labels.json, prior.npz, outliers.npz, ...) stay as they are. Photos come from --data-dir; without
it, a generator reconstructs its own images and a labeler scores random ones.

Example:
  python scripts/halve_weights.py fashiongen/pretrained/generator fashiongen/pretrained/classifier \\
      --data-dir ../shared/data/fashion-small --check-only
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashiongen.files import check_writable
from fashiongen.paths import DEFAULT_DATA_DIR
from fashiongen.runtime import import_tensorflow_quietly

PER_SEED = 16  # images generated per pair and seed, as the app's grids
# bound the images held in memory (each 14 KB, twice: full and half weights)
MAX_PHOTOS, MAX_SEEDS = 10_000, 100
MB = 1e6


@dataclass
class Check:
    """One measured comparison of the full and the half model, and whether it is within its limit."""

    name: str
    change: str  # the largest change, in words
    share: float  # the share of pixels (or photos) that changed
    unit: str
    limit: str
    within: bool


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", type=Path, nargs="+", metavar="FOLDER",
                        help="model folders to halve: a labeler's (classifier.keras) or a generator's (decoder.keras)")
    parser.add_argument("--check-only", action="store_true",
                        help="measure and print the table, write nothing; exit 2 when a change is over its limit")
    parser.add_argument("--force", action="store_true", help="write even when a change is over its limit")
    parser.add_argument("--only", action="append", metavar="FILE", default=None,
                        help="halve only this .keras file of each folder, e.g. decoder.keras (repeatable; "
                             "default: every .keras file)")
    parser.add_argument("--data-dir", type=Path, default=None,
                        help=f"a dataset (images/ and styles.csv) to take photos from (default: {DEFAULT_DATA_DIR} "
                             "when it is there, else generated or random images)")
    parser.add_argument("--photos", type=int, default=1024,
                        help=f"photos a labeler scores and a generator reconstructs, at most {MAX_PHOTOS:,} "
                             "(default: 1024)")
    parser.add_argument("--pairs", type=int, default=6,
                        help="sub-category and gender pairs a generator draws for (default: 6)")
    parser.add_argument("--seeds", type=int, default=3,
                        help=f"seeds per pair, {PER_SEED} images each, at most {MAX_SEEDS} (default: 3)")
    parser.add_argument("--max-levels", type=int, default=1,
                        help="generator: the largest change of a pixel value allowed, in uint8 levels (default: 1)")
    parser.add_argument("--max-changed-pixels", type=float, default=0.02,
                        help="generator: the largest share of pixels allowed to change at all (default: 0.02)")
    parser.add_argument("--max-top-changes", type=float, default=0.005,
                        help="labeler: the largest share of photos whose top class (per head) or not-a-product "
                             "flag may change (default: 0.005)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:  # before TensorFlow's seconds of start-up
        check_arguments(args)
        for folder in args.folders:
            if not folder.is_dir():
                raise ValueError(f"{folder} is not a folder: give a model folder")
            if not args.check_only:
                check_writable(folder, folder=True)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # predict_on_batch retraces for each batch size; TensorFlow's warning about it is noise here
    import_tensorflow_quietly().get_logger().setLevel("ERROR")
    from fashiongen.errors import DatasetError, ModelFolderError
    from fashiongen.half_precision import HalfPrecisionError
    from fashiongen.imaging import ImageError

    with tempfile.TemporaryDirectory(prefix="halve-weights-") as work:
        try:
            halved, failed = [], []
            for index, folder in enumerate(args.folders):
                kind, copy = folder_kind(folder), Path(work) / str(index)
                checks, shrunk = halve_and_measure(folder, kind, copy, args)
                halved.append((folder, kind, copy, shrunk))
                failed += [f"{folder}: {check.name} {check.limit}" for check in checks if not check.within]
            if failed and not args.force:  # with --check-only too: a failed check is its answer
                print(f"error: over the limit, nothing written (--force writes anyway): {'; '.join(failed)}",
                      file=sys.stderr)
                return 2
            if args.check_only:
                print("--check-only: nothing written")
                return 0
            for folder, kind, copy, shrunk in halved:
                replace_folder(folder, kind, copy, shrunk, argv if argv is not None else sys.argv[1:])
        except (HalfPrecisionError, ModelFolderError, DatasetError, ImageError, ValueError, OSError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return 0


def check_arguments(args: argparse.Namespace) -> None:
    for flag, most in (("photos", MAX_PHOTOS), ("pairs", None), ("seeds", MAX_SEEDS)):
        if not 1 <= getattr(args, flag) <= (most or getattr(args, flag)):
            raise ValueError(f"--{flag} must be from 1 to {most}, got {getattr(args, flag)}" if most else
                             f"--{flag} must be at least 1, got {getattr(args, flag)}")
    if args.max_levels < 0:
        raise ValueError(f"--max-levels must be 0 or more, got {args.max_levels}")
    for flag in ("max_changed_pixels", "max_top_changes"):
        if not 0 <= getattr(args, flag) <= 1:
            raise ValueError(f"--{flag.replace('_', '-')} is a share from 0 to 1, got {getattr(args, flag)}")
    for name in args.only or ():
        if Path(name).name != name or not name.endswith(".keras"):
            raise ValueError(f"--only {name}: give the name of a .keras file in the folder, e.g. decoder.keras")
    if args.data_dir is None:
        args.data_dir = DEFAULT_DATA_DIR if (DEFAULT_DATA_DIR / "styles.csv").is_file() else None
    elif not (args.data_dir / "styles.csv").is_file():
        raise ValueError(f"--data-dir {args.data_dir} has no styles.csv: give the dataset folder")


def folder_kind(folder: Path) -> str:
    """"labeler" or "generator", from the folder's Keras files; ValueError for anything else."""
    from fashiongen.generator.generator import DECODER_FILE
    from fashiongen.labeler.labeler import MODEL_FILE

    if (folder / MODEL_FILE).is_file():
        return "labeler"
    if (folder / DECODER_FILE).is_file():
        return "generator"
    raise ValueError(f"{folder} is no model folder: it has neither {MODEL_FILE} nor {DECODER_FILE}")


def halve_and_measure(folder: Path, kind: str, copy: Path, args: argparse.Namespace) -> tuple[list[Check], bool]:
    """Halve a copy of `folder` into `copy`, compare the two and print the table; the checks, and
    whether any file shrank (False: the folder was halved before)."""
    from fashiongen.half_precision import halve_keras_file

    shutil.copytree(folder, copy)
    print(f"\n{folder} ({kind})")
    print(f"  {'file':<40}{'before':>10}{'after':>10}")
    total_before = total_after = 0
    names = args.only or sorted(path.name for path in copy.glob("*.keras"))
    for name in names:
        path = copy / name
        if not path.is_file():
            raise ValueError(f"{folder} has no {name} (--only)")
        before, after = halve_keras_file(path)
        total_before, total_after = total_before + before, total_after + after
        print(f"  {path.name:<40}{before / MB:>7.2f} MB{after / MB:>7.2f} MB")
    print(f"  {'halved files':<40}{total_before / MB:>7.2f} MB{total_after / MB:>7.2f} MB")
    checks = measure_generator(folder, copy, args) if kind == "generator" else measure_labeler(folder, copy, args)
    print(f"  {'check':<40}{'largest change':>32}{'changed':>16}   limit")
    for check in checks:
        verdict = "ok" if check.within else "OVER"
        print(f"  {check.name:<40}{check.change:>32}{check.share:>8.2%} {check.unit:<7}   {check.limit} {verdict}")
    return checks, total_after < total_before


def measure_generator(original: Path, halved: Path, args: argparse.Namespace) -> list[Check]:
    from fashiongen.generator.generator import Generator

    full, half = Generator.load(original), Generator.load(halved)
    pairs = spread_pairs(full.schema, args.pairs)
    images, conditions, drawn_half = [], [], []
    for sub_category, gender in pairs:
        for seed in range(args.seeds):
            images.append(full.generate(sub_category, gender, seed, PER_SEED))
            drawn_half.append(half.generate(sub_category, gender, seed, PER_SEED))
            conditions.append(full.conditions(sub_category, gender, seed, PER_SEED))
    generated = pixel_check(f"generate {len(pairs)} pairs x {args.seeds} seeds x {PER_SEED}",
                            np.concatenate(images), np.concatenate(drawn_half), args)
    photos = sample_photos(args.data_dir, full.schema, args.photos)
    if photos is None:  # no dataset: its own generated images, with the labels they were drawn for
        what = "generated images"
        photos = (np.concatenate(images)[: args.photos], np.concatenate(conditions)[: args.photos])
    else:
        what = "photos"
    photo_images, photo_conditions = photos
    rebuilt = pixel_check(f"reconstruct {len(photo_images):,} {what}",
                          batched(full.reconstruct, photo_images, photo_conditions),
                          batched(half.reconstruct, photo_images, photo_conditions), args)
    return [generated, rebuilt]


def pixel_check(name: str, full: np.ndarray, half: np.ndarray, args: argparse.Namespace) -> Check:
    """The largest uint8 change and the share of pixels (any of the three values) that changed."""
    difference = np.abs(full.astype(np.int16) - half.astype(np.int16))
    levels = int(difference.max())
    share = float(np.mean(difference.max(axis=-1) > 0))
    within = levels <= args.max_levels and share <= args.max_changed_pixels
    values = float(np.mean(difference > 0))
    return Check(name, f"{levels} level{'s' * (levels != 1)}, {values:.2%} of values", share, "pixels",
                 f"<= {args.max_levels} level(s), <= {args.max_changed_pixels:.2%}", within)


def measure_labeler(original: Path, halved: Path, args: argparse.Namespace) -> list[Check]:
    from fashiongen.labeler.labeler import Labeler

    full, half = Labeler.load(original), Labeler.load(halved)
    photos = sample_photos(args.data_dir, full.schema, args.photos)
    if photos is None:
        what = "random images"
        images = np.random.default_rng(0).integers(0, 256, (args.photos, 80, 60, 3), dtype=np.uint8)
    else:
        what, images = "photos", photos[0]
    before, after = full.analyse(images), half.analyse(images)
    limit = f"<= {args.max_top_changes:.2%}"
    checks = []
    for column, part in full.schema.slices.items():
        moved = before.scores[:, part].argmax(axis=1) != after.scores[:, part].argmax(axis=1)
        largest = float(np.abs(before.scores[:, part] - after.scores[:, part]).max())
        checks.append(Check(f"top {column}, {len(images):,} {what}", f"probability {largest:.5f}",
                            float(moved.mean()), what.split()[-1], limit, moved.mean() <= args.max_top_changes))
    if before.outlier_scores is not None:
        flipped = before.not_a_product != after.not_a_product
        largest = float(np.abs(before.outlier_scores - after.outlier_scores).max())
        checks.append(Check(f"not-a-product flag, {len(images):,} {what}", f"score {largest:.5f}",
                            float(flipped.mean()), what.split()[-1], limit, flipped.mean() <= args.max_top_changes))
    return checks


def spread_pairs(schema, n: int) -> list[tuple[str, str]]:
    """n (sub-category, gender) pairs spread over the schema: every gender, sub-categories from the
    commonest (the schema lists them by frequency) to the rarest."""
    subs, genders = schema.sub_categories, schema.genders
    n = min(n, len(subs) * len(genders))
    return [(subs[i * len(subs) // n], genders[i % len(genders)]) for i in range(n)]


def sample_photos(data_dir: Path | None, schema, n: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Up to n photos of the dataset (a fixed random draw among rows whose labels the schema knows)
    with their one-hot labels; None without a dataset."""
    from fashiongen.imaging import ImageError, load_image
    from fashiongen.styles import read_styles

    if data_dir is None:
        return None
    styles = read_styles(data_dir / "styles.csv")
    known = styles[styles["gender"].isin(schema.genders) & styles["subCategory"].isin(schema.sub_categories)]
    images, rows = [], []
    for index in np.random.default_rng(0).permutation(len(known)):
        path = data_dir / "images" / f"{known['id'].iloc[index]}.jpg"
        if not path.is_file():
            continue  # the dataset lists a few ids without an image
        try:
            images.append(load_image(path))
        except ImageError:
            continue
        rows.append(index)
        if len(images) == n:
            break
    if not images:
        raise ValueError(f"--data-dir {data_dir} has no readable image of the model's labels")
    return np.stack(images), schema.encode_frame(known.iloc[rows])


def batched(function, images: np.ndarray, conditions: np.ndarray, size: int = 256) -> np.ndarray:
    return np.concatenate([function(images[i:i + size], conditions[i:i + size]) for i in range(0, len(images), size)])


def replace_folder(folder: Path, kind: str, copy: Path, shrunk: bool, argv: list[str]) -> None:
    """Swap the halved copy in for `folder`, its card noting the float16 weights; a folder halved
    before stays untouched."""
    from fashiongen.half_precision import is_half
    from fashiongen.model_folder import CARD_FILE, GENERATOR, LABELER, atomic_folder, write_card
    from fashiongen.training import script_command

    precision = {path.name: "float16" if is_half(path) else "float32" for path in sorted(copy.glob("*.keras"))}
    weights = "float16" if set(precision.values()) == {"float16"} else precision  # per file when mixed

    card = (GENERATOR if kind == "generator" else LABELER).open(copy).card()
    if not shrunk and card.get("weights") == weights:
        print(f"{folder}: halved before, left as it is")
        return
    card["weights"] = weights
    card["weights_command"] = script_command("halve_weights.py", argv)
    write_card(copy / CARD_FILE, card)
    with atomic_folder(folder) as staging:
        shutil.copytree(copy, staging, dirs_exist_ok=True)
    print(f"wrote {folder}")

if __name__ == "__main__":
    sys.exit(main())
