"""Read the dataset: styles.csv, the label schema, decoded images (cached) and the splits.

Layout of a dataset folder (what `scripts/download_data.py` makes, and `../shared/data/fashion-small`):
`styles.csv` plus `images/<id>.jpg`. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import numpy as np
import pandas as pd

from fashiongen.imaging import IMAGE_SHAPE, MAX_FILE_BYTES, PREPROCESSING_VERSION, ImageError, load_image

STYLES_COLUMNS = (
    "id", "gender", "masterCategory", "subCategory", "articleType",
    "baseColour", "season", "year", "usage", "productDisplayName",
)
N_SUB_CATEGORIES = 20
VALIDATION_FRACTION = 1 / 20  # the paper's 19:1 train:validation split
DEFAULT_SPLIT_SEED = 42
DEFAULT_DATA_DIR = Path("data") / "fashion-small"


class DatasetError(ValueError):
    """A dataset file or folder that cannot be used; the message says what is wrong and where."""


# --------------------------------------------------------------------------- styles.csv


def read_styles(path: str | os.PathLike, required: Sequence[str] = STYLES_COLUMNS) -> pd.DataFrame:
    """Read styles.csv exactly: every row, whole product names, "NA" kept as the text "NA".

    22 lines of the real file have unquoted commas in productDisplayName, the last column;
    `pandas.read_csv` rejects them. Here a line with extra fields keeps its first
    columns and joins the rest back into the last column (the same as splitting on the first
    9 commas). Quoted fields are honoured too. Every value stays a string except `id` (int).
    Raises `DatasetError` naming the line for a short row, a duplicate or non-integer id,
    or a header without the `required` columns.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"{path} does not exist.") from None
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path} is not a UTF-8 text file ({error}).") from None
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if not header:
        raise DatasetError(f"{path} is empty: expected a header line with {', '.join(required)}.")
    header = [name.strip() for name in header]
    missing = [name for name in required if name not in header]
    if missing:
        raise DatasetError(f"{path} has no column {', '.join(missing)} (its header: {', '.join(header)}).")
    width = len(header)
    records = []
    for line_number, row in enumerate(rows, start=2):
        if not row:
            continue  # a blank line, e.g. at the end of the file
        if len(row) > width:
            row = row[: width - 1] + [",".join(row[width - 1:])]
        elif len(row) < width:
            raise DatasetError(f"{path} line {line_number} has {len(row)} fields, expected {width}: {','.join(row)[:80]!r}")
        records.append(row)
    frame = pd.DataFrame(records, columns=header, dtype=str)
    if "id" in frame.columns:
        ids = pd.to_numeric(frame["id"], errors="coerce")
        bad = frame.index[ids.isna() | (ids != ids.round())]
        if len(bad):
            raise DatasetError(f"{path} line {bad[0] + 2} has id {frame['id'][bad[0]]!r}, not an integer.")
        frame["id"] = ids.astype(np.int64)
        dup = frame["id"][frame["id"].duplicated()]
        if len(dup):
            raise DatasetError(f"{path} lists id {dup.iloc[0]} more than once.")
    return frame


# --------------------------------------------------------------------------- label schema


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


# how messages name the type of a parsed JSON value
JSON_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number",
              bool: "true or false", type(None): "null"}


def json_type(value: object) -> str:
    """What a parsed JSON value is, in JSON's words ("a list", "a string", ...), for messages."""
    return JSON_NAMES.get(type(value), type(value).__name__)


def _by_frequency(values: pd.Series) -> list[str]:
    counts = values.value_counts()
    return sorted(counts.index, key=lambda name: (-counts[name], name))


def _ranked(names: Sequence[str], scores: np.ndarray) -> list[tuple[str, float]]:
    order = np.argsort(-scores, kind="stable")
    return [(names[i], float(scores[i])) for i in order]


# --------------------------------------------------------------------------- images and cache


@dataclass
class FashionData:
    """Rows of styles.csv that have a decodable image, in id order, with their decoded images."""

    styles: pd.DataFrame
    images: np.ndarray  # uint8 (N, 80, 60, 3), row i is styles.iloc[i]
    digests: np.ndarray  # (N,) hex digest of each image file, equal for byte-identical files
    missing_ids: list[int] = field(default_factory=list)  # styles.csv rows without an image file
    # styles.csv rows whose image file cannot be decoded (corrupt, truncated, too large): id -> why
    unreadable: dict[int, str] = field(default_factory=dict)

    def labels(self, schema: LabelSchema) -> np.ndarray:
        return schema.encode_frame(self.styles)


