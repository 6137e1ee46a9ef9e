"""Files written whole or not at all, files read with a size limit, checks that an output can be written,
and JSON type names for messages."""

from __future__ import annotations

import os
import stat
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


class FileReadError(ValueError):
    """A file that `read_bounded` refuses or cannot read; the message names it and says why."""


class FileTooLargeError(FileReadError):
    """A file over `read_bounded`'s limit; `size` is the bytes it has (at least limit + 1)."""

    def __init__(self, message: str, size: int) -> None:
        super().__init__(message)
        self.size = size


def read_bounded(path: str | os.PathLike, limit: int, label: str | None = None) -> bytes:
    """A regular file's bytes, never more than `limit` + 1 of them read whatever its size claims.

    Raises FileTooLargeError over `limit`, FileReadError for a folder, a device or pipe (/dev/zero
    never ends, a FIFO without a writer blocks forever; both claim 0 bytes) or an OSError;
    messages start with `label` (default: the path).
    """
    path = Path(path)
    label = label or str(path)
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise FileReadError(f"{label} is a folder, not a file")
        if not stat.S_ISREG(info.st_mode):
            raise FileReadError(f"{label} is not a regular file but a device, pipe or socket")
        _check_size(info.st_size, limit, label)
        # O_NONBLOCK: a regular file swapped for a FIFO after stat must not block the open
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as file:
            if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
                raise FileReadError(f"{label} is not a regular file but a device, pipe or socket")
            data = file.read(limit + 1)  # the file may have grown since stat
    except OSError as error:
        raise FileReadError(f"{label} cannot be read: {error.strerror or error}") from error
    _check_size(len(data), limit, label)
    return data


def _check_size(size: int, limit: int, label: str) -> None:
    if size > limit:
        raise FileTooLargeError(f"{label} is {size / 2**20:.1f} MB, over the limit of {limit / 2**20:.0f} MB", size)


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
