"""A model folder on disk, for the labeler and the generator alike: the files both keep, each read and
checked once at load, the one error a broken folder raises, and the atomic save.

A folder holds the model's Keras file(s), `labels.json` (its `LabelSchema`), an optional
`model_card.json` (how it was trained, what it measured) and files of its own kind (the generator's
`generator.json` and `prior.npz`). Every file is checked against the shape the code needs when the
folder is loaded, so a damaged or foreign file fails there, with a message naming it and the command
that rebuilds it, instead of later in a page or a script.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from fashiongen.errors import ClassifierError, DatasetError, GeneratorError, ModelFolderError
from fashiongen.files import JSON_NAMES, FileReadError, FileTooLargeError, atomic_write_text, json_type, read_bounded
from fashiongen.paths import DEFAULT_DATA_DIR, PRETRAINED_ROOT
from fashiongen.schema import LabelSchema

SCHEMA_FILE = "labels.json"
CARD_FILE = "model_card.json"
# the largest JSON file a folder may hold: the shipped ones are under 5 KB; a huge one is not read into memory
MAX_JSON_BYTES = 10 * 1024 * 1024
# card fields that code reads as objects (app_pages/about.py, the scripts), so a card must have them as objects
CARD_OBJECTS = (("metrics",), ("metrics", "validation"), ("split",))


@dataclass(frozen=True)
class ModelKind:
    """A kind of model folder: the script that writes one (with --out), where the shipped one lives, and
    the error its loading raises (a subclass of ModelFolderError, so callers can catch their own kind)."""

    script: str
    shipped: Path
    error: type[ModelFolderError] = ModelFolderError

    def retrain_command(self, folder: str | os.PathLike | None = None) -> str:
        """The command that trains a model of this kind into `folder` (default: the shipped one)."""
        out = folder_argument(self.shipped if folder is None else folder, self.shipped)
        return f"python scripts/{self.script} --data-dir {DEFAULT_DATA_DIR.as_posix()} --out {out}"

    def open(self, folder: str | os.PathLike) -> "ModelFolder":
        return ModelFolder(Path(folder), self)


@dataclass(frozen=True)
class ModelFolder:
    """Reads the files of one model folder, each checked against its expected shape."""

    path: Path
    kind: ModelKind

    def error(self, name: str, problem: str, fix: str | None = None) -> ModelFolderError:
        """The kind's error reading "<folder>/<name> <problem>. <fix>"; the fix is retraining into this
        folder unless another command rebuilds the file."""
        fix = fix or f"Retrain it with: {self.kind.retrain_command(self.path)}"
        return self.kind.error(f"{self.path / name} {problem}. {fix}")

    def require(self, *names: str) -> None:
        """Raise for the first of `names` that is not a file in the folder."""
        for name in names:
            if not (self.path / name).is_file():
                raise self.error(name, "is missing")

    def keras_model(self, name: str, custom_objects: Mapping[str, Any] | None = None):
        """The uncompiled Keras model in `name`."""
        import keras  # here, not at the top: reading the JSON files needs no TensorFlow

        try:
            return keras.saving.load_model(self.path / name, custom_objects=dict(custom_objects or {}), compile=False)
        except Exception as error:  # Keras raises many types for a torn or foreign file
            raise self.error(name, f"is corrupt or not a Keras model ({type(error).__name__})") from error

    def json(self, name: str, fix: str | None = None) -> Any:
        """The parsed JSON in `name`, of any shape; an error suggests `fix` (default: retraining)."""
        try:
            data = read_bounded(self.path / name, MAX_JSON_BYTES, label="it")
        except FileTooLargeError as error:
            raise self.error(name, f"is {error.size / 2**20:.0f} MB, too large for a model's JSON file "
                                   f"(limit {MAX_JSON_BYTES // 2**20} MB)", fix) from None
        except FileReadError as error:  # a folder, a device or pipe, or a failed read
            raise self.error(name, f"is unreadable ({error})", fix) from None
        try:
            return json.loads(data.decode("utf-8"))
        # ValueError: bad JSON or bad UTF-8; RecursionError: JSON nested thousands of levels deep
        except (ValueError, RecursionError) as error:
            raise self.error(name, f"is unreadable ({type(error).__name__}: {error})", fix) from None

    def json_object(self, name: str, fields: Mapping[str, type | tuple[type, ...]] | None = None,
                    fix: str | None = None) -> dict:
        """The JSON object in `name`, with each of `fields` present and of its type (a bool is no int)."""
        value = self.json(name, fix)
        if not isinstance(value, dict):
            raise self.error(name, f"holds {json_type(value)}, not a JSON object", fix)
        for field, kinds in (fields or {}).items():
            if field not in value:
                raise self.error(name, f"has no {field!r}", fix)
            if not isinstance(value[field], kinds) or (isinstance(value[field], bool) and bool not in _tuple(kinds)):
                expected = " or ".join(JSON_NAMES[kind] for kind in _tuple(kinds))
                raise self.error(name, f"has {field!r} = {json_type(value[field])}, not {expected}", fix)
        return value

    def schema(self) -> LabelSchema:
        """The folder's label schema (labels.json)."""
        try:
            return LabelSchema.from_dict(self.json(SCHEMA_FILE))
        except DatasetError as error:
            raise self.error(SCHEMA_FILE, f"is not a label schema ({error})") from None

    def card(self) -> dict:
        """The folder's model card ({} when it has none)."""
        if not (self.path / CARD_FILE).exists():
            return {}  # a pipe or device by that name exists, and `json` refuses it
        card = self.json_object(CARD_FILE)
        for keys in CARD_OBJECTS:
            value = card
            for depth, key in enumerate(keys, start=1):
                value = value.get(key, {})
                if not isinstance(value, dict):
                    raise self.error(CARD_FILE, f"has {'.'.join(keys[:depth])} = {json_type(value)}, not a JSON object")
        return card


