"""The label schema: the 20 sub-categories and 5 genders a model names, and the 25-wide label vector they make."""

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


@dataclass(frozen=True)
class LabelSchema:
    """The classifier's outputs: sub-category one-hot (first part) then gender one-hot.

    Saved as JSON beside every model, so dropdowns and decoders come from the model itself.
    """

    sub_categories: tuple[str, ...]
    genders: tuple[str, ...]

    @classmethod
    def from_styles(cls, styles: pd.DataFrame, n_sub_categories: int = N_SUB_CATEGORIES) -> "LabelSchema":
        """The `n_sub_categories` most frequent sub-categories and every gender, by count
        (ties broken by name, so the schema is the same on every run and machine)."""
        return cls(
            sub_categories=tuple(_by_frequency(styles["subCategory"])[:n_sub_categories]),
            genders=tuple(_by_frequency(styles["gender"])),
        )

    @property
    def size(self) -> int:
        return len(self.sub_categories) + len(self.genders)

    def encode(self, sub_category: str | None, gender: str) -> np.ndarray:
        """One row of Y: a one-hot sub-category (zeros when outside the schema) and a one-hot gender."""
        self.check(sub_category, gender, allow_other_sub_category=True)
        row = np.zeros(self.size, np.float32)
        if sub_category in self.sub_categories:
            row[self.sub_categories.index(sub_category)] = 1.0
        row[len(self.sub_categories) + self.genders.index(gender)] = 1.0
        return row

    def encode_frame(self, styles: pd.DataFrame) -> np.ndarray:
        """Y for a whole styles table: float32 (N, size)."""
        unknown = sorted(set(styles["gender"]) - set(self.genders))
        if unknown:
            raise DatasetError(f"gender {unknown[0]!r} is not one of {', '.join(self.genders)}.")
        labels = np.zeros((len(styles), self.size), np.float32)
        rows = np.arange(len(styles))
        sub_index = pd.Index(self.sub_categories).get_indexer(styles["subCategory"])  # -1: not in schema
        has_sub = sub_index >= 0
        labels[rows[has_sub], sub_index[has_sub]] = 1.0
        gender_index = pd.Index(self.genders).get_indexer(styles["gender"])
        labels[rows, len(self.sub_categories) + gender_index] = 1.0
        return labels

    def split_scores(self, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(..., size) scores -> (sub-category part, gender part)."""
        scores = np.asarray(scores)
        return scores[..., : len(self.sub_categories)], scores[..., len(self.sub_categories):]

    def decode(self, scores: np.ndarray) -> dict[str, list[tuple[str, float]]]:
        """One row of 25 scores -> each head's names ranked by probability, highest first."""
        sub_scores, gender_scores = self.split_scores(np.asarray(scores, np.float64).reshape(-1))
        return {
            "subCategory": _ranked(self.sub_categories, sub_scores),
            "gender": _ranked(self.genders, gender_scores),
        }

    def check(self, sub_category: str | None, gender: str, allow_other_sub_category: bool = False) -> None:
        """Raise `ValueError` listing the valid names when a name is not in the schema."""
        if not allow_other_sub_category and sub_category not in self.sub_categories:
            raise ValueError(f"Unknown sub-category {sub_category!r}; valid: {', '.join(self.sub_categories)}.")
        if gender not in self.genders:
            raise ValueError(f"Unknown gender {gender!r}; valid: {', '.join(self.genders)}.")

    def to_dict(self) -> dict[str, list[str]]:
        return {"sub_categories": list(self.sub_categories), "genders": list(self.genders)}

    @classmethod
    def from_dict(cls, mapping: object) -> "LabelSchema":
        """The schema in parsed JSON: an object whose sub_categories and genders are lists of distinct,
        non-empty names. Anything else raises `DatasetError` saying what is wrong (a string would
        otherwise be taken as a list of one-letter names)."""
        if not isinstance(mapping, Mapping):
            raise DatasetError(f"it holds {json_type(mapping)}, not an object with sub_categories and genders")
        heads = []
        for head in ("sub_categories", "genders"):
            if head not in mapping:
                raise DatasetError(f"it has no {head}")
            names = mapping[head]
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
            heads.append(tuple(names))
        return cls(*heads)

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


def _by_frequency(values: pd.Series) -> list[str]:
    counts = values.value_counts()
    return sorted(counts.index, key=lambda name: (-counts[name], name))


def _ranked(names: Sequence[str], scores: np.ndarray) -> list[tuple[str, float]]:
    order = np.argsort(-scores, kind="stable")
    return [(names[i], float(scores[i])) for i in order]
