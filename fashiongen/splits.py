"""Train/validation splits: the paper's random 19:1 split and a grouped one that keeps byte-identical images together."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from fashiongen.dataset import FashionData

VALIDATION_FRACTION = 1 / 20  # the paper's 19:1 train:validation split


DEFAULT_SPLIT_SEED = 42


@dataclass(frozen=True)
class Split:
    """Row indices (sorted) of the training and validation parts."""

    train: np.ndarray
    validation: np.ndarray
    kind: str
    seed: int

    def report(self, digests: np.ndarray | None = None) -> dict[str, object]:
        """Counts, and with file digests how many duplicate groups straddle the two parts."""
        summary: dict[str, object] = {
            "kind": self.kind, "seed": self.seed,
            "n_train": int(len(self.train)), "n_validation": int(len(self.validation)),
        }
        if digests is not None:
            groups = duplicate_groups(digests)
            in_train = set(np.unique(groups[self.train]))
            in_val = set(np.unique(groups[self.validation]))
            sizes = np.bincount(groups)
            summary["duplicate_groups"] = int((sizes > 1).sum())
            summary["rows_in_duplicate_groups"] = int(sizes[sizes > 1].sum())
            summary["groups_straddling"] = len(in_train & in_val)
        return summary


def validation_size(n_rows: int, fraction: float = VALIDATION_FRACTION) -> int:
    """Rows held out: ceil(n * fraction), as scikit-learn's train_test_split does (2,222 of 44,440)."""
    return math.ceil(n_rows * fraction)


def random_split(ids: Sequence[int], seed: int = DEFAULT_SPLIT_SEED, fraction: float = VALIDATION_FRACTION) -> Split:
    """The paper's 19:1 split, made reproducible: rows ranked by a keyed hash of their id.

    A hash, not a random generator's stream, so the split is the same on every run, machine and
    NumPy version, and a row's side does not depend on the order of the rows.
    """
    ranks = np.argsort(_keyed_hashes([str(i) for i in ids], seed), kind="stable")
    n_val = validation_size(len(ranks), fraction)
    return Split(np.sort(ranks[n_val:]), np.sort(ranks[:n_val]), "random", seed)


def grouped_split(
    digests: np.ndarray, seed: int = DEFAULT_SPLIT_SEED, fraction: float = VALIDATION_FRACTION
) -> Split:
    """A 19:1 split where byte-identical images (same digest) never straddle train and validation.

    Whole groups, ranked by a keyed hash of their digest, go to validation until it holds
    ceil(n * fraction) rows or just over.
    """
    digests = np.asarray(digests)
    groups = duplicate_groups(digests)
    sizes = np.bincount(groups)
    group_digest = np.empty(len(sizes), dtype=digests.dtype)
    group_digest[groups] = digests
    n_val_target = validation_size(len(groups), fraction)
    chosen = np.zeros(len(sizes), bool)
    taken = 0
    for group in np.argsort(_keyed_hashes(list(group_digest), seed), kind="stable"):
        if taken >= n_val_target:
            break
        chosen[group] = True
        taken += sizes[group]
    is_val = chosen[groups]
    return Split(np.flatnonzero(~is_val), np.flatnonzero(is_val), "grouped", seed)


def _keyed_hashes(keys: Sequence[str], seed: int) -> np.ndarray:
    salt = str(seed).encode()[:16]
    return np.array(
        [int.from_bytes(hashlib.blake2b(str(k).encode(), digest_size=8, salt=salt).digest(), "big") for k in keys],
        dtype=np.uint64,
    )


def duplicate_groups(digests: np.ndarray) -> np.ndarray:
    """Group number per row; rows with byte-identical files share one (numbered by first appearance)."""
    _, first_index, inverse = np.unique(np.asarray(digests), return_index=True, return_inverse=True)
    # renumber by first appearance so group numbers do not depend on digest values
    rank = np.empty(len(first_index), np.int64)
    rank[np.argsort(first_index, kind="stable")] = np.arange(len(first_index))
    return rank[inverse.reshape(-1)]


def split_ids(kind: str, ids: Sequence[int], digests: Callable[[], np.ndarray],
              seed: int = DEFAULT_SPLIT_SEED) -> Split:
    """`kind` is "random" (the paper's, by `ids`) or "grouped" (duplicates kept on one side, by the
    file digests `digests()` returns: called only then, as reading every file is slow)."""
    if kind == "random":
        return random_split(ids, seed)
    if kind == "grouped":
        return grouped_split(digests(), seed)
    raise ValueError(f"unknown split {kind!r}; valid: random, grouped")


def make_split(kind: str, data: FashionData, seed: int = DEFAULT_SPLIT_SEED) -> Split:
    """The split `kind` ("random" or "grouped", see `split_ids`) of a loaded dataset."""
    return split_ids(kind, data.styles["id"].to_numpy(), lambda: data.digests, seed)


def validation_digest(ids: np.ndarray) -> str:
    """A model card's fingerprint of its validation photos: sha256 of their sorted ids."""
    return hashlib.sha256(",".join(map(str, sorted(np.asarray(ids).tolist()))).encode()).hexdigest()


def split_of_card(card_split: object, data: FashionData, model: str) -> Split:
    """The split a model card says its model was trained with, made again on `data`; `ValueError`
    (one line) when the card's values are not a split's, or `data` does not give the same
    validation photos (another dataset or version: a threshold fitted there would see training photos)."""
    if not isinstance(card_split, dict):
        card_split = {}
    kind, seed = card_split.get("kind", "random"), card_split.get("seed", DEFAULT_SPLIT_SEED)
    if kind not in ("random", "grouped") or isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"the model card of {model} names split {kind!r} with seed {seed!r}, not a split")
    split = make_split(kind, data, seed)
    expected = card_split.get("validation_ids_sha256")
    if expected and validation_digest(data.styles["id"].to_numpy()[split.validation]) != expected:
        raise ValueError(f"this dataset does not give the validation photos {model} was trained with "
                         "(another dataset or version)")
    used = card_split.get("n_train_used")
    if isinstance(used, int) and not isinstance(used, bool) and 0 < used < len(split.train):
        split = Split(split.train[:used], split.validation, split.kind, split.seed)
    return split
