"""fashiongen/half_precision.py and scripts/halve_weights.py with tiny Keras models and model folders."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import h5py
import keras
import numpy as np
import pytest
from conftest import assert_help_mentions
from helpers import REPO, SCHEMA, folder_bytes, load_script, make_classifier, one_error_line, read_card

from fashiongen.generator.cvae import build_generator
from fashiongen.generator.generator import Generator
from fashiongen.half_precision import HalfPrecisionError, halve_keras_file, is_half
from fashiongen.labeler.labeler import Labeler

halve_cli = load_script(REPO / "scripts" / "halve_weights.py")


def tiny_model(kernel_value: float | None = None, scale: float = 1.0) -> keras.Model:
    """Conv + batch norm + dense, with random weights times `scale`; `kernel_value` goes into one
    entry of the dense layer (named "scores") kernel."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="norm")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(5, name="scores")(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    model.set_weights([(rng.normal(size=w.shape) * 0.1 * scale).astype(np.float32) if i != 5 else
                       np.abs(rng.normal(size=w.shape)).astype(np.float32) + 0.5  # moving variance > 0
                       for i, w in enumerate(model.get_weights())])
    if kernel_value is not None:
        kernel, bias = model.get_layer("scores").get_weights()
        kernel[3, 2] = kernel_value
        model.get_layer("scores").set_weights([kernel, bias])
    return model


def saved(model: keras.Model, path: Path) -> Path:
    model.save(path)
    return path


def weights_tree(path: Path) -> dict[str, tuple]:
    """Every group and dataset of a .keras file's weights: its attributes, and a dataset's dtype and shape."""
    with zipfile.ZipFile(path) as archive, h5py.File(io.BytesIO(archive.read("model.weights.h5")), "r") as weights:
        tree = {"/": (dict(weights.attrs),)}
        weights.visititems(lambda name, item: tree.__setitem__(name, (
            {key: str(value) for key, value in item.attrs.items()},
            *((str(item.dtype), item.shape) if isinstance(item, h5py.Dataset) else ()))))
    return tree


