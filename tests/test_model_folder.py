"""fashiongen.model_folder: each JSON file of a model folder checked against its shape at load, the one
error type naming the file and the command that rebuilds it, the card writer and the shared names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fashiongen import model_folder
from fashiongen.errors import ClassifierError, GeneratorError, ModelFolderError
from fashiongen.model_folder import CARD_FILE, GENERATOR, LABELER, SCHEMA_FILE
from fashiongen.schema import LabelSchema

SCHEMA = LabelSchema(("Topwear", "Shoes"), ("Men", "Women"))


@pytest.fixture(params=["classifier", "generator"])
def kind(request) -> model_folder.ModelKind:
    return {"classifier": LABELER, "generator": GENERATOR}[request.param]


def folder_with(tmp_path: Path, kind: model_folder.ModelKind, name: str, text: str | bytes) -> model_folder.ModelFolder:
    path = tmp_path / "model"
    path.mkdir(exist_ok=True)
    (path / name).write_bytes(text if isinstance(text, bytes) else text.encode())
    return kind.open(path)


def assert_names_file_and_retrain(raised: pytest.ExceptionInfo, folder: model_folder.ModelFolder, name: str) -> None:
    message = str(raised.value)
    assert isinstance(raised.value, folder.kind.error)  # ClassifierError or GeneratorError, both ModelFolderError
    assert message.startswith(f"{folder.path / name} ")
    assert message.endswith(f". Retrain it with: {folder.kind.retrain_command(folder.path)}"), message
    assert "\n" not in message


def test_both_kinds_raise_their_own_error_under_one_type() -> None:
    assert issubclass(ClassifierError, ModelFolderError)
    assert issubclass(GeneratorError, ModelFolderError)
    assert SCHEMA_FILE == SCHEMA_FILE == SCHEMA_FILE  # one name, from model_folder
    assert CARD_FILE == CARD_FILE == CARD_FILE


def test_retrain_commands_name_the_shipped_folder_as_the_readme_does(tmp_path: Path) -> None:
    assert LABELER.retrain_command() == ("python scripts/train_classifier.py --data-dir data/fashion-small "
                                            "--out fashiongen/pretrained/classifier")
    assert GENERATOR.retrain_command(GENERATOR.shipped) == ("python scripts/train_generator.py --data-dir "
                                                       "data/fashion-small --out fashiongen/pretrained/generator")
    spaced = tmp_path / "my model"
    assert GENERATOR.retrain_command(spaced).endswith(f"--out '{spaced}'")  # quoted for the shell


# ----------------------------------------------------------------------------- labels.json


def test_a_valid_schema_reads_back(tmp_path: Path, kind) -> None:
    folder = folder_with(tmp_path, kind, SCHEMA_FILE, json.dumps(SCHEMA.to_dict()))
    assert folder.schema() == SCHEMA


@pytest.mark.parametrize(("content", "problem"), [
    ([1, 2], "it holds a list, not an object with sub_categories and genders"),
    ({"sub_categories": "TopwearShoes", "genders": ["Men"]}, "sub_categories is a string, not a list of names"),
    ({"sub_categories": ["Topwear"], "genders": "MW"}, "genders is a string, not a list of names"),
    ({"sub_categories": ["Topwear"]}, "it has no genders"),
    ({"sub_categories": [], "genders": ["Men"]}, "sub_categories is empty"),
    ({"sub_categories": ["Topwear", 7], "genders": ["Men"]}, "sub_categories holds 7, not a name"),
    ({"sub_categories": ["Topwear"], "genders": ["Men", " "]}, 'genders holds " ", not a name'),
    ({"sub_categories": ["Topwear"], "genders": [None]}, "genders holds null, not a name"),
    ({"sub_categories": ["Shoes", "Topwear", "Shoes"], "genders": ["Men"]}, "sub_categories names 'Shoes' more than once"),
    ({"sub_categories": {"Topwear": 1}, "genders": ["Men"]}, "sub_categories is an object, not a list of names"),
])
def test_a_schema_of_the_wrong_shape_names_the_file_and_the_problem(tmp_path: Path, kind, content, problem) -> None:
    folder = folder_with(tmp_path, kind, SCHEMA_FILE, json.dumps(content))
    with pytest.raises(ModelFolderError) as raised:
        folder.schema()
    assert_names_file_and_retrain(raised, folder, SCHEMA_FILE)
    assert f"is not a label schema ({problem})" in str(raised.value)


def test_label_schema_load_names_the_file_too(tmp_path: Path) -> None:
    path = tmp_path / SCHEMA_FILE
    path.write_text('{"sub_categories": "d", "genders": "W"}')
    with pytest.raises(ValueError, match=f"^{path} is not a label schema \\(sub_categories is a string"):
        LabelSchema.load(path)


# ----------------------------------------------------------------------------- any JSON file


@pytest.mark.parametrize(("content", "problem"), [
    (b'{"arch": "conv", ', "is unreadable (JSONDecodeError: "),
    (b'{"arch": "\xff\xfe"}', "is unreadable (UnicodeDecodeError: "),
    (b"[" * 100_000, "is unreadable (RecursionError: "),  # nested deeper than Python's parser goes
])
def test_unreadable_json_names_the_file(tmp_path: Path, kind, content: bytes, problem: str) -> None:
    folder = folder_with(tmp_path, kind, CARD_FILE, content)
    with pytest.raises(ModelFolderError) as raised:
        folder.card()
    assert_names_file_and_retrain(raised, folder, CARD_FILE)
    assert problem in str(raised.value)


def test_a_huge_json_file_is_not_read(tmp_path: Path, kind, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = folder_with(tmp_path, kind, SCHEMA_FILE, b"")
    os.truncate(folder.path / SCHEMA_FILE, model_folder.MAX_JSON_BYTES + 1)  # sparse: no disk used
    monkeypatch.setattr(Path, "read_text", lambda *args, **kwargs: pytest.fail("read a huge file into memory"))
    with pytest.raises(ModelFolderError) as raised:
        folder.schema()
    assert_names_file_and_retrain(raised, folder, SCHEMA_FILE)
    assert "too large for a model's JSON file (limit 10 MB)" in str(raised.value)


# ----------------------------------------------------------------------------- model_card.json


def test_a_folder_without_a_card_has_an_empty_one(tmp_path: Path, kind) -> None:
    assert kind.open(tmp_path).card() == {}


@pytest.mark.parametrize(("content", "problem"), [
    ("[1, 2]", "holds a list, not a JSON object"),
    ("null", "holds null, not a JSON object"),
    ('"a card"', "holds a string, not a JSON object"),
    ('{"metrics": [1]}', "has metrics = a list, not a JSON object"),
    ('{"metrics": {"validation": 0.9}}', "has metrics.validation = a number, not a JSON object"),
    ('{"split": "random"}', "has split = a string, not a JSON object"),
])
def test_a_card_of_the_wrong_shape_names_the_file(tmp_path: Path, kind, content: str, problem: str) -> None:
    folder = folder_with(tmp_path, kind, CARD_FILE, content)
    with pytest.raises(ModelFolderError) as raised:
        folder.card()
    assert_names_file_and_retrain(raised, folder, CARD_FILE)
    assert f"{CARD_FILE} {problem}." in str(raised.value)


def test_a_card_with_its_objects_reads_back(tmp_path: Path, kind) -> None:
    card = {"arch": "compact", "metrics": {"validation": {"auc": 0.99}}, "split": {"kind": "random"}, "notes": [1]}
    assert folder_with(tmp_path, kind, CARD_FILE, json.dumps(card)).card() == card


# ----------------------------------------------------------------------------- objects with typed fields


@pytest.mark.parametrize(("content", "problem"), [
    ("[1]", "holds a list, not a JSON object"),
    ('{"arch": "conv"}', "has no 'latent_dim'"),
    ('{"arch": 3, "latent_dim": 16}', "has 'arch' = an integer, not a string"),
    ('{"arch": "conv", "latent_dim": 16.5}', "has 'latent_dim' = a number, not an integer"),
    ('{"arch": "conv", "latent_dim": true}', "has 'latent_dim' = true or false, not an integer"),
])
def test_json_object_checks_its_fields(tmp_path: Path, kind, content: str, problem: str) -> None:
    folder = folder_with(tmp_path, kind, "config.json", content)
    with pytest.raises(ModelFolderError) as raised:
        folder.json_object("config.json", {"arch": str, "latent_dim": int})
    assert_names_file_and_retrain(raised, folder, "config.json")
    assert f"config.json {problem}." in str(raised.value)


def test_missing_files_are_named_in_order(tmp_path: Path, kind) -> None:
    folder = folder_with(tmp_path, kind, "b.json", "{}")
    with pytest.raises(ModelFolderError) as raised:
        folder.require("b.json", "a.json", "c.json")
    assert_names_file_and_retrain(raised, folder, "a.json")
    assert "a.json is missing." in str(raised.value)


# ----------------------------------------------------------------------------- writing


def test_cards_are_written_with_one_json_default(tmp_path: Path) -> None:
    card = {"loss": np.float32(0.25), "steps": np.int64(7), "flag": np.bool_(True), "scores": np.arange(3),
            "folder": tmp_path / "data", "nested": {"auc": np.float64(0.5)}}
    path = tmp_path / CARD_FILE
    model_folder.write_card(path, card)
    assert json.loads(path.read_text()) == {"loss": 0.25, "steps": 7, "flag": True, "scores": [0, 1, 2],
                                            "folder": str(tmp_path / "data"), "nested": {"auc": 0.5}}
    assert path.read_text() == model_folder.card_json(card)
    assert [p.name for p in tmp_path.iterdir()] == [CARD_FILE]  # the temporary file was renamed, not left


def test_atomic_folder_swaps_in_a_whole_folder_or_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "model"
    with model_folder.atomic_folder(folder) as staging:
        (staging / "a").write_text("first")
    with pytest.raises(RuntimeError, match="interrupted"):
        with model_folder.atomic_folder(folder) as staging:
            (staging / "a").write_text("second")
            raise RuntimeError("interrupted")
    assert (folder / "a").read_text() == "first"
    assert [p.name for p in tmp_path.iterdir()] == ["model"]


# Runs each ModelFolder method named on the command line on the folder given first, under an address-space
# cap of 256 MB above what the interpreter already uses, and prints one line each: "loaded" or the error.
_CAPPED_LOAD = """
import resource, sys
from fashiongen.errors import ModelFolderError
from fashiongen.model_folder import LABELER

