"""Typed script configurations: a dataclass is the one place where a flag's name, type, default and
help live; argparse, the parsed values and the model card all come from it.

    @dataclass
    class Config:
        epochs: int = option(15, "training epochs")

    parser = argparse.ArgumentParser()
    add_arguments(parser, Config)            # --epochs, "training epochs (default: 15)"
    config = from_namespace(Config, parser.parse_args())

Field `batch_size` is flag `--batch-size` (with a `prefix`, `--<prefix>batch-size`). A bool is a
store_true flag, or --x/--no-x when its default is True or `negatable`. `Path`, `int`, `float`,
`str` and their `Optional` forms convert the command line's text.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, Sequence, TypeVar

Config = TypeVar("Config")
_CONVERTERS = (Path, int, float, str)


def option(default: Any, help: str, *, choices: Sequence[str] | None = None, default_text: str | None = None,
           negatable: bool = False) -> Any:
    """A dataclass field that is also a command-line flag. `default_text` replaces the default in
    the help (for a None default that means something, e.g. "all"); "" leaves it out."""
    metadata = {"help": help, "choices": choices, "default_text": default_text, "negatable": negatable}
    return dataclasses.field(default=default, metadata=metadata)


def _flag_type(annotation: Any) -> Any:
    """`Path | None` -> Path; `int` -> int; `bool` -> bool."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
    return annotation


def flag_of(name: str) -> str:
    """The command-line flag of a config field: batch_size -> --batch-size."""
    return "--" + name.replace("_", "-")


def shown(value: Any) -> str:
    """A flag's value as help texts and messages show it (a bool as on or off)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, config_class: type,
                  prefix: str = "") -> None:
    """One flag per field of `config_class` that `option()` made (other fields are not flags)."""
    hints = typing.get_type_hints(config_class)
    for field in dataclasses.fields(config_class):
        if "help" not in field.metadata:
            continue
        meta, kind = field.metadata, _flag_type(hints[field.name])
        flag = flag_of(prefix + field.name)
        negatable = kind is bool and (field.default is True or meta["negatable"])
        default = meta["default_text"] if meta["default_text"] is not None else shown(field.default)
        if kind is bool and not negatable:
            default = ""  # a store_true flag is off unless given
        help_text = meta["help"] + (f" (default: {default})" if default else "")
        if kind is bool:
            action = argparse.BooleanOptionalAction if negatable else "store_true"
            parser.add_argument(flag, action=action, default=field.default, help=help_text)
        elif kind in _CONVERTERS:
            parser.add_argument(flag, type=kind, default=field.default, choices=meta["choices"], help=help_text)
        else:
            raise TypeError(f"{config_class.__name__}.{field.name}: no flag for type {kind!r}")


def from_namespace(config_class: type[Config], namespace: argparse.Namespace, prefix: str = "") -> Config:
    """The dataclass of the parsed flags that add_arguments() added (other fields keep their defaults)."""
    values = {field.name: getattr(namespace, prefix + field.name) for field in dataclasses.fields(config_class)
              if "help" in field.metadata}
    return config_class(**values)


def as_card(config: Any) -> dict:
    """The configuration as the model card records it: plain JSON values (paths as text)."""
    return {key: str(value) if isinstance(value, Path) else value
            for key, value in dataclasses.asdict(config).items()}
