"""scripts/generate.py, scripts/evaluate_generator.py and scripts/fit_generator_prior.py with tiny
trained generators."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import REPO, SCHEMA, load_script, one_error_line, read_card
from PIL import Image

from fashiongen.errors import GeneratorError
from fashiongen.generator.generator import DECODER_FILE, ENCODER_FILE, Generator
from fashiongen.generator.prior import PRIOR_FILE
from fashiongen.model_folder import CARD_FILE

GENERATE = REPO / "scripts" / "generate.py"
generate_cli = load_script(GENERATE)
evaluate_cli = load_script(REPO / "scripts" / "evaluate_generator.py")
fit_cli = load_script(REPO / "scripts" / "fit_generator_prior.py")
REPORT_KEYS = ("val_loss", "rounded_accuracy", "mse", "ssim", "conditional_subCategory_accuracy",
               "conditional_gender_accuracy", "conditional_subCategory_accuracy_real_pairs",
               "conditional_gender_accuracy_real_pairs", "frechet_distance")


# ----------------------------------------------------------------------------- generate.py


def generate_args(model: Path, out: Path, *extra: str) -> list[str]:
    return ["--model", str(model), "--out", str(out), "--sub-category", "Shoes", "--gender", "Women", *extra]


def test_generate_writes_a_grid_of_n_images_at_scale(models, tmp_path: Path) -> None:
    out = tmp_path / "grid.png"
    assert generate_cli.main(generate_args(models.conv, out, "--seed", "7", "--n", "5", "--scale", "3")) == 0
    grid = np.asarray(Image.open(out).convert("RGB"))
    columns, rows, gap = math.ceil(math.sqrt(5)), 2, 2  # 3 x 2 cells, 2-pixel gaps
    assert grid.shape == (rows * 80 * 3 + (rows - 1) * gap, columns * 60 * 3 + (columns - 1) * gap, 3)
    images = Generator.load(models.conv).generate("Shoes", "Women", 7, 5)
    for index in range(5):  # every cell is its image, enlarged 3 times
        top, left = (index // columns) * (80 * 3 + gap), (index % columns) * (60 * 3 + gap)
        cell = grid[top : top + 240, left : left + 180]
        np.testing.assert_array_equal(cell, images[index].repeat(3, axis=0).repeat(3, axis=1))

    assert generate_cli.main(generate_args(models.conv, out, "--n", "4", "--columns", "4", "--scale", "1")) == 0
    assert Image.open(out).size == (4 * 60 + 3 * gap, 80)


def test_generate_gives_the_same_bytes_every_run(models, tmp_path: Path) -> None:
    args = generate_args(models.paper, tmp_path / "a.png", "--seed", "-3", "--n", "3")
    result = subprocess.run([sys.executable, str(GENERATE), *args], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert generate_cli.main(generate_args(models.paper, tmp_path / "b.png", "--seed", "-3", "--n", "3")) == 0
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    assert generate_cli.main(generate_args(models.paper, tmp_path / "c.png", "--seed", "3", "--n", "3")) == 0
    assert (tmp_path / "c.png").read_bytes() != (tmp_path / "a.png").read_bytes()


def test_generate_unknown_sub_category_lists_the_valid_ones(models, tmp_path: Path, capsys) -> None:
    args = ["--model", str(models.conv), "--out", str(tmp_path / "x.png"), "--sub-category", "Socks", "--gender", "Men"]
    assert generate_cli.main(args) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "Socks" in line and all(name in line for name in Generator.load(models.conv).schema.sub_categories)
    assert not (tmp_path / "x.png").exists()


def test_generate_without_a_model_is_one_line(tmp_path: Path, capsys) -> None:
    assert generate_cli.main(generate_args(tmp_path / "nowhere", tmp_path / "x.png")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(tmp_path / "nowhere" / ENCODER_FILE) in line and "train_generator.py" in line


@pytest.fixture
def no_generation(monkeypatch) -> None:
    """Fail the test if the generator draws anything: the checks must come before the work."""

    def generation_started(*args, **kwargs):
        raise AssertionError("images were generated although the output cannot be written")

    monkeypatch.setattr(Generator, "generate", generation_started)


@pytest.mark.parametrize("where", ["not an image suffix", "existing folder", "parent is a file",
                                   "folder that cannot be made"])
def test_generate_refuses_a_bad_out_before_the_work(models, tmp_path: Path, capsys, no_generation,
                                                    where: str) -> None:
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "folder.png").mkdir()
    out = {"not an image suffix": tmp_path / "x.txt",
           "existing folder": tmp_path / "folder.png",
           "parent is a file": tmp_path / "a-file" / "grid.png",  # as root, no chmod makes a place unwritable
           "folder that cannot be made": Path("/proc/fashiongen-no-such-folder/grid.png")}[where]
    assert generate_cli.main(generate_args(models.conv, out)) == 2
    assert str(out) in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "x.txt").exists()


@pytest.mark.parametrize("extra, message", [
    (("--scale", "1000"), "--scale is limited to 16"),
    (("--scale", "4", "--n", "1024"), "over the limit of 50"),  # each bound alone allows it
    (("--n", "1025"), "--n is limited to 1024"),
])
def test_generate_bounds_the_picture_before_the_work(models, tmp_path: Path, capsys, no_generation,
                                                     extra: tuple[str, ...], message: str) -> None:
    with pytest.raises(SystemExit) as exited:
        generate_cli.main(generate_args(models.conv, tmp_path / "grid.png", *extra))
    assert exited.value.code == 2
    assert message in capsys.readouterr().err.strip().splitlines()[-1]
    assert not (tmp_path / "grid.png").exists()


def test_generate_largest_allowed_grid_and_help(models, tmp_path: Path, capsys) -> None:
    out = tmp_path / "deep" / "grid.webp"  # a missing folder is made; any image suffix of the list
    assert generate_cli.main(generate_args(models.conv, out, "--n", "2", "--scale", "16")) == 0
    assert Image.open(out).size == (2 * 60 * 16 + 2, 80 * 16)
    with pytest.raises(SystemExit):
        generate_cli.main(["--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "at most 1024" in help_text and "at most 16" in help_text and "at most 50 megapixels" in help_text


@pytest.fixture(scope="module")
def colour_model(tmp_path_factory) -> Path:
    """An untrained colour-controlled conv generator: random weights, so the colour columns change the pixels."""
    from fashiongen.generator.cvae import build_generator
    from fashiongen.generator.generator import COLOUR
    from fashiongen.schema import LabelSchema

    schema = LabelSchema(("Shoes", "Topwear"), ("Men", "Women"), ((COLOUR, ("Black", "White")),))
    model = build_generator("conv", schema.size, latent_dim=16)
    folder = tmp_path_factory.mktemp("colour") / "generator"
    Generator(model.encoder, model.decoder, schema, "conv").save(folder)
    return folder


def test_generate_a_colour(colour_model, tmp_path: Path, capsys) -> None:
    grids = {}
    for name, colour in (("black", "Black"), ("white", "White"), ("black-again", "Black"), ("any", "any")):
        out = tmp_path / f"{name}.png"
        assert generate_cli.main(generate_args(colour_model, out, "--colour", colour, "--n", "3")) == 0
        grids[name] = np.asarray(Image.open(out).convert("RGB"))
    assert "3 x Shoes / Women / Black, seed 0" in capsys.readouterr().out
    np.testing.assert_array_equal(grids["black"], grids["black-again"])
    assert not np.array_equal(grids["black"], grids["white"])
    expected = Generator.load(colour_model).generate("Shoes", "Women", 0, 3, "White")
    np.testing.assert_array_equal(grids["white"][:80, :60], expected[0].repeat(2, 0).repeat(2, 1)[:80, :60])


@pytest.mark.parametrize("which, colour, message", [
    ("colour", "Purple", "--colour Purple: unknown colour; valid: any, Black, White"),
    ("conv", "Black", "--colour Black: this generator has no colour control; leave --colour out"),
])
def test_generate_a_colour_the_generator_lacks_is_one_line(models, colour_model, tmp_path: Path, capsys,
                                                           which: str, colour: str, message: str) -> None:
    model = colour_model if which == "colour" else models.conv
    assert generate_cli.main(generate_args(model, tmp_path / "x.png", "--colour", colour)) == 2
    assert one_error_line(capsys.readouterr().err) == f"error: {message}"
    assert not (tmp_path / "x.png").exists()


def test_generate_picks_a_shipped_generator_by_name(models, tmp_path: Path, capsys, monkeypatch) -> None:
    from fashiongen.model_folder import Variant

    monkeypatch.setitem(generate_cli.VARIANTS, "paper", Variant("paper", models.paper, "stand-in"))
    monkeypatch.setitem(generate_cli.VARIANTS, "smooth", Variant("smooth", tmp_path / "nowhere", "not installed"))
    named = ["--generator", "paper", "--out", str(tmp_path / "named.png"), "--sub-category", "Shoes", "--gender", "Men"]
    assert generate_cli.main(named) == 0
    assert generate_cli.main(generate_args(models.paper, tmp_path / "folder.png")[:-2] + ["--gender", "Men"]) == 0
    assert (tmp_path / "named.png").read_bytes() == (tmp_path / "folder.png").read_bytes()
    named[1] = "smooth"
    assert generate_cli.main(named) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: --generator smooth: this checkout has no such generator") and "nowhere" in line
    with pytest.raises(SystemExit) as exited:  # a name and a folder at once
        generate_cli.main(named + ["--model", str(models.paper)])
    assert exited.value.code == 2


# ----------------------------------------------------------------------------- evaluate_generator.py


def evaluate_args(tiny, models, **folders: Path) -> list[str]:
    folders = {"paper": models.paper, "default": models.conv, **folders}
    return ["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache), "--classifier", str(tiny.classifier),
            "--paper", str(folders["paper"]), "--default", str(folders["default"]), "--seeds-per-pair", "2"]


@pytest.fixture
def tiny_shipped(models, tmp_path: Path, monkeypatch) -> tuple:
    """The tiny generators in place of the shipped ones (whose schema the tiny classifier does not
    share), with the smooth one's folder absent."""
    shipped = (("default", models.conv), ("smooth", tmp_path / "no-smooth"), ("paper", models.paper))
    monkeypatch.setattr(evaluate_cli, "SHIPPED", shipped)
    return shipped