with open("/proc/self/status") as status:
    used = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmSize:"))
resource.setrlimit(resource.RLIMIT_AS, (used + 256 * 2**20, resource.getrlimit(resource.RLIMIT_AS)[1]))
folder = LABELER.open(sys.argv[1])
for method in sys.argv[2:]:
    try:
        getattr(folder, method)()
        print("loaded")
    except ModelFolderError as error:
        print(error)
"""


def test_a_pipe_or_device_as_json_is_refused_without_reading(tmp_path: Path) -> None:
    # A FIFO without a writer blocks its reader forever; /dev/zero claims 0 bytes and never ends.
    if not hasattr(os, "mkfifo") or not Path("/dev/zero").exists() or not Path("/proc/self/status").exists():
        pytest.skip("needs named pipes, /dev/zero and /proc (Linux)")
    folder = tmp_path / "model"
    folder.mkdir()
    os.mkfifo(folder / CARD_FILE)
    (folder / SCHEMA_FILE).symlink_to("/dev/zero")
    try:
        done = subprocess.run([sys.executable, "-c", _CAPPED_LOAD, str(folder), "card", "schema"],
                              cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("loading a model folder did not return within 60 s (a read that never ends?)")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert [line.split(" is ")[0] for line in lines] == [str(folder / CARD_FILE), str(folder / SCHEMA_FILE)], lines
    assert all("is unreadable (it is not a regular file but a device, pipe or socket)" in line for line in lines), lines