def default_cache_dir() -> Path:
    """`$FASHIONGEN_CACHE_DIR`, else `$XDG_CACHE_HOME/fashiongen`, else `~/.cache/fashiongen`."""
    if os.environ.get("FASHIONGEN_CACHE_DIR"):
        return Path(os.environ["FASHIONGEN_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fashiongen"


def load_dataset(
    data_dir: str | os.PathLike = DEFAULT_DATA_DIR,
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> FashionData:
    """styles.csv + images of a dataset folder; decoded images come from the cache when fresh.

    `cache_dir=None` uses `default_cache_dir()`. Ids of styles.csv without an image file are
    left out and reported in `missing_ids`, those whose file cannot be decoded in `unreadable`
    (with the reason); image files without a styles.csv row are ignored.
    """
    data_dir = Path(data_dir)
    styles_path = data_dir / "styles.csv"
    images_dir = data_dir / "images"
    if not styles_path.is_file() or not images_dir.is_dir():
        raise DatasetError(
            f"{data_dir} is not a dataset folder (needs styles.csv and images/). "
            "Get one with: python scripts/download_data.py"
        )
    styles = read_styles(styles_path)
    on_disk = _image_files(images_dir)
    has_image = styles["id"].isin(on_disk.keys())
    missing_ids = sorted(styles.loc[~has_image, "id"].tolist())
    styles = styles[has_image].sort_values("id", kind="stable").reset_index(drop=True)
    paths = [on_disk[i] for i in styles["id"]]
    loaded = load_images(paths, cache_dir=cache_dir, workers=workers, progress=progress)
    bad_rows = sorted(loaded.unreadable)
    unreadable = {int(styles["id"].iat[row]): loaded.unreadable[row] for row in bad_rows}
    styles = styles.drop(index=bad_rows).reset_index(drop=True)
    return FashionData(styles=styles, images=loaded.images, digests=loaded.digests, missing_ids=missing_ids,
                       unreadable=unreadable)


def _image_files(images_dir: Path) -> dict[int, Path]:
    files = {}
    with os.scandir(images_dir) as entries:
        for entry in entries:
            stem, dot, suffix = entry.name.rpartition(".")
            if dot and suffix.lower() == "jpg" and stem.isdigit():
                files[int(stem)] = Path(entry.path)
    return files


class LoadedImages(NamedTuple):
    """Decoded files in the order of their paths, without the files that could not be decoded."""

    images: np.ndarray  # uint8 (N - len(unreadable), 80, 60, 3)
    digests: np.ndarray  # (N - len(unreadable),) file digests
    unreadable: dict[int, str]  # index in the paths -> why that file was skipped


def load_images(
    paths: Sequence[Path],
    cache_dir: str | os.PathLike | None = None,
    workers: int | None = None,
    progress: bool = False,
) -> LoadedImages:
    """Decode `paths` into uint8 (N, 80, 60, 3) plus a digest per file, through the cache; files
    that cannot be decoded (`ImageError`) are left out and listed with the reason.

    The cache key covers every file's name, size and modification time and the preprocessing
    version, so changing, adding or removing an image (or upgrading the loader) rebuilds it.
    A corrupt file is cached as a skip, never as an image: under the same key its bytes are the
    same and so is the verdict, and repairing it changes the key.
    """
    cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = _cache_key(paths)
    # one cache file per image folder: a new version of the folder replaces the old one
    folder = str(Path(paths[0]).parent.resolve()) if paths else ""
    folder_tag = hashlib.blake2b(folder.encode(), digest_size=6).hexdigest()
    images_file = cache_dir / f"images-{folder_tag}-{key}.npy"
    digests_file = images_file.with_suffix(".digests.npy")
    unreadable_file = images_file.with_suffix(".unreadable.json")
    if images_file.is_file() and digests_file.is_file():
        try:
            images = np.load(images_file)
            digests = np.load(digests_file)
            # absent: a cache written before skips were recorded, which could hold none
            unreadable = ({int(i): str(why) for i, why in json.loads(unreadable_file.read_text()).items()}
                          if unreadable_file.is_file() else {})
            n_good = len(paths) - len(unreadable)
            if (images.shape == (n_good,) + IMAGE_SHAPE and digests.shape == (n_good,)
                    and all(0 <= i < len(paths) for i in unreadable)):
                return LoadedImages(images, digests, unreadable)
        except (OSError, ValueError, AttributeError, TypeError):
            pass  # a torn or foreign file: decode again and overwrite it
    loaded = decode_images(paths, workers=workers, progress=progress)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for stale in cache_dir.glob(f"images-{folder_tag}-*"):
            stale.unlink(missing_ok=True)  # older versions of the same folder
        _atomic_save_npy(digests_file, loaded.digests)
        atomic_write_text(unreadable_file, json.dumps(loaded.unreadable) + "\n")
        _atomic_save_npy(images_file, loaded.images)  # last: its presence means all three are complete
    except OSError as error:
        warnings.warn(f"could not write the image cache in {cache_dir}: {error}", stacklevel=2)
    return loaded


def decode_images(
    paths: Sequence[Path], workers: int | None = None, progress: bool = False, chunk_size: int = 512
) -> LoadedImages:
    """Decode files in parallel threads (libjpeg releases the GIL) with `load_image`; a file it
    rejects, or that cannot be read, is left out and listed with the reason."""
    images = np.empty((len(paths),) + IMAGE_SHAPE, np.uint8)
    digests = np.empty(len(paths), dtype="<U32")
    unreadable: dict[int, str] = {}

    def decode_chunk(start: int) -> int:
        for i in range(start, min(start + chunk_size, len(paths))):
            path = Path(paths[i])
            try:
                if path.stat().st_size > MAX_FILE_BYTES:
                    load_image(path)  # raises "too large" without reading the file into memory
                data = path.read_bytes()
                images[i] = load_image(data, name=str(path))
                digests[i] = file_digest(data)
            except ImageError as error:
                unreadable[i] = str(error)
            except OSError as error:
                unreadable[i] = f"{paths[i]} cannot be read ({error.strerror or error})."
        return min(chunk_size, len(paths) - start)

    workers = workers or min(8, os.cpu_count() or 1)
    starts = range(0, len(paths), chunk_size)
    bar = _progress_bar(len(paths), "decoding images") if progress else None
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for done in pool.map(decode_chunk, starts):
            if bar is not None:
                bar.update(done)
    if bar is not None:
        bar.close()
    if unreadable:
        keep = [i for i in range(len(paths)) if i not in unreadable]
        images, digests = _keep_rows(images, keep), digests[keep]
    return LoadedImages(images, digests, dict(sorted(unreadable.items())))


def _keep_rows(array: np.ndarray, rows: Sequence[int]) -> np.ndarray:
    """array[rows] for ascending rows, moved down within `array`: no second copy of a large set."""
    for target, source in enumerate(rows):
        if target != source:
            array[target] = array[source]
    return array[: len(rows)]


def file_digest(data: bytes) -> str:
    """Identity of a file's bytes: byte-identical images share it (the grouped split uses it)."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _progress_bar(total: int, description: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=description, unit="img")


def _cache_key(paths: Sequence[Path]) -> str:
    digest = hashlib.blake2b(f"v{PREPROCESSING_VERSION}".encode(), digest_size=12)
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{Path(path).name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def _atomic_save_npy(path: Path, array: np.ndarray) -> None:
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=".tmp-", suffix=".npy", delete=False) as handle:
        np.save(handle, array)
    os.replace(handle.name, path)


def atomic_write_bytes(path: str | os.PathLike, content: bytes) -> None:
    """Write a file so that readers see the old or the new content, never half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("wb", dir=path.parent, prefix=".tmp-", delete=False) as handle:
        handle.write(content)
    os.chmod(handle.name, 0o644)  # temporary files are created private (0600)
    os.replace(handle.name, path)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """atomic_write_bytes for UTF-8 text."""
    atomic_write_bytes(path, text.encode("utf-8"))


# --------------------------------------------------------------------------- splits


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


def make_split(kind: str, data: FashionData, seed: int = DEFAULT_SPLIT_SEED) -> Split:
    """`kind` is "random" (the paper's) or "grouped" (duplicates kept on one side)."""
    if kind == "random":
        return random_split(data.styles["id"].to_numpy(), seed)
    if kind == "grouped":
        return grouped_split(data.digests, seed)
    raise ValueError(f"unknown split {kind!r}; valid: random, grouped")