def test_evaluate_writes_both_reports(tiny, models, tiny_shipped, tmp_path: Path, capsys) -> None:
    out = tmp_path / "reports" / "generators.json"
    assert evaluate_cli.main([*evaluate_args(tiny, models), "--json", str(out)]) == 0
    reports = json.loads(out.read_text())
    assert reports["split"] == {"kind": "random", "seed": 42, "n_validation": 1}
    for name, folder in (("paper", models.paper), ("default", models.conv)):
        report = reports[name]
        assert [key for key in REPORT_KEYS if key not in report] == []
        # one validation image: no covariance, no k-NN ball; reported as such, not NaN
        assert report["frechet_distance"] is None and report["knn_precision"] is None
        assert 0 <= report["rounded_accuracy"] <= 1 and report["mse"] > 0 and -1 <= report["ssim"] <= 1
        assert 0 <= report["conditional_subCategory_accuracy"] <= 1
        assert 0 <= report["conditional_gender_accuracy"] <= 1
        # the same model on the same validation image as its training run measured (codes are sampled)
        assert report["val_loss"] == pytest.approx(read_card(folder)["metrics"]["validation"]["val_loss"], abs=0.02)
    printed = capsys.readouterr().out
    assert "n/a" in printed and f"wrote {out}" in printed


