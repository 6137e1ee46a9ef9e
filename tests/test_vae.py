"""The generator model: both architectures against their spec, the paper's loss computed by hand,
KL warm-up, sample weights, and `Generator` (save/load, deterministic generation, errors)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import SCHEMA, fixed_batch, force_mean_codes, fresh_test_step, one_error_line, run_test_step

from fashiongen.errors import GeneratorError
from fashiongen.generator.architectures import PIXEL_VALUES
from fashiongen.generator.cvae import CVAE, LOG_VAR_LIMIT, build_generator
from fashiongen.generator.generator import CONFIG_FILE, DECODER_FILE, ENCODER_FILE, Generator, to_uint8
from fashiongen.generator.judge import LabelConsistency
from fashiongen.generator.prior import LatentPrior
from fashiongen.model_folder import CARD_FILE, GENERATOR, SCHEMA_FILE
from fashiongen.schema import LabelSchema

REPO = Path(__file__).resolve().parents[1]
FULL_LABELS = 25




def uint8_batch(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 80, 60, 3), dtype=np.uint8)










@pytest.fixture(scope="module")
def models() -> dict[str, CVAE]:
    return {"paper": build_generator("paper", SCHEMA.size),
            "conv": build_generator("conv", SCHEMA.size, latent_dim=16)}


@pytest.fixture(scope="module")
def saved(models, tmp_path_factory: pytest.TempPathFactory):
    """A conv Generator, saved once and loaded back."""
    model = models["conv"]
    generator = Generator(model.encoder, model.decoder, SCHEMA, "conv", {"model": "generator", "arch": "conv"})
    folder = tmp_path_factory.mktemp("generator") / "model"
    generator.save(folder)
    return generator, folder, Generator.load(folder)


# ----------------------------------------------------------------------------- architectures


def describe(layer: keras.layers.Layer) -> tuple:
    """What the spec fixes about a layer: its kind, size, kernel/pool and activation."""
    kind = type(layer).__name__
    if isinstance(layer, keras.layers.Conv2D):
        return kind, layer.filters, layer.kernel_size, layer.activation.__name__
    if isinstance(layer, keras.layers.MaxPooling2D):
        return kind, layer.pool_size, layer.strides
    if isinstance(layer, keras.layers.Dense):
        return kind, layer.units, layer.activation.__name__, layer.kernel.shape
    return (kind,)


def body(model: keras.Model) -> list[tuple]:
    return [describe(layer) for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]


def test_paper_encoder_is_the_papers() -> None:
    model = build_generator("paper", FULL_LABELS)
    expected, channels = [], 3
    for filters in (8, 16, 32, 64):
        expected += [("BatchNormalization",), ("Conv2D", filters, (3, 3), "relu"), ("MaxPooling2D", (3, 3), (3, 3))]
        channels = filters
    expected += [("Flatten",), ("Dense", 150, "selu", (channels, 150)),  # 80x60 pooled 4 times by 3: 1x1x64
                 ("Dense", 100, "selu", (150, 100)), ("Dense", 100, "linear", (100, 100)),
                 ("Dense", 100, "linear", (100, 100))]
    assert body(model.encoder) == expected
    assert [layer.name for layer in model.encoder.layers[-2:]] == ["mean", "log_var"]
    assert model.encoder.input_shape == (None, 80, 60, 3)  # it sees no labels
    assert [tuple(t.shape) for t in model.encoder.outputs] == [(None, 100), (None, 100)]
    kernels = [model.encoder.get_layer(f"conv{block}").kernel.shape for block in (1, 2, 3, 4)]
    assert kernels == [(3, 3, 3, 8), (3, 3, 8, 16), (3, 3, 16, 32), (3, 3, 32, 64)]


def test_paper_decoder_is_the_papers() -> None:
    model = build_generator("paper", FULL_LABELS)
    assert [tuple(t.shape) for t in model.decoder.inputs] == [(None, 100), (None, FULL_LABELS)]
    assert body(model.decoder) == [
        ("Concatenate",), ("Dense", 100, "selu", (125, 100)), ("Dense", 150, "selu", (100, 150)),
        ("Dense", 14400, "sigmoid", (150, 14400)), ("Reshape",),
    ]
    assert model.decoder.output_shape == (None, 80, 60, 3)
    assert model.latent_dim == 100


def test_conv_arch_takes_labels_in_the_encoder_and_decodes_unit_images(models) -> None:
    model = models["conv"]
    assert [tuple(t.shape) for t in model.encoder.inputs] == [(None, 80, 60, 3), (None, SCHEMA.size)]
    images, conditions = fixed_batch(2)
    mean, _ = model.encode(images, conditions)
    other_mean, _ = model.encode(images, conditions[::-1])
    assert not np.allclose(np.asarray(mean), np.asarray(other_mean))  # the labels reach the encoder
    codes = np.random.default_rng(1).normal(0, 10, (4, model.latent_dim)).astype(np.float32)  # far-out codes
    out = np.asarray(model.decoder([codes, np.repeat(conditions[:1], 4, axis=0)]))
    assert out.shape == (4, 80, 60, 3) and out.min() >= 0.0 and out.max() <= 1.0
    assert np.asarray(model((images, conditions))).shape == (2, 80, 60, 3)


def test_unknown_arch_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="conv, paper"):
        build_generator("gan", SCHEMA.size)


# ----------------------------------------------------------------------------- the paper's loss


@pytest.mark.parametrize("arch", ["paper", "conv"])
def test_tracked_loss_is_the_papers_definition(models, arch: str) -> None:
    """test_step samples code = mean + exp(log_var / 2) * noise, the noise drawn statelessly from
    the model's SeedGenerator state. A twin SeedGenerator given that same state draws the same
    noise, so NumPy can recompute the loss from the very code test_step decodes."""
    model = models[arch]
    images, conditions = fixed_batch(3, seed=7)
    twin = keras.random.SeedGenerator(0)
    twin.state.assign(model.seed_generator.state.value)
    mean, log_var = (np.asarray(t, np.float64) for t in model.encode(images, conditions))
    noise = np.asarray(keras.random.normal(mean.shape, seed=twin), np.float64)
    code = (mean + np.exp(0.5 * log_var) * noise).astype(np.float32)
    decoded = np.asarray(model.decoder([code, conditions]), np.float64)

    logs = fresh_test_step(model, images, conditions)

    x = images.astype(np.float64)
    p = np.clip(decoded, 1e-7, 1 - 1e-7)
    reconstruction = np.mean(-(x * np.log(p) + (1 - x) * np.log(1 - p)))  # over all 80*60*3 values
    latent = np.mean(-0.5 * np.sum(1 + log_var - np.exp(log_var) - mean**2, axis=1)) / 14400
    assert logs["reconstruction_loss"] == pytest.approx(reconstruction, rel=1e-5)
    assert logs["latent_loss"] == pytest.approx(latent, rel=1e-4, abs=1e-8)
    assert logs["loss"] == pytest.approx(reconstruction + latent, rel=1e-5)
    # a value within float32 rounding of 0.5 may round either way: allow a couple of the 43,200
    assert logs["rounded_accuracy"] == pytest.approx(np.mean(np.round(x) == np.round(decoded)), abs=1e-4)


def test_kl_weight_warms_up_for_conv_and_is_constant_for_paper() -> None:
    conv = build_generator("conv", SCHEMA.size, latent_dim=4, kl_weight=0.5, kl_warmup_steps=10)
    paper = build_generator("paper", SCHEMA.size, latent_dim=4, kl_weight=0.5, kl_warmup_steps=10)
    for steps, warming in [(0, 0.0), (3, 0.15), (5, 0.25), (10, 0.5), (40, 0.5)]:
        conv.steps_seen.assign(float(steps))
        paper.steps_seen.assign(float(steps))
        assert float(conv._kl_weight_now()) == pytest.approx(warming)
        assert float(paper._kl_weight_now()) == pytest.approx(0.5)
    no_warmup = build_generator("conv", SCHEMA.size, latent_dim=4, kl_weight=0.5)
    assert float(no_warmup._kl_weight_now()) == pytest.approx(0.5)


@pytest.mark.parametrize("arch", ["paper", "conv"])
def test_a_few_steps_overfit_a_tiny_batch(arch: str) -> None:
    keras.utils.set_random_seed(0)
    model = build_generator(arch, SCHEMA.size, latent_dim=8, kl_warmup_steps=5)
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    images, conditions = fixed_batch(4, seed=3)
    history = model.fit(images, conditions, batch_size=4, epochs=25, verbose=0, shuffle=False).history
    assert model.steps_seen.numpy() == 25  # one train_step per epoch, counted for the warm-up
    assert history["loss"][-1] < history["loss"][0] - 0.02, history["loss"]
    assert history["rounded_accuracy"][-1] > history["rounded_accuracy"][0]
    # the encoder trained in training mode too: its BatchNormalization moving averages moved
    assert np.abs(model.encoder.get_layer("bn1").moving_mean.numpy()).max() > 0


def test_a_lower_kl_weight_lets_the_codes_carry_more_of_each_image() -> None:
    """The KL weight trades the codes' information (the KL term) for reconstruction: the same model,
    seed and steps at a tenth of the weight end with a larger KL and a closer fit. Flat-coloured
    images whose colour the labels do not give: only the code can carry it."""
    _, conditions = fixed_batch(8, seed=4)
    colours = np.random.default_rng(4).uniform(0.1, 0.9, (8, 1, 1, 3))
    images = np.broadcast_to(colours, (8, 80, 60, 3)).astype(np.float32)
    final = {}
    for weight in (1.0, 0.1):
        keras.utils.set_random_seed(0)
        model = build_generator("conv", SCHEMA.size, latent_dim=8, kl_weight=weight)
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        history = model.fit(images, conditions, batch_size=8, epochs=60, verbose=0, shuffle=False).history
        # over the last 10 steps: a tiny batch's KL swings from step to step
        final[weight] = [np.mean(history[name][-10:]) for name in ("latent_loss", "reconstruction_loss")]
    assert final[0.1][0] > 1.5 * final[1.0][0], final
    assert final[0.1][1] < final[1.0][1], final


def test_zero_weight_rows_change_no_loss_term() -> None:
    """Padding rows (weight 0) that tf.distribute adds to split a batch evenly over replicas.
    Sampling is switched off (force_mean_codes) so both batches decode the same codes."""
    model = force_mean_codes(build_generator("paper", SCHEMA.size, latent_dim=8))
    images, conditions = fixed_batch(4, seed=5)
    alone = fresh_test_step(model, images[:2], conditions[:2])
    padded = fresh_test_step(model, images, conditions, np.array([1, 1, 0, 0], np.float32))
    for name, value in alone.items():
        assert padded[name] == pytest.approx(value, rel=1e-5, abs=1e-4 if name == "rounded_accuracy" else 0)

    # a replica whose share of the batch is only padding reports its terms too: they must not count
    fresh_test_step(model, images[:2], conditions[:2])
    with_empty_replica = run_test_step(model, images[2:], conditions[2:], np.zeros(2, np.float32))
    assert with_empty_replica == pytest.approx(alone, rel=1e-6)
    # and batches count by their rows: the epoch's numbers are means over images
    whole = fresh_test_step(model, images[:3], conditions[:3])
    fresh_test_step(model, images[:1], conditions[:1])
    in_two_batches = run_test_step(model, images[1:3], conditions[1:3])
    assert in_two_batches["loss"] == pytest.approx(whole["loss"], rel=1e-5)


# ----------------------------------------------------------------------------- Generator


def test_save_load_round_trip_generates_the_same_pixels(saved) -> None:
    generator, folder, loaded = saved
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [ENCODER_FILE, DECODER_FILE, CONFIG_FILE, SCHEMA_FILE, CARD_FILE])
    assert loaded.schema == SCHEMA and loaded.arch == "conv" and loaded.latent_dim == 16
    assert loaded.card == {"model": "generator", "arch": "conv"}
    np.testing.assert_array_equal(loaded.generate("Shoes", "Women", 3, 4), generator.generate("Shoes", "Women", 3, 4))


def test_generate_is_deterministic_per_seed(saved) -> None:
    _, _, generator = saved
    first = generator.generate("Bags", "Men", 11, 3)
    assert first.dtype == np.uint8 and first.shape == (3, 80, 60, 3)
    np.testing.assert_array_equal(generator.generate("Bags", "Men", 11, 3), first)
    assert not np.array_equal(generator.generate("Bags", "Men", 12, 3), first)
    negative, huge = generator.generate("Bags", "Men", -11, 3), generator.generate("Bags", "Men", 2**80 + 11, 3)
    for images in (negative, huge):
        assert images.dtype == np.uint8 and images.shape == (3, 80, 60, 3)
        assert not np.array_equal(images, first)  # -11 and 2**80 + 11 are seeds of their own
    np.testing.assert_array_equal(generator.generate("Bags", "Men", -11, 3), negative)


def test_generate_is_the_same_in_another_process(saved) -> None:
    _, folder, generator = saved
    cases = [("Watches", "Girls", 0, 2), ("Topwear", "Unisex", -5, 1), ("Dress", "Women", 2**70, 3)]
    program = (
        "import hashlib, json, sys\n"
        "from fashiongen.generator.generator import Generator\n"
        "g = Generator.load(sys.argv[1])\n"
        "print(json.dumps([hashlib.sha256(g.generate(*case).tobytes()).hexdigest() "
        "for case in json.loads(sys.argv[2])]))\n"
    )
    result = subprocess.run([sys.executable, "-c", program, str(folder), json.dumps(cases)], capture_output=True,
                            text=True, cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    here = [hashlib.sha256(generator.generate(*case).tobytes()).hexdigest() for case in cases]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == here


@pytest.mark.parametrize(("sub_category", "gender", "valid"), [
    ("Socks", "Men", SCHEMA.sub_categories), ("Shoes", "Aliens", SCHEMA.genders)])
def test_unknown_names_list_the_valid_ones(saved, sub_category: str, gender: str, valid) -> None:
    _, _, generator = saved
    with pytest.raises(GeneratorError) as raised:
        generator.generate(sub_category, gender, 0)
    assert all(name in str(raised.value) for name in valid), raised.value


@pytest.mark.parametrize("n", [0, -2])
def test_fewer_than_one_image_is_an_error(saved, n: int) -> None:
    with pytest.raises(GeneratorError, match="at least 1"):
        saved[2].generate("Shoes", "Men", 0, n)


def test_reconstruct_gives_uint8_images_of_the_mean_code(saved, models) -> None:
    _, _, generator = saved
    images = uint8_batch(2, seed=9)
    conditions = fixed_batch(2)[1]
    both = generator.reconstruct(images, conditions)
    one = generator.reconstruct(images[0], conditions[0])
    assert both.dtype == one.dtype == np.uint8
    assert both.shape == (2, 80, 60, 3)
    assert one.shape == (1, 80, 60, 3)  # one image: a batch of one (app_pages/reconstruct.py takes [0])
    # a batch of one and of two take different oneDNN kernels: a value at a .5 boundary may round
    # either way (seen once in CI, 1 pixel of 14,400 one level apart)
    assert np.abs(one[0].astype(int) - both[0].astype(int)).max() <= 1
    # no sampling: the CVAE's own forward pass (code = mean) gives the same pixels
    expected = to_uint8(np.asarray(models["conv"]((images / np.float32(255), conditions))))
    assert np.abs(both.astype(int) - expected.astype(int)).max() <= 1  # float32 rounding at a .5 boundary


def test_encode_is_the_encoders_mean_and_log_variance_in_any_batch_size(saved) -> None:
    _, _, generator = saved
    images, conditions = uint8_batch(5, seed=3), fixed_batch(5)[1]
    mean, log_var = (np.asarray(t) for t in generator.encoder((images / np.float32(255), conditions)))
    for batch_size in (2, 512):  # 2: three batches, the last a single image
        codes, log_vars = generator.encode(images, conditions, batch_size)
        assert codes.shape == log_vars.shape == (5, generator.latent_dim)
        np.testing.assert_allclose(codes, mean, atol=1e-5)
        np.testing.assert_allclose(log_vars, log_var, atol=1e-5)


def test_conditions_from_scores(saved) -> None:
    """paper: the classifier's scores as they are; conv: each head's argmax, one-hot."""
    conv = saved[2]
    paper = Generator(conv.encoder, conv.decoder, SCHEMA, "paper")
    scores = np.array([[0.1, 0.7, 0.2, 0, 0, 0, 0.3, 0.6, 0, 0, 0.1]], np.float32)
    np.testing.assert_array_equal(conv.conditions_from_scores(scores), [[0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0]])
    np.testing.assert_array_equal(paper.conditions_from_scores(scores), scores)


def test_conditions_from_a_catalog_labelers_scores_take_each_head_by_name(saved) -> None:
    """A catalog labeler's scores have more heads after the paper's two; the argmax over "all
    columns after the sub-categories" took a colour for the gender (and a 29-wide row for a 11-wide
    generator) before conditions were mapped head by head."""
    conv = saved[2]
    catalog = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (("baseColour", ("Black", "White")),))
    scores = np.array([[0.1, 0.7, 0.2, 0, 0, 0, 0.3, 0.6, 0, 0, 0.1, 0.05, 0.95]], np.float32)
    np.testing.assert_array_equal(conv.conditions_from_scores(scores, catalog), [[0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0]])
    coloured = Generator(conv.encoder, conv.decoder, catalog, "conv")
    np.testing.assert_array_equal(coloured.conditions_from_scores(scores, catalog),
                                  [[0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1]])
    # the labeler without a colour head: the colour stays unknown (zeros)
    np.testing.assert_array_equal(coloured.conditions_from_scores(scores[:, :11], SCHEMA),
                                  [[0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0]])
    other = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (("baseColour", ("White", "Black")),))
    with pytest.raises(GeneratorError, match="baseColour classes are not the generator's"):
        coloured.conditions_from_scores(scores, other)


@pytest.mark.parametrize("name", [ENCODER_FILE, DECODER_FILE, CONFIG_FILE, SCHEMA_FILE])
def test_missing_file_names_it_and_the_training_script(saved, tmp_path: Path, name: str) -> None:
    folder = shutil.copytree(saved[1], tmp_path / "model")
    (folder / name).unlink()
    with pytest.raises(GeneratorError) as raised:
        Generator.load(folder)
    assert str(folder / name) in str(raised.value) and "scripts/train_generator.py" in str(raised.value)


@pytest.mark.parametrize("name", [ENCODER_FILE, CARD_FILE])
def test_corrupt_file_names_it_and_the_training_script(saved, tmp_path: Path, name: str) -> None:
    folder = shutil.copytree(saved[1], tmp_path / "model")
    (folder / name).write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(GeneratorError) as raised:
        Generator.load(folder)
    assert str(folder / name) in str(raised.value) and "scripts/train_generator.py" in str(raised.value)


def test_missing_folder_is_a_generator_error(tmp_path: Path) -> None:
    with pytest.raises(GeneratorError, match="scripts/train_generator.py"):
        Generator.load(tmp_path / "nowhere")


@pytest.mark.parametrize(("config", "problem"), [
    ("[1]", "generator.json holds a list, not a JSON object"),
    ('{"latent_dim": 16}', "generator.json has no 'arch'"),
    ('{"arch": "gan", "latent_dim": 16}',
     "generator.json names the architecture 'gan'; valid: conv, paper, vaegan"),
    ('{"arch": "conv", "latent_dim": 0}', "generator.json has latent_dim 0, not a positive size"),
    ('{"arch": "conv", "latent_dim": 8}', "generator.json says latent_dim 8, but {folder}/decoder.keras takes codes of 16"),
    ('{"arch": "paper", "latent_dim": 16}',
     "generator.json says arch 'paper', but {folder}/encoder.keras takes the inputs of a conv encoder"),
])
def test_generator_json_of_the_wrong_shape_names_it_and_the_training_script(saved, tmp_path: Path, config: str,
                                                                             problem: str) -> None:
    """[1] crashed every page that loads the generator (AttributeError: 'list' object has no attribute 'get')."""
    folder = shutil.copytree(saved[1], tmp_path / "model")
    (folder / CONFIG_FILE).write_text(config)
    with pytest.raises(GeneratorError) as raised:
        Generator.load(folder)
    assert str(raised.value) == f"{folder}/{problem.format(folder=folder)}. Retrain it with: {GENERATOR.retrain_command(folder)}"


def test_an_encoder_of_another_latent_size_names_the_encoder(saved, tmp_path: Path) -> None:
    folder = shutil.copytree(saved[1], tmp_path / "model")
    build_generator("conv", SCHEMA.size, latent_dim=8).encoder.save(folder / ENCODER_FILE)
    with pytest.raises(GeneratorError) as raised:
        Generator.load(folder)
    message = str(raised.value)
    assert message.startswith(f"{folder / ENCODER_FILE} maps [(80, 60, 3), (11,)] to [(8,), (8,)], not ")
    assert message.endswith(f"Retrain it with: {GENERATOR.retrain_command(folder)}")


def test_an_encoder_in_place_of_the_decoder_names_the_decoder(saved, tmp_path: Path) -> None:
    folder = shutil.copytree(saved[1], tmp_path / "model")
    shutil.copy(folder / ENCODER_FILE, folder / DECODER_FILE)
    with pytest.raises(GeneratorError, match=f"^{folder / DECODER_FILE} maps .* not a code and labels to an "
                                                 "80x60x3 image. Retrain it with: python scripts/train_generator.py"):
        Generator.load(folder)


def test_generate_script_reports_a_broken_generator_json_in_one_line(saved, tmp_path: Path, capsys) -> None:
    folder = shutil.copytree(saved[1], tmp_path / "model")
    (folder / CONFIG_FILE).write_text("[1]")
    spec = importlib.util.spec_from_file_location("generate_cli", REPO / "scripts" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    out = tmp_path / "grid.png"
    assert generate.main(["--sub-category", "Shoes", "--gender", "Men", "--model", str(folder), "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: {folder / CONFIG_FILE} holds a list") and "train_generator.py" in line
    assert not out.exists()


def test_save_over_an_existing_folder_leaves_no_staging(saved, tmp_path: Path) -> None:
    generator = saved[2]
    folder = tmp_path / "parent" / "model"
    generator.save(folder, card={"version": 1})
    generator.save(folder, card={"version": 2})
    assert [p.name for p in folder.parent.iterdir()] == ["model"]  # no .model.* staging, no .model.old
    assert json.loads((folder / CARD_FILE).read_text()) == {"version": 2}
    np.testing.assert_array_equal(Generator.load(folder).generate("Ties", "Boys", 1), generator.generate("Ties", "Boys", 1))


def test_label_consistency_term_trains_the_decoder_not_the_judge() -> None:
    rng = np.random.default_rng(3)
    judge = keras.Sequential([keras.Input((80, 60, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(25, activation="sigmoid")], name="judge")
    judge_before = [w.copy() for w in judge.get_weights()]
    model = build_generator("conv", 25, latent_dim=8, judge=LabelConsistency(judge, 1.0), seed=1)
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    images = rng.random((16, 80, 60, 3)).astype(np.float32)
    conditions = np.eye(25, dtype=np.float32)[rng.integers(0, 25, 16)]
    decoder_before = [w.copy() for w in model.decoder.get_weights()]
    history = model.fit(images, conditions, batch_size=8, epochs=2, verbose=0)
    consistency = history.history["label_consistency"]
    assert len(consistency) == 2 and all(np.isfinite(consistency)) and consistency[0] > 0
    for before, after in zip(judge_before, judge.get_weights()):
        np.testing.assert_array_equal(before, after)  # frozen
    assert any(not np.array_equal(b, a) for b, a in zip(decoder_before, model.decoder.get_weights()))
    assert "label_consistency" not in model.evaluate(images, conditions, verbose=0, return_dict=True)


def constant_judge(scores: np.ndarray | None = None) -> keras.Model:
    """A judge that gives every image the same sigmoid `scores` (default: all 0.5)."""
    scores = np.full(SCHEMA.size, 0.5, np.float32) if scores is None else scores
    logits = keras.initializers.Constant(np.log(scores / (1 - scores)))
    return keras.Sequential([keras.Input((80, 60, 3)), keras.layers.Flatten(),
                             keras.layers.Dense(SCHEMA.size, activation="sigmoid", kernel_initializer="zeros",
                                                bias_initializer=logits)])


def test_judged_labels_are_drawn_uniformly_from_the_given_pairs() -> None:
    pairs = np.stack([SCHEMA.encode("Shoes", "Women"), SCHEMA.encode("Bags", "Boys"), SCHEMA.encode("Dress", "Men")])
    consistency = LabelConsistency(constant_judge(), 1.0, pairs=pairs)
    drawn, codes = (np.asarray(t) for t in consistency.draw(np.zeros((3000, SCHEMA.size), np.float32), 4,
                                                            keras.random.SeedGenerator(0)))
    assert abs(codes.mean()) < 0.05 and abs(codes.std() - 1) < 0.05  # no prior given: N(0, I)
    matches = (drawn[:, None, :] == pairs[None]).all(axis=2)
    assert matches.sum(axis=1).tolist() == [1] * 3000  # every draw is one of the pairs
    np.testing.assert_allclose(matches.mean(axis=0), [1 / 3] * 3, atol=0.04)


def test_judged_codes_come_from_the_drawn_pairs_prior() -> None:
    """Fine-tuning a generator with a fitted prior: each judged code is drawn from its pair's Gaussian."""
    pairs = np.stack([SCHEMA.encode("Shoes", "Women"), SCHEMA.encode("Bags", "Boys")])
    means = np.array([[10.0, 0, 0, 0], [-10.0, 0, 0, 0]], np.float32)
    scales = np.stack([np.diag([0.1, 0.1, 0.1, 0.1]), np.diag([2.0, 2.0, 2.0, 2.0])]).astype(np.float32)
    prior = LatentPrior(pairs, means, np.array([5, 5]), scales, np.eye(4), len(SCHEMA.sub_categories))
    consistency = LabelConsistency(constant_judge(), 1.0, prior=prior)
    drawn, codes = (np.asarray(t) for t in consistency.draw(np.zeros((2000, SCHEMA.size), np.float32), 4,
                                                            keras.random.SeedGenerator(0)))
    first = (drawn == pairs[0]).all(axis=1)
    assert 0.45 < first.mean() < 0.55 and ((drawn == pairs[1]).all(axis=1) | first).all()
    np.testing.assert_allclose(codes[first].mean(axis=0), means[0], atol=0.05)
    np.testing.assert_allclose(codes[first].std(axis=0), 0.1, rtol=0.1)
    np.testing.assert_allclose(codes[~first].mean(axis=0), means[1], atol=0.3)
    np.testing.assert_allclose(codes[~first].std(axis=0), 2.0, rtol=0.1)


