#!/usr/bin/env python
"""Label every image in a folder into a CSV: each head's top class and its probability, and whether the
image looks like no product photo at all.

One row per image: `file` (its name; with --recursive its path relative to FOLDER), then for each head
of the model in reading order (masterCategory, subCategory, articleType, baseColour, gender, season,
usage; only those the model has) `<head>` and `<head>_probability` (4 decimals), then `not_a_product`
(true/false; empty when the model has no not-a-product detector). Images of any size and format go
through the same preprocessing as the app's uploads.

Rows are appended and flushed a batch at a time, so a stopped run loses at most one batch: run the same
command again and it skips the files already in --out (a last line cut short by a killed run is dropped
and that image labelled again). Unreadable files get no row; they are listed on stderr at the end
(each message starts with the file's name) and tried again by the next run.

Exit code: 0 when at least one image was labelled or already in --out (even if others were
unreadable), 1 when every image was unreadable, 2 for a usage error (missing FOLDER, no images,
unwritable --out, an --out written for another model), 130 when interrupted (rerun to resume).
Example:
  python scripts/label_images.py ../shared/data/fashion-small/images --out labels.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fashiongen.errors import ClassifierError
from fashiongen.files import check_writable
from fashiongen.model_folder import LABELER
from fashiongen.runtime import import_tensorflow_quietly
from fashiongen.schema import DISPLAY_ORDER, LabelSchema

if TYPE_CHECKING:  # the import itself starts TensorFlow, which main does only after the argument checks
    from fashiongen.labeler.labeler import Labeler

DEFAULT_BATCH_SIZE = 64
PROBABILITY_DECIMALS = 4
# a header longer than this is no header of ours (read bounded, whatever the file holds)
MAX_HEADER_BYTES = 64 * 1024


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, metavar="FOLDER",
                        help="folder of images (JPEG, PNG, WebP, ... by suffix; other files are ignored)")
    parser.add_argument("--out", type=Path, required=True,
                        help="CSV to write, in an existing folder; when it exists, its rows are kept and their "
                             "files skipped (resume)")
    parser.add_argument("--model", type=Path, default=None,
                        help="model folder (classifier.keras + labels.json); default: the shipped model "
                             "in fashiongen/pretrained/classifier")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
                        help=f"images decoded, labelled and written at a time; memory grows with it "
                             f"(default: {DEFAULT_BATCH_SIZE})")
    parser.add_argument("--recursive", action="store_true",
                        help="also label images in sub-folders; `file` is then the path relative to FOLDER")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def head_columns(schema: LabelSchema) -> list[str]:
    """The heads of `schema` in the order people read them (DISPLAY_ORDER)."""
    return [column for column in DISPLAY_ORDER if column in schema.heads]


def csv_header(schema: LabelSchema) -> list[str]:
    """The CSV's columns for a model of `schema`."""
    pairs = ((column, f"{column}_probability") for column in head_columns(schema))
    return ["file", *(name for pair in pairs for name in pair), "not_a_product"]


def image_names(folder: Path, suffixes: set[str], recursive: bool) -> list[str]:
    """The regular files of `folder` with an image suffix (any case), as POSIX paths relative to it,
    sorted. Symlinked files count; symlinked folders are not entered (no loops)."""
    names = []
    for root, folders, files in os.walk(folder):
        if not recursive:
            folders.clear()
        folders.sort()
        for file in files:
            path = Path(root, file)
            if path.suffix.lower() in suffixes and path.is_file():  # is_file: no pipes or devices
                names.append(path.relative_to(folder).as_posix())
    return sorted(names)


def name_problem(name: str) -> str | None:
    """Why `name` cannot be a `file` cell (one CSV row per line, UTF-8), or None."""
    if "\n" in name or "\r" in name:
        return f"{name!r} has a line break in its name; rename it to label it"
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return f"{name.encode('utf-8', 'surrogateescape')!r} has a name that is not UTF-8; rename it to label it"
    return None


