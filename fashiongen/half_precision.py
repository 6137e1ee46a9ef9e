"""Keras files with their weights stored at half precision: half the bytes, loaded as float32.

A `.keras` file is a zip of `config.json`, `metadata.json` and `model.weights.h5`. Keras 3 loads
float16 datasets of the weights file into the model's float32 variables, so storing the weights as
float16 halves the file and changes nothing else; whether the outputs measurably change is for the
caller to measure (scripts/halve_weights.py does, per model folder). A weight that float16 cannot
hold (beyond its range, or so small that rounding destroys it) is refused, never stored as inf or 0.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fashiongen.files import atomic_write_bytes

WEIGHTS_MEMBER = "model.weights.h5"
HALF_MAX = float(np.finfo(np.float16).max)  # 65504
# the largest change rounding may make to a weight, relative to the largest weight of its layer:
# float16's own rounding is at most 2^-11 of a value, so more means a layer's weights all fell into
# float16's subnormals (below 6.1e-5) and lost their precision, or flushed to zero. (Relative to the
# layer, not to each dataset: a bias of 3e-5 beside a kernel of 0.1 is rounded by 3e-8, harmlessly.)
RELATIVE_TOLERANCE = 2.0**-10


class HalfPrecisionError(ValueError):
    """A file that cannot be halved: not a Keras file, corrupt, or holding a weight float16 cannot hold."""


def halve_keras_file(path: str | os.PathLike) -> tuple[int, int]:
    """Rewrite the .keras file at `path` in place with every float32 weight stored as float16 (other
    datasets, groups, attributes and zip members as they were); return its (bytes before, bytes after).

    Atomic: a sibling temporary file replaces `path` only when complete. A file without float32
    weights is left untouched, so halving a halved file changes no byte. Raises HalfPrecisionError for
    a file that is not a readable .keras file, or (writing nothing) when a weight is beyond float16's
    range or would lose its precision, naming the layer and dataset."""
    import h5py

    path = Path(path)
    before = path.stat().st_size if path.is_file() else 0
    with _weights_file(path) as (archive, weights), h5py.File(weights, "r") as source:
        if not any(dataset.dtype == np.float32 for dataset in _datasets(source)):
            return before, before
        with tempfile.TemporaryDirectory(prefix="halve-") as work:
            halved = Path(work) / WEIGHTS_MEMBER
            try:
                with h5py.File(halved, "w") as target:
                    _copy_group(source, target)
            except (OSError, KeyError) as error:  # h5py's errors for a damaged object inside the file
                raise HalfPrecisionError(f"{path} is corrupt ({error})") from None
            _write_archive(path, archive, halved)
    return before, path.stat().st_size


def is_half(path: str | os.PathLike) -> bool:
    """Whether the .keras file at `path` stores its weights at half precision: float16 datasets and no
    float32 ones. Raises HalfPrecisionError for a file that is not a readable .keras file."""
    import h5py

    with _weights_file(Path(path)) as (_, weights), h5py.File(weights, "r") as source:
        dtypes = {dataset.dtype for dataset in _datasets(source)}
    return np.dtype(np.float16) in dtypes and np.dtype(np.float32) not in dtypes


def half_of(values: np.ndarray, name: str, scale: float | None = None) -> np.ndarray:
    """float32 `values` as float16; HalfPrecisionError naming `name` when a finite value overflows
    float16 or the rounding changes a value by more than RELATIVE_TOLERANCE of `scale` (the largest
    magnitude of the layer's weights; default: of `values`)."""
    values = np.asarray(values, np.float32)
    with np.errstate(over="ignore"):  # overflow is checked just below
        half = values.astype(np.float16)
    finite = np.isfinite(values)  # inf and NaN stay what they are
    if not finite.any():
        return half
    overflow = finite & ~np.isfinite(half)
    if overflow.any():
        worst = float(values[overflow][np.argmax(np.abs(values[overflow]))])
        raise HalfPrecisionError(f"{name} holds {worst:g}, beyond float16's range (±{HALF_MAX:g}); "
                                 "keep this file at float32")
    scale = float(np.abs(values[finite]).max()) if scale is None else scale
    error = float(np.abs(half[finite].astype(np.float32) - values[finite]).max())
    if error > RELATIVE_TOLERANCE * scale:
        smallest = float(np.abs(values[finite & (values != 0)]).min())
        raise HalfPrecisionError(f"{name} holds values as small as {smallest:g}, which float16 rounds by "
                                 f"{error:g} ({error / scale:.1%} of its layer's largest weight {scale:g}; "
                                 "float16's normal range starts at 6.1e-05); keep this file at float32")
    return half


# ----------------------------------------------------------------------------- the zip and the HDF5 file


@contextmanager
def _weights_file(path: Path) -> Iterator[tuple[zipfile.ZipFile, Path]]:
    """The open archive of a .keras file and its weights member extracted to a temporary file."""
    import h5py

    if path.suffix != ".keras":
        raise HalfPrecisionError(f"{path} is not a .keras file")
    if not path.is_file():
        raise HalfPrecisionError(f"{path} does not exist or is not a file")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as error:
        raise HalfPrecisionError(f"{path} is corrupt or not a Keras file ({error})") from None
    with archive, tempfile.TemporaryDirectory(prefix="halve-") as work:
        if WEIGHTS_MEMBER not in archive.namelist():
            raise HalfPrecisionError(f"{path} has no {WEIGHTS_MEMBER}: not a Keras 3 .keras file")
        weights = Path(work) / WEIGHTS_MEMBER
        try:
            with archive.open(WEIGHTS_MEMBER) as member, open(weights, "wb") as out:
                shutil.copyfileobj(member, out)  # streamed: memory stays bounded whatever the size
            if not h5py.is_hdf5(weights):
                raise OSError("its weights are not an HDF5 file")
        except (zipfile.BadZipFile, OSError, EOFError) as error:  # a torn member fails its CRC or ends early
            raise HalfPrecisionError(f"{path} is corrupt ({error})") from None
        yield archive, weights


def _datasets(group) -> list:
    import h5py

    found = []
    group.visititems(lambda _, item: found.append(item) if isinstance(item, h5py.Dataset) else None)
    return found


def _copy_group(source, target) -> None:
    """Copy `source` into `target` with float32 datasets as float16, every attribute kept."""
    import h5py

    for key, value in source.attrs.items():
        target.attrs[key] = value
    # the datasets of a group are one layer's weights (Keras writes layers/<layer>/vars/0, 1, ...)
    scale = max((_largest(item[()]) for item in source.values()
                 if isinstance(item, h5py.Dataset) and item.dtype == np.float32), default=0.0)
    for name, item in source.items():
        if isinstance(item, h5py.Group):
            _copy_group(item, target.create_group(name))
        elif isinstance(item, h5py.Dataset) and item.dtype == np.float32:
            options = {}
            if item.chunks:  # a scalar or contiguous dataset takes no chunk options
                options = {"chunks": item.chunks, "compression": item.compression,
                           "compression_opts": item.compression_opts, "shuffle": item.shuffle}
            copy = target.create_dataset(name, data=half_of(item[()], _describe(item), scale), **options)
            for key, value in item.attrs.items():
                copy.attrs[key] = value
        else:  # integer counters, float64, strings: byte for byte
            source.copy(item, target, name=name)


def _largest(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size else 0.0


def _describe(dataset) -> str:
    """How an error names a weight: its layer's name (the attribute Keras writes on `vars`) and path."""
    layer = dataset.parent.attrs.get("name") if dataset.parent.name.endswith("/vars") else None
    if isinstance(layer, bytes):
        layer = layer.decode("utf-8", "replace")
    where = f"weight {dataset.name.lstrip('/')}"
    return f"layer {layer!r} ({where})" if layer else where


def _write_archive(path: Path, archive: zipfile.ZipFile, weights: Path) -> None:
    """A copy of `archive` with `weights` as its weights member, written atomically over `path` (a
    model file is a few MB: it is built in memory)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as out:
        for info in archive.infolist():
            fresh = _fresh_info(info)
            if info.filename == WEIGHTS_MEMBER:
                # deflate shrinks float16 weights by a further ~9% (float32 ones hardly at all);
                # Keras reads a deflated member as fast
                fresh.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(fresh, weights.read_bytes())
            else:
                out.writestr(fresh, archive.read(info))
    atomic_write_bytes(path, buffer.getvalue())


def _fresh_info(info: zipfile.ZipInfo) -> zipfile.ZipInfo:
    """A member's name, date, mode and compression, without the sizes of its old content."""
    fresh = zipfile.ZipInfo(info.filename, info.date_time)
    fresh.compress_type, fresh.external_attr = info.compress_type, info.external_attr
    return fresh