def test_per_head_judge_loss_weighs_each_head_by_its_cross_entropy() -> None:
    """A judge with fixed scores: the per-head loss is -log of the requested label's share of its head's
    scores, summed over the two heads; the default is the binary cross-entropy over all 25 scores."""
    n_sub = len(SCHEMA.sub_categories)
    scores = np.linspace(0.05, 0.95, SCHEMA.size).astype(np.float32)
    judge = constant_judge(scores)
    wanted = np.stack([SCHEMA.encode("Shoes", "Women"), SCHEMA.encode("Bags", "Boys")]).astype(np.float32)
    codes = np.zeros((2, 4), np.float32)
    sub, gender = scores[:n_sub], scores[n_sub:]
    expected = np.mean([-np.log(sub[row[:n_sub].argmax()] / sub.sum())
                        - np.log(gender[row[n_sub:].argmax()] / gender.sum()) for row in wanted])
    decoder = build_generator("conv", SCHEMA.size, latent_dim=4).decoder
    heads = LabelConsistency(judge, 1.0, heads=n_sub)
    assert float(heads.loss(decoder, wanted, codes)) == pytest.approx(expected, rel=1e-4)
    bce = -np.mean(wanted * np.log(scores) + (1 - wanted) * np.log(1 - scores))
    assert float(LabelConsistency(judge, 1.0).loss(decoder, wanted, codes)) == pytest.approx(bce, rel=1e-4)