def test_halving_shrinks_a_file_that_loads_into_float32_with_the_same_outputs(tmp_path: Path) -> None:
    model = tiny_model()
    path = saved(model, tmp_path / "model.keras")
    assert not is_half(path)
    before, after = halve_keras_file(path)
    assert before > after == path.stat().st_size and after < 0.75 * before
    assert is_half(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert {weight.dtype for weight in loaded.weights} == {"float32"}
    for old, new in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(new, old.astype(np.float16).astype(np.float32))
    x = np.random.default_rng(1).normal(size=(16, 8, 8, 3)).astype(np.float32)
    expected, got = model.predict_on_batch(x), loaded.predict_on_batch(x)
    assert not np.array_equal(expected, got)  # the weights did change ...
    np.testing.assert_allclose(got, expected, atol=2e-3 * np.abs(expected).max())  # ... within float16's rounding


def test_halving_keeps_every_group_attribute_and_integer_dataset(tmp_path: Path) -> None:
    model = tiny_model()
    model.compile(optimizer="adam", loss="mse")
    model.train_on_batch(np.zeros((2, 8, 8, 3), np.float32), np.zeros((2, 5), np.float32))
    path = saved(model, tmp_path / "compiled.keras")
    before = weights_tree(path)
    assert any(entry[1:2] == ("int64",) for entry in before.values())  # the optimizer's step counter
    halve_keras_file(path)
    after = weights_tree(path)
    assert after == {name: entry[:1] + (("float16",) + entry[2:] if entry[1:2] == ("float32",) else entry[1:])
                     for name, entry in before.items()}
    keras.saving.load_model(path)  # with its optimizer


def test_halving_a_halved_file_changes_no_byte(tmp_path: Path) -> None:
    path = saved(tiny_model(), tmp_path / "model.keras")
    halve_keras_file(path)
    content = path.read_bytes()
    assert halve_keras_file(path) == (len(content), len(content))
    assert path.read_bytes() == content


def test_a_weight_beyond_float16_is_refused_with_its_layer(tmp_path: Path) -> None:
    path = saved(tiny_model(kernel_value=1e6), tmp_path / "model.keras")
    content = path.read_bytes()
    with pytest.raises(HalfPrecisionError, match=r"layer 'scores' \(weight layers/dense/vars/0\) holds 1e\+06"):
        halve_keras_file(path)
    assert path.read_bytes() == content
    assert [p.name for p in tmp_path.iterdir()] == ["model.keras"]  # no temporary file left behind


def test_weights_float16_cannot_resolve_are_refused_but_small_ones_beside_large_ones_pass(tmp_path: Path) -> None:
    tiny = saved(tiny_model(scale=1e-5), tmp_path / "tiny.keras")  # every weight of conv about 1e-6
    with pytest.raises(HalfPrecisionError, match=r"layer 'conv' .* holds values as small as"):
        halve_keras_file(tiny)
    # a bias of 1e-7 beside a kernel of 0.1 is rounded by far less than the kernel's own rounding
    model = tiny_model()
    kernel, bias = model.get_layer("scores").get_weights()
    model.get_layer("scores").set_weights([kernel, np.full_like(bias, 1e-7)])
    halve_keras_file(saved(model, tmp_path / "small-bias.keras"))


@pytest.mark.parametrize("name, content, message", [
    ("torn.keras", None, "is corrupt"),
    ("text.keras", b"not a zip", "is corrupt or not a Keras file"),
    ("no-weights.keras", "zip", "has no model.weights.h5"),
    ("model.h5", None, "is not a .keras file"),
])
def test_a_corrupt_or_foreign_file_gets_a_clear_error(tmp_path: Path, name: str, content, message: str) -> None:
    good = saved(tiny_model(), tmp_path / "good.keras").read_bytes()
    if content is None:
        content = good[: len(good) // 2] + good[len(good) // 2 + 100:] if name == "torn.keras" else good
    elif content == "zip":
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("config.json", "{}")
        content = buffer.getvalue()
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(HalfPrecisionError, match=message):
        halve_keras_file(path)
    with pytest.raises(HalfPrecisionError, match=message):
        is_half(path)
    assert path.read_bytes() == content


# ----------------------------------------------------------------------------- scripts/halve_weights.py


@pytest.fixture(scope="module")
def generator_folder(tmp_path_factory) -> Path:
    """An untrained conv generator of the tiny dataset's schema (random weights)."""
    model = build_generator("conv", SCHEMA.size, latent_dim=16)
    folder = tmp_path_factory.mktemp("generator") / "generator"
    Generator(model.encoder, model.decoder, SCHEMA, "conv", {"model": "generator", "arch": "conv"}).save(folder)
    return folder


def script_args(folder: Path, data_dir: Path, *extra: str) -> list[str]:
    return [str(folder), "--data-dir", str(data_dir), "--photos", "8", "--pairs", "2", "--seeds", "1", *extra]


def test_the_script_halves_a_generator_that_still_loads(generator_folder: Path, tiny_dataset: Path, tmp_path: Path,
                                                        capsys) -> None:
    folder = tmp_path / "generator"
    shutil.copytree(generator_folder, folder)
    before = folder_bytes(folder)
    # an untrained decoder's outputs sit near 0.5, where rounding moves the most pixels: wide limits
    assert halve_cli.main(script_args(folder, tiny_dataset, "--max-changed-pixels", "1", "--max-levels", "4")) == 0
    out = capsys.readouterr().out
    assert "generate 2 pairs x 1 seeds x 16" in out and "reconstruct 8 photos" in out and f"wrote {folder}" in out
    after = folder_bytes(folder)
    changed = {name for name in before if before[name] != after[name]}
    assert changed == {"encoder.keras", "decoder.keras", "model_card.json"}
    assert all(len(after[name]) < 0.75 * len(before[name]) for name in ("encoder.keras", "decoder.keras"))
    assert is_half(folder / "decoder.keras") and is_half(folder / "encoder.keras")
    card = read_card(folder)
    assert card["weights"] == "float16" and card["arch"] == "conv" and "halve_weights.py" in card["weights_command"]
    full, half = Generator.load(generator_folder), Generator.load(folder)
    difference = np.abs(full.generate("Topwear", "Men", 3, 4).astype(int) - half.generate("Topwear", "Men", 3, 4))
    assert difference.max() <= 4
    # a second run finds nothing to halve and changes no byte
    assert halve_cli.main(script_args(folder, tiny_dataset, "--max-changed-pixels", "1", "--max-levels", "4")) == 0
    assert "halved before, left as it is" in capsys.readouterr().out
    assert folder_bytes(folder) == after


def test_check_only_and_a_failed_check_write_nothing(generator_folder: Path, tiny_dataset: Path, capsys) -> None:
    before = folder_bytes(generator_folder)
    wide = ("--max-changed-pixels", "1", "--max-levels", "4")
    assert halve_cli.main(script_args(generator_folder, tiny_dataset, "--check-only", *wide)) == 0
    assert "--check-only: nothing written" in capsys.readouterr().out
    for extra in ((), ("--check-only",)):
        assert halve_cli.main(script_args(generator_folder, tiny_dataset, "--max-levels", "0", *extra)) == 2
        captured = capsys.readouterr()
        line = one_error_line(captured.err)
        assert "over the limit, nothing written" in line and "<= 0 level(s)" in line
        assert "OVER" in captured.out
    assert folder_bytes(generator_folder) == before
    assert [p.name for p in generator_folder.parent.iterdir()] == ["generator"]  # no staging folder left


def test_the_script_halves_only_the_files_asked_for(generator_folder: Path, tiny_dataset: Path, tmp_path: Path,
                                                    capsys) -> None:
    folder = tmp_path / "generator"
    shutil.copytree(generator_folder, folder)
    argv = script_args(folder, tiny_dataset, "--only", "decoder.keras", "--max-changed-pixels", "1",
                       "--max-levels", "4")
    assert halve_cli.main(argv) == 0
    assert is_half(folder / "decoder.keras") and not is_half(folder / "encoder.keras")
    assert read_card(folder)["weights"] == {"decoder.keras": "float16", "encoder.keras": "float32"}


def test_the_script_halves_a_labeler(tiny_dataset: Path, tmp_path: Path, capsys) -> None:
    folder = tmp_path / "classifier"
    make_classifier(tiny_dataset, folder)
    schema_before = (folder / "labels.json").read_bytes()
    assert halve_cli.main(script_args(folder, tiny_dataset, "--max-top-changes", "1")) == 0
    out = capsys.readouterr().out
    assert "top subCategory, 8 photos" in out and "top gender, 8 photos" in out
    assert is_half(folder / "classifier.keras") and (folder / "labels.json").read_bytes() == schema_before
    assert Labeler.load(folder).scores(np.zeros((1, 80, 60, 3), np.uint8)).dtype == np.float32
    assert json.loads((folder / "model_card.json").read_text())["weights"] == "float16"


def test_bad_folders_and_flags_get_one_line(tmp_path: Path, tiny_dataset: Path, generator_folder: Path,
                                            capsys) -> None:
    (tmp_path / "empty").mkdir()
    cases = [([str(tmp_path / "missing")], "is not a folder"),
             ([str(tmp_path / "empty")], "has neither classifier.keras nor decoder.keras"),
             ([str(generator_folder), "--only", "../x.keras"], "--only ../x.keras"),
             ([str(generator_folder), "--only", "prior.keras"], "has no prior.keras"),
             ([str(generator_folder), "--data-dir", str(tmp_path)], "has no styles.csv"),
             ([str(generator_folder), "--max-changed-pixels", "2"], "--max-changed-pixels is a share"),
             ([str(generator_folder), "--photos", "100000"], "--photos must be from 1 to 10000")]
    for argv, message in cases:
        assert halve_cli.main([*argv, "--check-only"]) == 2, argv
        assert message in one_error_line(capsys.readouterr().err)


def test_help_names_every_flag(capsys) -> None:
    assert_help_mentions(halve_cli.main, ["--check-only", "--force", "--only", "--data-dir", "--photos", "--pairs",
                                          "--seeds", "--max-levels", "--max-changed-pixels", "--max-top-changes"],
                         capsys)
