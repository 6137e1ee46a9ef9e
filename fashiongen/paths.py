"""Where FashionGen looks by default: the dataset folder, the shipped models and the decoded-image cache.

Each default is written here once; scripts, the app and the docs refer to these.
"""

from __future__ import annotations

import os
from pathlib import Path

DATASET_DIRNAME = "fashion-small"
# relative to the folder a command runs in; `scripts/download_data.py` puts the dataset under the repository's
# data/ folder, so the two agree when commands run from the repository root (as the README's do)
DEFAULT_DATA_DIR = Path("data") / DATASET_DIRNAME
PRETRAINED_ROOT = Path(__file__).resolve().parent / "pretrained"


def default_cache_dir() -> Path:
    """`$FASHIONGEN_CACHE_DIR`, else `$XDG_CACHE_HOME/fashiongen`, else `~/.cache/fashiongen`."""
    if os.environ.get("FASHIONGEN_CACHE_DIR"):
        return Path(os.environ["FASHIONGEN_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "fashiongen"