def test_conv_training_survives_an_overflowing_log_variance() -> None:
    """log_var = 200 would make exp() overflow to inf and the loss NaN: conv clips it in training."""
    model = build_generator("conv", SCHEMA.size, latent_dim=4)
    log_var = model.encoder.get_layer("log_var")
    kernel, bias = log_var.get_weights()
    log_var.set_weights([np.zeros_like(kernel), np.full_like(bias, 200.0)])
    losses = fresh_test_step(model, *fixed_batch(4))
    assert all(np.isfinite(value) for value in losses.values()), losses
    expected_kl = -0.5 * (1 + LOG_VAR_LIMIT - np.exp(LOG_VAR_LIMIT)) * 4 / PIXEL_VALUES  # mean 0 aside
    assert losses["latent_loss"] >= expected_kl * 0.999


def test_label_consistency_leaves_the_decoders_moving_statistics_to_real_images() -> None:
    """One training step with and without the judge, from the same weights and seed: the decoder's
    BatchNormalization moving statistics must come out the same (the reconstruction pass's update
    only), though the judge's pass runs the decoder in training mode on other codes and labels."""
    judge = keras.Sequential([keras.Input((80, 60, 3)), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(SCHEMA.size, activation="sigmoid")])
    pairs = np.stack([SCHEMA.encode("Shoes", "Women"), SCHEMA.encode("Dress", "Boys")])
    judged = build_generator("conv", SCHEMA.size, latent_dim=4, seed=3,
                             judge=LabelConsistency(judge, 1.0, pairs=pairs))
    plain = build_generator("conv", SCHEMA.size, latent_dim=4, seed=3)
    plain.encoder.set_weights(judged.encoder.get_weights())
    plain.decoder.set_weights(judged.decoder.get_weights())
    images, conditions = fixed_batch(8)
    statistics = {}
    for name, model in (("judged", judged), ("plain", plain)):
        model.compile(optimizer=keras.optimizers.SGD(0.0))
        model.fit(images, conditions, batch_size=8, epochs=1, verbose=0, shuffle=False)
        statistics[name] = [np.asarray(v) for v in model.decoder.non_trainable_weights]
    assert len(statistics["judged"]) == 8  # moving mean and variance of 4 BatchNormalization layers
    for judged_value, plain_value in zip(statistics["judged"], statistics["plain"]):
        np.testing.assert_allclose(judged_value, plain_value, rtol=1e-5, atol=1e-6)