def test_evaluate_compares_named_generators_with_the_floor(tiny, models, tiny_shipped, tmp_path: Path,
                                                           capsys) -> None:
    out = tmp_path / "generators.json"
    argv = [*evaluate_args(tiny, models)[:6], "--seeds-per-pair", "2", "--generator", f"mine={models.conv}",
            "--generator", f"theirs={models.paper}", "--json", str(out)]
    assert evaluate_cli.main(argv) == 0
    reports = json.loads(out.read_text())
    assert list(reports) == ["mine", "theirs", "real_floor", "notes", "split"]  # the shipped ones left out
    floor = reports["real_floor"]
    assert floor["n"] == 1 and sum(floor["matched_by"].values()) == 1
    assert floor["frechet_distance"] is None and floor["sharpness_ratio"] > 0 and floor["lattice_ratio"] > 0
    assert set(floor["real_validation_conditional_accuracy"]) >= {"subCategory_accuracy", "baseColour_accuracy"}
    for report in (reports["mine"], reports["theirs"]):
        assert {"density", "coverage", "sharpness_ratio", "lattice_ratio", "texture_ratio", "pattern_ratio",
                "pattern_subCategory", "conditional_baseColour_accuracy", "real_floor_frechet_distance",
                "real_floor_knn_precision", "real_floor_knn_recall"} <= set(report)
        assert report["conditional_baseColour_accuracy"] is None  # no colour control
        assert report["pattern_ratio"] is None  # no sub-category has 50 validation photos here
    header, *rows = capsys.readouterr().out.splitlines()
    assert header.split() == ["mine", "theirs", "real", "photos", "(floor)"]
    sharpness = next(row for row in rows if row.startswith("sharpness"))
    assert sharpness.split()[-3:] == [f"{reports[name]['sharpness_ratio']:.2f}" for name in ("mine", "theirs")] + [
        f"{floor['sharpness_ratio']:.2f}"]


