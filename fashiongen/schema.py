"""The label schema: the heads a model names (each a list of classes) and the label vector they make.

The paper's two heads come first: the 20 most frequent sub-categories and the 5 genders, 25 columns
that the generators are conditioned on. A catalog labeler adds heads for more columns of styles.csv
(masterCategory, articleType, baseColour, season, usage), each over the classes with at least
`MIN_CLASS_PHOTOS` training photos; a photo whose class is outside a head has zeros there.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from fashiongen.errors import DatasetError
from fashiongen.files import atomic_write_text, json_type

N_SUB_CATEGORIES = 20
PAPER_HEADS = ("subCategory", "gender")
# the heads a catalog labeler adds after the paper's two, in the label vector's order
EXTRA_HEADS = ("masterCategory", "articleType", "baseColour", "season", "usage")
# the order people read them in (the Label page, label_images.py's columns)
DISPLAY_ORDER = ("masterCategory", "subCategory", "articleType", "baseColour", "gender", "season", "usage")
MIN_CLASS_PHOTOS = 50  # an extra head's class needs this many training photos
MISSING_VALUES = ("", "NA")  # styles.csv's "no value": never a class
COLOUR = "baseColour"  # the head a colour-controlled generator is conditioned on
ANY_COLOUR = "any"  # what users pick (app, generate.py) for no colour: one seen with the pair, drawn by the seed


@dataclass(frozen=True)
class LabelSchema:
    """A model's heads: sub-category one-hot (first part), gender one-hot, then `extra_heads`'
    one-hots, each a `(styles.csv column, class names)` pair.

    Saved as JSON beside every model, so dropdowns and decoders come from the model itself.
    """

    sub_categories: tuple[str, ...]
    genders: tuple[str, ...]
    extra_heads: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_styles(cls, styles: pd.DataFrame, n_sub_categories: int = N_SUB_CATEGORIES,
                    extra_heads: Sequence[str] = (), training_rows: pd.DataFrame | None = None,
                    min_class_photos: int = MIN_CLASS_PHOTOS) -> "LabelSchema":
        """The `n_sub_categories` most frequent sub-categories and every gender, by count
        (ties broken by name, so the schema is the same on every run and machine), and for each
        column of `extra_heads` its classes with at least `min_class_photos` rows of
        `training_rows` (default: `styles`), most frequent first; a head left with fewer than two
        classes is dropped."""
        training_rows = styles if training_rows is None else training_rows
        extras = []
        for column in extra_heads:
            if column not in EXTRA_HEADS:
                raise ValueError(f"unknown head {column!r}; valid: {', '.join(EXTRA_HEADS)}")
            values = training_rows[column][~training_rows[column].isin(MISSING_VALUES)]
            counts = values.value_counts()
            classes = tuple(name for name in _by_frequency(values) if counts[name] >= min_class_photos)
            if len(classes) >= 2:  # a head of one class says nothing
                extras.append((column, classes))
        return cls(
            sub_categories=tuple(_by_frequency(styles["subCategory"])[:n_sub_categories]),
            genders=tuple(_by_frequency(styles["gender"])),
            extra_heads=tuple(extras),
        )

    @property
    def heads(self) -> dict[str, tuple[str, ...]]:
        """Every head's classes by styles.csv column, in the label vector's order."""
        return {"subCategory": self.sub_categories, "gender": self.genders, **dict(self.extra_heads)}

    @property
    def slices(self) -> dict[str, slice]:
        """Every head's columns of the label vector."""
        slices, start = {}, 0
        for column, names in self.heads.items():
            slices[column] = slice(start, start + len(names))
            start += len(names)
        return slices

    @property
    def size(self) -> int:
        return sum(len(names) for names in self.heads.values())

    @property
    def paper(self) -> "LabelSchema":
        """The paper's two heads alone: the first `paper.size` columns of this schema's vector."""
        return LabelSchema(self.sub_categories, self.genders)

    def encode(self, sub_category: str | None, gender: str) -> np.ndarray:
        """One row of Y: a one-hot sub-category (zeros when outside the schema) and a one-hot gender."""
        self.check(sub_category, gender, allow_other_sub_category=True)
        row = np.zeros(self.size, np.float32)
        if sub_category in self.sub_categories:
            row[self.sub_categories.index(sub_category)] = 1.0
        row[len(self.sub_categories) + self.genders.index(gender)] = 1.0
        return row

    def encode_frame(self, styles: pd.DataFrame) -> np.ndarray:
        """Y for a whole styles table: float32 (N, size). A gender column must hold genders of the
        schema; a value outside another head's classes (or a missing column) leaves that head's part zero."""
        unknown = sorted(set(styles["gender"]) - set(self.genders)) if "gender" in styles else []
        if unknown:
            raise DatasetError(f"gender {unknown[0]!r} is not one of {', '.join(self.genders)}.")
        labels = np.zeros((len(styles), self.size), np.float32)
        rows = np.arange(len(styles))
        for column, part in self.slices.items():
            if column not in styles:
                continue
            index = pd.Index(self.heads[column]).get_indexer(styles[column])  # -1: not in the head
            known = index >= 0
            labels[rows[known], part.start + index[known]] = 1.0
        return labels

    def split_scores(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(..., size) scores -> (sub-category part, gender part)."""
        scores = np.asarray(scores)
        slices = self.slices
        return scores[..., slices["subCategory"]], scores[..., slices["gender"]]

    def decode(self, scores: np.ndarray) -> dict[str, list[tuple[str, float]]]:
        """One row of `size` scores -> each head's names ranked by probability, highest first."""
        row = np.asarray(scores, np.float64).reshape(-1)
        return {column: _ranked(self.heads[column], row[part]) for column, part in self.slices.items()}

    def check(self, sub_category: str | None, gender: str, allow_other_sub_category: bool = False) -> None:
        """Raise `ValueError` listing the valid names when a name is not in the schema."""
        if not allow_other_sub_category and sub_category not in self.sub_categories:
            raise ValueError(f"Unknown sub-category {sub_category!r}; valid: {', '.join(self.sub_categories)}.")
        if gender not in self.genders:
            raise ValueError(f"Unknown gender {gender!r}; valid: {', '.join(self.genders)}.")

    def to_dict(self) -> dict:
        """The paper's two heads as `sub_categories` and `genders` lists (the format of every model
        folder), and extra heads, when there are any, as `extra_heads`: column -> class names."""
        mapping: dict = {"sub_categories": list(self.sub_categories), "genders": list(self.genders)}
        if self.extra_heads:
            mapping["extra_heads"] = {column: list(names) for column, names in self.extra_heads}
        return mapping

    @classmethod
    def from_dict(cls, mapping: object) -> "LabelSchema":
        """The schema in parsed JSON: an object whose sub_categories and genders are lists of distinct,
        non-empty names, and optionally extra_heads, an object of such lists keyed by a column of
        `EXTRA_HEADS`. Anything else raises `DatasetError` saying what is wrong (a string would
        otherwise be taken as a list of one-letter names)."""
        if not isinstance(mapping, Mapping):
            raise DatasetError(f"it holds {json_type(mapping)}, not an object with sub_categories and genders")
        heads = []
        for head in ("sub_categories", "genders"):
            if head not in mapping:
                raise DatasetError(f"it has no {head}")
            heads.append(_names(head, mapping[head]))
        extras = mapping.get("extra_heads", {})
        if not isinstance(extras, Mapping):
            raise DatasetError(f"extra_heads is {json_type(extras)}, not an object of lists of names")
        for column in extras:
            if column not in EXTRA_HEADS:
                raise DatasetError(f"extra_heads names {str(column)[:40]!r}, not one of {', '.join(EXTRA_HEADS)}")
        return cls(*heads, tuple((column, _names(column, names)) for column, names in extras.items()))

    def save(self, path: str | os.PathLike) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LabelSchema":
        try:
            mapping = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError) as error:  # ValueError: bad JSON or UTF-8
            raise DatasetError(f"cannot read the label schema {path}: {error}") from None
        try:
            return cls.from_dict(mapping)
        except DatasetError as error:
            raise DatasetError(f"{path} is not a label schema ({error})") from None


def _names(head: str, names: object) -> tuple[str, ...]:
    if not isinstance(names, (list, tuple)):
        raise DatasetError(f"{head} is {json_type(names)}, not a list of names")
    if not names:
        raise DatasetError(f"{head} is empty")
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise DatasetError(f"{head} holds {json.dumps(name)[:40]}, not a name")
    if len(set(names)) < len(names):
        seen: set[str] = set()
        repeated = next(name for name in names if name in seen or seen.add(name))
        raise DatasetError(f"{head} names {repeated!r} more than once")
    return tuple(names)


def _by_frequency(values: pd.Series) -> list[str]:
    counts = values.value_counts()
    return sorted(counts.index, key=lambda name: (-counts[name], name))


def _ranked(names: Sequence[str], scores: np.ndarray) -> list[tuple[str, float]]:
    order = np.argsort(-scores, kind="stable")
    return [(names[i], float(scores[i])) for i in order]