def done_files(out: Path, header: list[str]) -> tuple[set[str], bool]:
    """The `file` cells of the rows an earlier run wrote to `out` (nothing when it is missing or empty),
    and whether a last line cut short by a killed run was dropped (the file is truncated to its last
    complete line). Raises ValueError (one line) when `out` has another header or a malformed row; it
    is then left untouched."""
    if not out.exists() or out.stat().st_size == 0:
        return set(), False
    expected = (",".join(header) + "\n").encode("utf-8")  # no column name needs quoting
    with open(out, "rb") as handle:
        first = handle.readline(MAX_HEADER_BYTES)
    if not first.endswith(b"\n") and expected.startswith(first):  # killed while writing the header
        _truncate(out, 0)
        return set(), True
    if first != expected:
        raise ValueError(f"{out} has other columns than this model's ({_shorten(first)}); "
                         f"give another --out or delete it")
    repaired = _truncate(out, _complete_length(out))
    done = set()
    with open(out, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        next(reader)
        for row in reader:
            if len(row) != len(header):
                raise ValueError(f"{out} line {reader.line_num} has {len(row)} fields, not {len(header)}; "
                                 f"fix or delete that line, or give another --out")
            done.add(row[0])
    return done, repaired


def _complete_length(path: Path, block: int = 64 * 1024) -> int:
    """The byte length of `path` up to and including its last newline (0 without one), read from the end."""
    with open(path, "rb") as handle:
        end = handle.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - block)
            handle.seek(start)
            newline = handle.read(end - start).rfind(b"\n")
            if newline >= 0:
                return start + newline + 1
            end = start
    return 0


def _truncate(path: Path, length: int) -> bool:
    """Cut `path` to `length` bytes; whether anything was cut."""
    if path.stat().st_size == length:
        return False
    with open(path, "rb+") as handle:
        handle.truncate(length)
    return True


def _shorten(line: bytes, limit: int = 80) -> str:
    text = line.decode("utf-8", "replace").strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Tally:
    """What a run did: rows written, of them flagged as not a product, and the unreadable files' messages."""

    labelled: int = 0
    flagged: int = 0
    unreadable: dict[str, str] = field(default_factory=dict)


def label_chunk(labeler: Labeler, folder: Path, names: Sequence[str],
                columns: Sequence[str]) -> tuple[list[list[str]], dict[str, str]]:
    """Decode the files `names` (relative to `folder`) and label them with one `labeler.analyse` call:
    their CSV rows (for the heads `columns`) and the unreadable ones' messages by name."""
    import numpy as np

    from fashiongen.imaging import ImageError, load_image

    images, kept, unreadable = [], [], {}
    for name in names:
        problem = name_problem(name)
        if problem:
            unreadable[name] = problem
            continue
        try:
            images.append(load_image(folder / name, name=name))
            kept.append(name)
        except ImageError as error:
            unreadable[name] = str(error)
    if not kept:
        return [], unreadable
    analysis = labeler.analyse(np.stack(images), batch_size=len(images))
    schema = labeler.schema
    rows = [[name] for name in kept]
    for column in columns:
        part = analysis.scores[:, schema.slices[column]]
        best = part.argmax(axis=1)  # the first of equal ones, as Prediction.top
        for row, index, probability in zip(rows, best, part[np.arange(len(part)), best]):
            row += [schema.heads[column][index], f"{probability:.{PROBABILITY_DECIMALS}f}"]
    for row, flag in zip(rows, analysis.not_a_product):
        # empty: the model has no detector, so "false" would claim a check that was not made
        row.append("" if analysis.outlier_scores is None else "true" if flag else "false")
    return rows, unreadable