def test_the_table_sets_real_photos_beside_generated_images_on_the_same_pairs(capsys) -> None:
    """Real photos are scored on the pairs the validation part has, so their conditional accuracy
    stands on the rows over those pairs, not on the rows over every pair generation draws."""
    report = {"conditional_subCategory_accuracy": 0.890, "conditional_subCategory_accuracy_real_pairs": 0.942,
              "frechet_distance": 3.0}
    floor = {"n": 10, "matched_by": {"any": 10}, "frechet_distance": 1.5,
             "real_validation_conditional_accuracy": {"subCategory_accuracy": 0.930, "gender_accuracy": 0.725,
                                                      "baseColour_accuracy": None, "pairs": 58}}
    evaluate_cli.print_table({"mine": report}, floor)
    rows = capsys.readouterr().out.splitlines()
    all_pairs = next(row for row in rows if row.startswith("conditional subCategory acc., all pairs"))
    same_pairs = rows[rows.index(all_pairs) + 1]
    assert all_pairs.split()[-2:] == ["0.890", "n/a"]
    assert " ".join(same_pairs.split()[:6]) == "on the pairs real photos have" and same_pairs.split()[-2:] == [
        "0.942", "0.930"]
    assert "over the 58 pairs they have" in rows[-1]


def test_evaluate_defaults_to_the_shipped_generators_that_exist(tiny, models, tiny_shipped, tmp_path: Path,
                                                                capsys) -> None:
    out = tmp_path / "generators.json"
    argv = [*evaluate_args(tiny, models)[:6], "--seeds-per-pair", "2", "--json", str(out)]
    assert evaluate_cli.main(argv) == 0
    assert list(json.loads(out.read_text()))[:2] == ["default", "paper"]  # no smooth folder: no smooth column
    # --default replaces the shipped default's folder, the others stay
    assert evaluate_cli.main([*argv, "--default", str(models.paper)]) == 0
    reports = json.loads(out.read_text())
    assert list(reports)[:2] == ["default", "paper"] and reports["default"]["mse"] == reports["paper"]["mse"]


@pytest.mark.parametrize("generators, message", [
    (["--generator", "no-folder"], "NAME=FOLDER"),
    (["--generator", "=x"], "NAME=FOLDER"),
    (["--generator", "a=x", "--generator", "a=y"], "twice"),
    (["--generator", "real_floor=x"], "taken by the report"),
    (["--generator", "default=x", "--default", "y"], "keep one"),
])
def test_evaluate_refuses_bad_generator_names_in_one_line(tmp_path: Path, capsys, monkeypatch, generators,
                                                          message: str) -> None:
    monkeypatch.setattr(evaluate_cli.Labeler, "load", lambda *args: pytest.fail("loaded despite a bad name"))
    assert evaluate_cli.main(["--data-dir", str(tmp_path), *generators]) == 2
    assert message in one_error_line(capsys.readouterr().err)


@pytest.mark.parametrize("which", ["paper", "default"])
def test_evaluate_with_a_missing_model_is_one_line(tiny, models, tiny_shipped, tmp_path: Path, capsys,
                                                   which: str) -> None:
    missing = tmp_path / "no-model"
    assert evaluate_cli.main(evaluate_args(tiny, models, **{which: missing})) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(missing / ENCODER_FILE) in line and "train_generator.py" in line


def test_evaluate_refuses_an_unwritable_json_before_the_work(tmp_path: Path, capsys, monkeypatch) -> None:
    def no_loading(*args, **kwargs):
        raise AssertionError("the evaluation started although its report cannot be written")

    monkeypatch.setattr(evaluate_cli.Labeler, "load", no_loading)
    (tmp_path / "a-file").write_text("x")
    out = tmp_path / "a-file" / "generators.json"  # as root, no chmod makes a place unwritable
    argv = ["--data-dir", str(tmp_path), "--classifier", str(tmp_path), "--paper", str(tmp_path),
            "--default", str(tmp_path), "--json", str(out)]
    assert evaluate_cli.main(argv) == 2
    assert str(out) in one_error_line(capsys.readouterr().err)


# ----------------------------------------------------------------------------- fit_generator_prior.py


