"""fashiongen/config.py: a dataclass's fields as argparse flags and back."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from fashiongen.config import add_arguments, as_card, from_namespace, option


@dataclass
class Example:
    batch_size: int = option(64, "images per step")
    out: Path = option(Path("runs") / "model", "where the model goes")
    limit: int | None = option(None, "first N images only", default_text="all")
    loss: str = option("bce", "the loss", choices=("bce", "heads"))
    quiet: bool = option(False, "no progress bars")
    shuffle: bool = option(True, "shuffle every epoch")
    stretch: bool = option(False, "learn the spread too", negatable=True)
    not_a_flag: str = "kept"


def parser_for(prefix: str = "") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="example")
    add_arguments(parser, Example, prefix=prefix)
    return parser


def test_defaults_come_back_as_the_dataclass() -> None:
    assert from_namespace(Example, parser_for().parse_args([])) == Example()


def test_flags_convert_their_types() -> None:
    config = from_namespace(Example, parser_for().parse_args(
        ["--batch-size", "8", "--out", "x/y", "--limit", "3", "--loss", "heads", "--quiet", "--no-shuffle",
         "--stretch"]))
    assert config == Example(batch_size=8, out=Path("x/y"), limit=3, loss="heads", quiet=True, shuffle=False,
                             stretch=True)
    assert as_card(config)["out"] == "x/y" and as_card(config)["not_a_flag"] == "kept"


def test_help_ends_with_the_default_and_only_option_fields_are_flags(capsys) -> None:
    text = parser_for().format_help()
    assert "(default: 64)" in text and "(default: all)" in text and "(default: on)" in text
    assert "--no-stretch" in text and "--no-quiet" not in text and "--not-a-flag" not in text
    with pytest.raises(SystemExit):
        parser_for().parse_args(["--loss", "mse"])
    assert "invalid choice" in capsys.readouterr().err


def test_a_prefix_names_the_flags_and_their_attributes() -> None:
    config = from_namespace(Example, parser_for("judge_").parse_args(["--judge-batch-size", "2"]), prefix="judge_")
    assert config.batch_size == 2
