"""A dataset folder as arrays: styles.csv rows with their decoded images, cached on disk.

Layout of a dataset folder (what `scripts/download_data.py` makes, and `../shared/data/fashion-small`):
`styles.csv` plus `images/<id>.jpg`. Nothing here imports TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import pandas as pd

from fashiongen.errors import DatasetError
from fashiongen.files import atomic_write_text
from fashiongen.imaging import IMAGE_SHAPE, PREPROCESSING_VERSION, ImageError, load_image, read_image_file
from fashiongen.paths import DEFAULT_DATA_DIR, default_cache_dir
from fashiongen.schema import LabelSchema
from fashiongen.styles import read_styles


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
    # one cache file per image folder: a new version of the folder replaces the old one
    folder = str(Path(paths[0]).parent.resolve()) if paths else ""
    folder_tag = hashlib.blake2b(folder.encode(), digest_size=6).hexdigest()
    images_file = cache_dir / f"images-{folder_tag}-{_cache_key(paths)}.npy"
    cached = _read_image_cache(images_file, len(paths))
    if cached is not None:
        return cached
    loaded = decode_images(paths, workers=workers, progress=progress)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for stale in cache_dir.glob(f"images-{folder_tag}-*"):
            stale.unlink(missing_ok=True)  # older versions of the same folder
        _write_image_cache(images_file, loaded)
    except OSError as error:
        warnings.warn(f"could not write the image cache in {cache_dir}: {error}", stacklevel=2)
    return loaded


def _read_image_cache(images_file: Path, n_paths: int) -> LoadedImages | None:
    """The cached decode of `n_paths` files, or None when absent, torn or of another shape."""
    digests_file = images_file.with_suffix(".digests.npy")
    unreadable_file = images_file.with_suffix(".unreadable.json")
    if not (images_file.is_file() and digests_file.is_file()):
        return None
    try:
        images = np.load(images_file)
        digests = np.load(digests_file)
        # absent: a cache written before skips were recorded, which could hold none
        unreadable = ({int(i): str(why) for i, why in json.loads(unreadable_file.read_text()).items()}
                      if unreadable_file.is_file() else {})
    except (OSError, ValueError, AttributeError, TypeError):
        return None  # a torn or foreign file: decode again and overwrite it
    n_good = n_paths - len(unreadable)
    if (images.shape == (n_good,) + IMAGE_SHAPE and digests.shape == (n_good,)
            and all(0 <= i < n_paths for i in unreadable)):
        return LoadedImages(images, digests, unreadable)
    return None


def _write_image_cache(images_file: Path, loaded: LoadedImages) -> None:
    _atomic_save_npy(images_file.with_suffix(".digests.npy"), loaded.digests)
    atomic_write_text(images_file.with_suffix(".unreadable.json"), json.dumps(loaded.unreadable) + "\n")
    _atomic_save_npy(images_file, loaded.images)  # last: its presence means all three are complete


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
                data = read_image_file(path)  # bounded: a pipe or /dev/zero is refused, not read forever
                images[i] = load_image(data, name=str(path))
                digests[i] = file_digest(data)
            except ImageError as error:  # read_image_file turns a failed read into one too
                unreadable[i] = str(error)
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
