"""Process-level setup shared by the scripts and the app: a quiet TensorFlow, device facts."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
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
        import keras  # noqa: F401  (its first import also touches TensorFlow's logging)
        import tensorflow

        # device discovery runs cuInit, which logs an error on every machine without a GPU
        tensorflow.config.list_physical_devices("GPU")
    return tensorflow


def device_summary() -> str:
    """"GPU: <names>" when TensorFlow sees a GPU, else "CPU only"."""
    tensorflow = import_tensorflow_quietly()
    gpus = tensorflow.config.list_physical_devices("GPU")
    return f"GPU: {', '.join(gpu.name for gpu in gpus)}" if gpus else "CPU only"


