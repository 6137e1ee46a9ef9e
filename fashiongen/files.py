"""Files written whole or not at all, checks that an output can be written, and JSON type names for messages."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


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


# how messages name the type of a parsed JSON value
JSON_NAMES = {dict: "an object", list: "a list", str: "a string", int: "an integer", float: "a number",
              bool: "true or false", type(None): "null"}


def json_type(value: object) -> str:
    """What a parsed JSON value is, in JSON's words ("a list", "a string", ...), for messages."""
    return JSON_NAMES.get(type(value), type(value).__name__)


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
