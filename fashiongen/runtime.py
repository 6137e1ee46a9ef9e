"""Process-level setup shared by the scripts and the app: a quiet TensorFlow, device facts."""

from __future__ import annotations

import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


@contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Silence file descriptor 2 (C++ logging writes there directly, past Python's sys.stderr)."""
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)


def import_tensorflow_quietly():
    """Import TensorFlow without its start-up chatter on stderr ("Could not find cuda drivers",
    absl's "All log messages before InitializeLog" ...), so a script's own one-line errors stay
    one line. Import errors still raise as usual."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with _stderr_silenced():
        import tensorflow
        import keras  # noqa: F401  (its first import also touches TensorFlow's logging)

        # device discovery runs cuInit, which logs an error on every machine without a GPU
        tensorflow.config.list_physical_devices("GPU")
    return tensorflow


def device_summary() -> str:
    """"GPU: <names>" when TensorFlow sees a GPU, else "CPU only"."""
    tensorflow = import_tensorflow_quietly()
    gpus = tensorflow.config.list_physical_devices("GPU")
    return f"GPU: {', '.join(gpu.name for gpu in gpus)}" if gpus else "CPU only"


def check_writable(path: str | os.PathLike, folder: bool = False) -> None:
    """Raise ValueError (a one-line message) unless `path` can be written as a file (or, with `folder`,
    as a folder to write into), its missing parent folders included. Scripts call it before their work so
    that a bad output path fails at once instead of losing the finished result. Creates nothing."""
    path = Path(path)
    wanted, other = ("folder", "file") if folder else ("file", "folder")
    if os.path.lexists(path) and path.is_dir() != folder:
        raise ValueError(f"{path} is a {other}: give a {wanted} to write")
    existing = path if folder else path.parent
    while not os.path.lexists(existing):  # the nearest existing ancestor is where folders would be made
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"cannot write {path}: {existing} is not a folder")
    try:  # a real write (root passes every permission check; /proc and read-only mounts do not)
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise ValueError(f"cannot write {path}: {existing} is not writable ({error.strerror})") from None