def test_script_fits_and_records_the_prior_in_place(models, tiny, tmp_path: Path, capsys) -> None:
    folder = shutil.copytree(models.conv, tmp_path / "conv")
    (folder / PRIOR_FILE).unlink()  # train_generator.py fitted one: start without it
    before = Generator.load(folder)
    assert before.prior is None
    argv = ["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache), "--generator", str(folder)]
    keras_files = {name: (folder / name).read_bytes() for name in (ENCODER_FILE, DECODER_FILE)}
    assert fit_cli.main(argv) == 0
    assert keras_files == {name: (folder / name).read_bytes() for name in keras_files}
    after = Generator.load(folder)
    card = json.loads((folder / CARD_FILE).read_text())
    assert card["latent_prior"]["pairs"] == len(after.prior.counts) >= 2
    assert card["latent_prior"]["command"].startswith("python scripts/fit_generator_prior.py --data-dir")
    assert card["metrics"] == json.loads((models.conv / CARD_FILE).read_text())["metrics"]
    np.testing.assert_array_equal(after.prior.means, Generator.load(models.conv).prior.means)  # = training's fit
    assert f"{len(after.prior.counts)} label pairs" in capsys.readouterr().out


def test_script_keys_a_colour_generators_prior_by_colour(models, tiny, tmp_path: Path, capsys) -> None:
    from fashiongen.generator.cvae import build_generator
    from fashiongen.schema import LabelSchema

    schema = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (("baseColour", ("Black", "Blue")),))
    model = build_generator("conv", schema.size, latent_dim=8)
    folder = tmp_path / "colour"
    Generator(model.encoder, model.decoder, schema, "conv").save(folder)
    argv = ["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache), "--by-colour"]
    assert fit_cli.main([*argv, "--generator", str(folder), "--colour-shrinkage", "4"]) == 0
    prior = Generator.load(folder).prior
    assert prior.keyed_by_colour and prior.conditions.shape[1] == schema.size
    assert prior.conditions[:, -1].all()  # the tiny photos are all Blue: every key holds it
    card = read_card(folder)["latent_prior"]
    assert card["keyed_by_colour"] is True and card["colour_shrinkage"] == 4.0
    with pytest.raises(SystemExit):
        fit_cli.main([*argv, "--generator", str(folder), "--colour-shrinkage", "-1"])
    assert "--colour-shrinkage must be at least 0" in capsys.readouterr().err
    conv = shutil.copytree(models.conv, tmp_path / "conv")
    prior_bytes = (conv / PRIOR_FILE).read_bytes()
    capsys.readouterr()
    assert fit_cli.main([*argv, "--generator", str(conv)]) == 2
    assert "has no colour control" in one_error_line(capsys.readouterr().err)
    assert (conv / PRIOR_FILE).read_bytes() == prior_bytes


def test_script_refuses_the_paper_generator_in_one_line(models, tiny, capsys) -> None:
    argv = ["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache), "--generator", str(models.paper)]
    assert fit_cli.main(argv) == 2
    assert "N(0, I)" in one_error_line(capsys.readouterr().err)
    assert not (models.paper / PRIOR_FILE).exists()


def test_script_without_a_generator_is_one_line(tiny, tmp_path: Path, capsys) -> None:
    argv = ["--data-dir", str(tiny.data_dir), "--generator", str(tmp_path / "nothing")]
    assert fit_cli.main(argv) == 2
    assert "missing" in one_error_line(capsys.readouterr().err)


def test_the_refit_command_mends_a_corrupt_prior(models, tiny, tmp_path: Path) -> None:
    folder = shutil.copytree(models.conv, tmp_path / "conv")
    (folder / PRIOR_FILE).write_bytes(b"not a zip")
    with pytest.raises(GeneratorError, match="corrupt"):
        Generator.load(folder)
    assert fit_cli.main(["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache),
                         "--generator", str(folder)]) == 0
    assert Generator.load(folder).prior is not None


@pytest.mark.parametrize("field, value", [("kind", "x"), ("seed", []), ("seed", "7"), ("seed", True)])
def test_a_card_split_that_is_no_split_is_one_line(models, tiny, tmp_path: Path, capsys, field: str,
                                                   value) -> None:
    folder = shutil.copytree(models.conv, tmp_path / "conv")
    card = read_card(folder)
    card["split"][field] = value
    (folder / CARD_FILE).write_text(json.dumps(card))
    prior_bytes = (folder / PRIOR_FILE).read_bytes()
    argv = ["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache), "--generator", str(folder)]
    assert fit_cli.main(argv) == 2
    line = one_error_line(capsys.readouterr().err)
    assert str(folder / CARD_FILE) in line and f"split.{field}" in line
    assert (folder / PRIOR_FILE).read_bytes() == prior_bytes
