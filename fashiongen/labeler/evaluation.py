"""Evaluate a labeler on any folder of labelled images, preprocessed exactly as uploads are."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fashiongen.dataset import load_images
from fashiongen.errors import DatasetError
from fashiongen.imaging import ImageError, load_image
from fashiongen.labeler.labeler import Labeler
from fashiongen.labeler.report import classification_report
from fashiongen.schema import LabelSchema
from fashiongen.splits import split_ids
from fashiongen.styles import read_styles

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"}
LABEL_COLUMNS = ("id", "gender", "subCategory")  # what validation_ids reads (styles.csv)


@dataclass
class Skipped:
    """Rows of the labels file that were not evaluated, by reason (ids kept for the report)."""

    no_image: list[int] = field(default_factory=list)
    unknown_gender: list[int] = field(default_factory=list)
    unreadable: dict[int, str] = field(default_factory=dict)  # id -> the loader's message

    def counts(self) -> dict[str, int]:
        return {"no_image": len(self.no_image), "unknown_gender": len(self.unknown_gender),
                "unreadable": len(self.unreadable)}

    def lines(self) -> list[str]:
        """Human-readable lines for what was skipped (nothing when nothing was)."""
        lines = []
        if self.no_image:
            lines.append(f"skipped {len(self.no_image):,} rows whose id has no image in the folder")
        if self.unknown_gender:
            lines.append(f"skipped {len(self.unknown_gender):,} rows whose gender the model does not know")
        if self.unreadable:
            first_id, message = next(iter(self.unreadable.items()))
            lines.append(f"skipped {len(self.unreadable):,} unreadable images (e.g. id {first_id}: {message})")
        return lines


def index_images(images_dir: str | os.PathLike) -> dict[int, Path]:
    """id -> file for files named `<id>.<image suffix>` (any case) in `images_dir`."""
    found = {}
    for path in sorted(Path(images_dir).iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.stem.isdigit():
            found.setdefault(int(path.stem), path)
    return found


def validation_ids(images_dir: str | os.PathLike, labels_csv: str | os.PathLike, kind: str, seed: int,
                   cache_dir: str | os.PathLike | None = None) -> set[int]:
    """Ids of the validation part of the training split `kind` ("random" or "grouped") of a dataset
    given as its image folder and styles.csv: the same rows `scripts/train_classifier.py` held out.
    `cache_dir` is load_dataset's decoded-image cache (None: its default), which the training filled."""
    table = read_styles(labels_csv, required=LABEL_COLUMNS)
    on_disk = index_images(images_dir)
    ids = np.array(sorted(i for i in table["id"] if i in on_disk), dtype=np.int64)
    # load_dataset's decode of the same paths (so its cache answers): training drops the files that
    # cannot be decoded before it splits, so must this, or every later held-out id shifts
    loaded = load_images([on_disk[i] for i in ids], cache_dir=cache_dir)
    readable = np.ones(len(ids), dtype=bool)
    readable[list(loaded.unreadable)] = False
    ids, digests = ids[readable], loaded.digests
    del loaded  # the images themselves are not needed (the whole dataset's are ~600 MB)
    split = split_ids(kind, ids, lambda: digests, seed)
    return set(ids[split.validation].tolist())


def evaluate_folder(
    labeler: Labeler,
    images_dir: str | os.PathLike,
    labels_csv: str | os.PathLike,
    only_ids: set[int] | None = None,
    progress: bool = False,
) -> tuple[dict, Skipped]:
    """Label every image of `images_dir` that has a row in `labels_csv` and score the result.

    The CSV needs an id column and scores every head of the model whose column it has (styles.csv
    has them all; other columns are ignored). Rows without an image, with a gender outside the
    model's schema or with an unreadable image are skipped and counted; a value outside a head's
    classes (e.g. a rare colour) counts for the other heads only. `only_ids` restricts the
    evaluation to those ids (e.g. `validation_ids`). Raises `DatasetError` for an unusable CSV or
    one without any of the model's columns, `ValueError` when nothing is left.
    """
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise ValueError(f"{images_dir} is not a folder of images.")
    table = read_styles(labels_csv, required=("id",))
    heads = [column for column in labeler.schema.heads if column in table.columns]
    if not heads:
        raise DatasetError(f"{labels_csv} has none of the model's columns ({', '.join(labeler.schema.heads)}); "
                           f"its header: {', '.join(table.columns)}")
    if only_ids is not None:
        table = table[table["id"].isin(only_ids)]
    rows, images, skipped = _load_rows(table, index_images(images_dir), labeler.schema, progress)
    if not rows:
        raise ValueError(f"no image of {images_dir} could be evaluated: " + "; ".join(skipped.lines()))
    kept = pd.DataFrame(rows, columns=table.columns)
    truth = labeler.schema.encode_frame(kept)
    scores = labeler.scores(np.stack(images))
    report = classification_report(truth, scores, labeler.schema, heads)
    report["skipped"] = skipped.counts()
    return report, skipped


def _load_rows(table: pd.DataFrame, on_disk: dict[int, Path], schema: LabelSchema,
               progress: bool) -> tuple[list, list[np.ndarray], Skipped]:
    """The rows of `table` that can be evaluated and their images; the others, by reason."""
    skipped = Skipped()
    rows, images = [], []
    iterator = table.itertuples(index=False)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, total=len(table), desc="loading images", unit="img")
    for row in iterator:
        row_id = int(row.id)
        if row_id not in on_disk:
            skipped.no_image.append(row_id)
        elif "gender" in table.columns and row.gender not in schema.genders:
            skipped.unknown_gender.append(row_id)
        else:
            try:
                images.append(load_image(on_disk[row_id]))
                rows.append(row)
            except ImageError as error:
                skipped.unreadable[row_id] = str(error)
    return rows, images, skipped