def _chunks(names: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    for start in range(0, len(names), size):
        yield names[start : start + size]


def label_into_csv(labeler: Labeler, folder: Path, names: Sequence[str], out: Path,
                   batch_size: int = DEFAULT_BATCH_SIZE, progress: bool = False) -> Tally:
    """Label the files `names` of `folder` a batch at a time, appending each batch's rows to `out` (its
    header first when it is new or empty) and flushing them before the next batch is decoded."""
    from tqdm.auto import tqdm

    header = csv_header(labeler.schema)
    columns = head_columns(labeler.schema)
    tally = Tally()
    with open(out, "a", newline="", encoding="utf-8") as handle, \
            tqdm(total=len(names), desc="labelling", unit="img", disable=not progress) as bar:
        writer = csv.writer(handle, lineterminator="\n")
        if handle.tell() == 0:
            writer.writerow(header)
            handle.flush()
        for chunk in _chunks(names, batch_size):
            rows, unreadable = label_chunk(labeler, folder, chunk, columns)
            writer.writerows(rows)
            handle.flush()  # a killed run keeps every batch written so far
            tally.labelled += len(rows)
            tally.flagged += sum(row[-1] == "true" for row in rows)
            tally.unreadable.update(unreadable)
            bar.update(len(chunk))
    return tally


def _error(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.folder.is_dir():
        return _error(f"{args.folder} is not a folder" if args.folder.exists() else f"{args.folder} does not exist")
    if args.batch_size < 1:
        return _error("--batch-size must be at least 1")
    if args.out.suffix.lower() != ".csv":
        return _error(f"--out {args.out} must end in .csv")
    if not args.out.parent.is_dir():
        return _error(f"--out {args.out}: the folder {args.out.parent} does not exist")
    model = args.model or LABELER.shipped
    try:  # all before TensorFlow's seconds of start-up: a bad --out or model folder fails at once
        check_writable(args.out)
        header = csv_header(LABELER.open(model).schema())
        done, repaired = done_files(args.out, header)
    except (ValueError, ClassifierError) as error:
        return _error(str(error))
    except UnicodeDecodeError:
        return _error(f"{args.out} is not a UTF-8 CSV; give another --out or delete it")
    except csv.Error as error:  # e.g. a field over csv's 128 KB limit: not a file this script wrote
        return _error(f"{args.out} is not a CSV this script wrote ({error}); give another --out or delete it")
    if repaired:
        print(f"dropped the incomplete last line of {args.out} (a stopped run); that image is labelled again",
              file=sys.stderr)
    import_tensorflow_quietly()
    # imported here, not at the top: argument mistakes fail before TensorFlow's start-up
    from fashiongen.labeler.evaluation import IMAGE_SUFFIXES
    from fashiongen.labeler.labeler import Labeler

    names = image_names(args.folder, IMAGE_SUFFIXES, args.recursive)
    if not names:
        where = "" if args.recursive else " (--recursive looks into sub-folders)"
        return _error(f"{args.folder} has no images ({', '.join(sorted(IMAGE_SUFFIXES))}){where}")
    todo = [name for name in names if name not in done]
    skipped = len(names) - len(todo)
    try:
        labeler = Labeler.load(model)
        tally = label_into_csv(labeler, args.folder, todo, args.out, args.batch_size, progress=not args.quiet)
    except ClassifierError as error:
        return _error(str(error))
    except KeyboardInterrupt:
        print(f"\ninterrupted: the rows written so far are in {args.out}; run the same command again to resume",
              file=sys.stderr)
        return 130
    if tally.unreadable:
        print(f"{len(tally.unreadable):,} unreadable, no row in {args.out}:", file=sys.stderr)
        for message in tally.unreadable.values():
            print(f"  {message}", file=sys.stderr)
    print(f"{tally.labelled:,} labelled, {skipped:,} skipped as already in {args.out}, "
          f"{len(tally.unreadable):,} unreadable; flagged as not a product: {tally.flagged:,}")
    return 0 if tally.labelled or skipped else 1


if __name__ == "__main__":
    sys.exit(main())