def _tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def shapes(tensors) -> list[tuple]:
    """The shapes without the batch axis of a Keras model's `inputs` or `outputs`: what a model
    folder's checks compare with the label schema and the other files."""
    return [tuple(tensor.shape[1:]) for tensor in tensors]


def folder_argument(folder: str | os.PathLike, shipped: Path) -> str:
    """How a suggested command names a model folder: the shipped one relative to the checkout (as the
    README's commands do), any other as given, quoted for the shell."""
    if Path(folder).resolve() == Path(shipped).resolve():
        return Path(shipped).relative_to(Path(shipped).parents[2]).as_posix()  # fashiongen/pretrained/<model>
    return shlex.quote(str(folder))


# ----------------------------------------------------------------------------- saving


def card_json(card: Mapping[str, Any]) -> str:
    """A model card as the text of model_card.json: NumPy numbers and arrays as JSON numbers and
    lists, anything else JSON does not know (paths, ...) as its text."""
    return json.dumps(card, indent=2, default=_json_default) + "\n"


def write_card(path: str | os.PathLike, card: Mapping[str, Any]) -> None:
    """Write a model card atomically (fit_generator_prior.py rewrites the card of a folder in use)."""
    atomic_write_text(path, card_json(card))


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


@contextmanager
def atomic_folder(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield a staging folder to fill; when the block succeeds it takes the place of `folder`
    (readers and crashes see the old folder or the new one, never half), when it fails it is
    removed and `folder` is untouched."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    staging.chmod(0o755)  # mkdtemp makes it private
    try:
        yield staging
        old = folder.with_name(f".{folder.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if folder.exists():
            os.replace(folder, old)
        os.replace(staging, folder)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# The two kinds of model folder FashionGen ships.
LABELER = ModelKind("train_classifier.py", PRETRAINED_ROOT / "classifier", ClassifierError)
GENERATOR = ModelKind("train_generator.py", PRETRAINED_ROOT / "generator", GeneratorError)


@dataclass(frozen=True)
class Variant:
    """A shipped model of one kind under a name people pick it by (the app's Generator box, --generator)."""

    name: str
    folder: Path
    description: str


# The generators FashionGen ships, the default first. The app offers those whose folder exists;
# `smooth` appears once a new default replaces today's (which moves there).
GENERATOR_VARIANTS = (
    Variant("default", GENERATOR.shipped, "the recommended generator, best measured against real photos"),
    Variant("smooth", PRETRAINED_ROOT / "generator-smooth",
            "the earlier default, a CVAE without adversarial training, with smoother, softer images"),
    Variant("paper", PRETRAINED_ROOT / "generator-paper", "the paper's CVAE, reproduced as the baseline"),
)
