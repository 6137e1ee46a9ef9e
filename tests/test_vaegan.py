"""The VAE-GAN (fashiongen/generator/vaegan.py): its decoder and discriminator, the delayed start of
the adversarial terms, and scripts/train_generator.py --arch vaegan on the tiny dataset (colour
conditioning, keeping the last epoch, an occupied --out, interrupt and resume)."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import keras
import numpy as np
import pandas as pd
import pytest
from helpers import N_SUB, REPO, SCHEMA, condition, fixed_batch, load_script, one_error_line, read_card, synthetic_codes

from fashiongen.errors import ClassifierError, GeneratorError
from fashiongen.generator.architectures import NoiseInjection, ResidualRefinement, build_upsample_decoder
from fashiongen.generator.cvae import build_generator
from fashiongen.generator import snapshots
from fashiongen.generator.generator import Generator, to_uint8
from fashiongen.generator import refine as refine_module
from fashiongen.generator import perceptual as perceptual_module
from fashiongen.generator import vaegan
from fashiongen.generator.perceptual import COMPACT_LAYERS, PerceptualDistance, random_features
from fashiongen.generator.prior import LatentPrior
from fashiongen.generator.judge import joint_judge, per_head_crossentropy
from fashiongen.generator.refine import PriorRefiner, RefinementConfig, drawn_conditions, refine_prior
from fashiongen.generator.vaegan import AdversarialConfig, AdversarialStart, PriorCodes, build_discriminator
from fashiongen.imaging import IMAGE_SHAPE
from fashiongen.labeler.labeler import Labeler
from fashiongen.labeler.model import build_classifier
from fashiongen.schema import LabelSchema

cli = load_script(REPO / "scripts" / "train_generator.py")
fit_cli = load_script(REPO / "scripts" / "fit_generator_prior.py")
COLOURS = ("Blue", "Black")  # the tiny dataset's photos are all Blue


def test_the_decoder_upsamples_without_transposed_convolutions() -> None:
    decoder = build_upsample_decoder(16, SCHEMA.size)
    assert not [layer for layer in decoder.layers if isinstance(layer, keras.layers.Conv2DTranspose)]
    assert tuple(decoder.output.shape[1:]) == IMAGE_SHAPE
    images = np.asarray(decoder([np.zeros((2, 16), np.float32), fixed_batch(2)[1]]))
    assert images.min() >= 0 and images.max() <= 1


def noisy_decoder(scale: float) -> keras.Model:
    """A decoder with noise inputs whose per-channel scales are all `scale`."""
    keras.utils.set_random_seed(0)
    decoder = build_upsample_decoder(16, SCHEMA.size, noise=True)
    for layer in decoder.layers:
        if isinstance(layer, NoiseInjection):
            layer.set_weights([np.full(layer.get_weights()[0].shape, scale, np.float32)])
    return decoder


def decoded(decoder: keras.Model, rows: int = 4, training: bool = False) -> np.ndarray:
    codes = np.tile(np.linspace(-1, 1, 16, dtype=np.float32), (rows, 1))  # every row the same code and labels
    return keras.ops.convert_to_numpy(decoder([codes, np.tile(fixed_batch(1)[1], (rows, 1))], training=training))


def test_a_warm_start_adds_silent_noise_inputs_to_a_decoder() -> None:
    keras.utils.set_random_seed(1)
    plain = build_upsample_decoder(16, SCHEMA.size)
    noisy = build_upsample_decoder(16, SCHEMA.size, noise=True)
    assert [layer.name for layer in noisy.layers if isinstance(layer, NoiseInjection)] == [
        "noise1", "noise2", "noise3", "noise4"]
    cli.transfer_weights(plain, noisy)
    # their scales start at zero: the warm start computes what it did, in training too
    np.testing.assert_array_equal(decoded(noisy), decoded(plain))
    np.testing.assert_array_equal(decoded(noisy, training=True), decoded(plain, training=True))
    with pytest.raises(GeneratorError, match="has optional layers .--decoder-noise."):
        cli.transfer_weights(noisy, build_upsample_decoder(16, SCHEMA.size))


def test_a_warm_start_adds_silent_refinements_that_show_once_moved(tmp_path: Path) -> None:
    keras.utils.set_random_seed(1)
    plain = build_upsample_decoder(16, SCHEMA.size)
    refined = build_upsample_decoder(16, SCHEMA.size, refine=True, noise=True)
    assert [layer.name for layer in refined.layers if isinstance(layer, ResidualRefinement)] == ["refine3", "refine4"]
    cli.transfer_weights(plain, refined)
    # the second convolution starts at zero: the warm start computes what it did
    np.testing.assert_array_equal(decoded(refined), decoded(plain))
    np.testing.assert_array_equal(decoded(refined, training=True), decoded(plain, training=True))
    # once it has moved (by hand here; the training test below moves it), it changes the pixels
    for layer in refined.layers:
        if isinstance(layer, ResidualRefinement):
            layer.project.kernel.assign(np.full(layer.project.kernel.shape, 0.05, np.float32))
    assert not np.allclose(decoded(refined), decoded(plain), atol=1e-3)
    refined.save(tmp_path / "decoder.keras")
    loaded = keras.saving.load_model(tmp_path / "decoder.keras", compile=False)
    np.testing.assert_array_equal(decoded(loaded), decoded(refined))
    again = build_upsample_decoder(16, SCHEMA.size, refine=True, noise=True)
    cli.transfer_weights(refined, again)  # a refined start: its nested weights land where they were
    np.testing.assert_array_equal(decoded(again), decoded(refined))
    with pytest.raises(GeneratorError, match="has optional layers .--decoder-noise --decoder-refine."):
        cli.transfer_weights(refined, plain)


def test_noise_is_drawn_per_image_in_training_and_fixed_in_inference(tmp_path: Path) -> None:
    decoder = noisy_decoder(0.5)
    quiet = noisy_decoder(0.0)
    inference = decoded(decoder)
    assert not np.allclose(inference, decoded(quiet), atol=1e-3)  # the noise shows
    np.testing.assert_array_equal(inference, decoded(decoder))  # the same pixels at every call
    # and in any batch (to rounding: the CPU's convolutions may sum in another order for another batch size)
    np.testing.assert_allclose(inference[:1], decoded(decoder, rows=1), rtol=0, atol=1e-5)
    first, second = decoded(decoder, training=True), decoded(decoder, training=True)
    assert not np.allclose(first, second, atol=1e-3)  # a new draw at every training call
    assert not np.allclose(first[0], first[1], atol=1e-3)  # and one for every image
    decoder.save(tmp_path / "decoder.keras")
    loaded = keras.saving.load_model(tmp_path / "decoder.keras", compile=False)
    np.testing.assert_array_equal(decoded(loaded), decoded(decoder))


def test_the_discriminator_scores_patches_for_their_labels() -> None:
    discriminator = build_discriminator(SCHEMA.size)
    images, labels = fixed_batch(4)
    logits, *features = discriminator([images, labels])
    assert logits.shape == (4, 10, 8, 1) and [f.shape[-1] for f in features] == [32, 64, 128]
    other = discriminator([images, labels[::-1]])[0]
    assert not np.allclose(logits, other)  # the label projection: the same photo, other labels, another verdict


def test_the_discriminator_sees_its_images_shifted_with_mirrored_edges() -> None:
    images = np.random.default_rng(0).random((2, 80, 60, 3)).astype(np.float32)
    np.testing.assert_array_equal(vaegan.shifted(images, np.array([4, 4]), 4), images)  # the centre: no move
    np.testing.assert_array_equal(vaegan.shifted(images, np.array([1, 1]), 0), images)  # shift 0: never moved
    down_right = np.asarray(vaegan.shifted(images, np.array([0, 8]), 4))  # 4 rows down, 4 columns left
    np.testing.assert_array_equal(down_right[:, 4:, :-4], images[:, :-4, 4:])
    np.testing.assert_array_equal(down_right[:, :4], down_right[:, 7:3:-1])  # the edge mirrored in
    assert down_right.shape == images.shape


def discriminator_biases(model) -> list[np.ndarray]:
    """The discriminator's biases: only its optimizer moves them (spectral normalisation rescales
    the kernels at every training call, whatever the loss)."""
    return [np.array(v) for v in model.discriminator.trainable_weights if v.path.endswith("bias")]


def test_the_adversarial_terms_start_after_the_delay() -> None:
    """Two plain CVAE steps, then AdversarialStart switches: only then does the discriminator (or
    its optimizer) move, and the adaptive weight become positive."""
    model = build_generator("vaegan", SCHEMA.size, latent_dim=16, adversarial=AdversarialConfig(),
                            adversarial_start=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), discriminator_optimizer=keras.optimizers.Adam(1e-3))
    images, labels = fixed_batch(12)
    seen = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            self.before = discriminator_biases(model)

        def on_train_batch_end(self, batch, logs=None):
            moved = any(not np.array_equal(a, b) for a, b in zip(self.before, discriminator_biases(model)))
            seen.append((moved, int(model.discriminator_optimizer.iterations), float(logs["adaptive_weight"])))

    model.fit(images, labels, batch_size=4, epochs=1, shuffle=False, verbose=0,
              callbacks=[AdversarialStart(), Record()])
    assert [(moved, steps) for moved, steps, _ in seen] == [(False, 0), (False, 0), (True, 1)]
    assert seen[0][2] == seen[1][2] == 0.0 and seen[2][2] > 0  # the epoch's mean so far, 0 until the start
    assert model.adversarial_phase


def test_the_decoders_adversarial_share_ramps_up_while_the_discriminator_learns() -> None:
    """With a 2-step ramp from the start: the discriminator trains from the first step, but the
    decoder's adversarial weight is 0 there, half at the second step and full at the third."""
    model = build_generator("vaegan", SCHEMA.size, latent_dim=16, adversarial=AdversarialConfig(),
                            adversarial_start=0, adversarial_ramp=2)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), discriminator_optimizer=keras.optimizers.Adam(1e-3))
    images, labels = fixed_batch(12)
    shares = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_begin(self, batch, logs=None):
            shares.append(float(model._ramp_now()))

        def on_train_batch_end(self, batch, logs=None):
            shares[-1] = (shares[-1], int(model.discriminator_optimizer.iterations), float(logs["adaptive_weight"]))

    model.fit(images, labels, batch_size=4, epochs=1, shuffle=False, verbose=0, callbacks=[Record()])
    assert [(share, steps) for share, steps, _ in shares] == [(0.0, 1), (0.5, 2), (1.0, 3)]
    assert shares[0][2] == 0.0 < shares[1][2]  # the epoch's mean adaptive weight: 0 until the ramp begins


def first_adaptive_weight(**adversarial) -> float:
    """The adaptive weight of one adversarial step of the same fresh model on the same batch."""
    keras.utils.set_random_seed(0)
    model = build_generator("vaegan", SCHEMA.size, latent_dim=16, adversarial=AdversarialConfig(**adversarial))
    model.compile(optimizer=keras.optimizers.Adam(1e-3), discriminator_optimizer=keras.optimizers.Adam(1e-3))
    images, labels = fixed_batch(4)
    history = model.fit(images, labels, batch_size=4, epochs=1, shuffle=False, verbose=0)
    return history.history["adaptive_weight"][0]


def test_the_adaptive_weight_can_ignore_the_feature_matching_weight() -> None:
    """Against the whole nll (latent diffusion's), a larger feature-matching weight raises the
    adversarial term's weight too; against the reconstruction alone it leaves it as it was."""
    nll = [first_adaptive_weight(feature_matching_weight=w) for w in (1.0, 100.0)]
    reconstruction = [first_adaptive_weight(feature_matching_weight=w, adaptive_weight_reference="reconstruction")
                      for w in (1.0, 100.0)]
    assert nll[1] > 1.5 * nll[0]
    assert reconstruction[1] == pytest.approx(reconstruction[0], rel=1e-4)


def test_feature_matching_compares_the_chosen_blocks_of_the_discriminator() -> None:
    """The term is the mean of the per-block L1 distances of --feature-matching-blocks: all three
    by default, any one or two of them on request; anything else is refused."""
    keras.utils.set_random_seed(0)
    model = build_generator("vaegan", SCHEMA.size, latent_dim=16, adversarial=AdversarialConfig())
    images, labels = fixed_batch(4)
    weights = np.array([1.0, 2.0, 0.5, 1.0], np.float32)
    _, *real = model.discriminator([images, labels], training=False)
    for blocks in ("123", "1", "2", "3", "12", "13", "23"):
        model.adversarial = AdversarialConfig(feature_matching_blocks=blocks, discriminator_shift=0)
        terms = model._decoded_terms(images, labels, weights)
        _, *fake = model.discriminator([np.asarray(terms["decoded"][:4]), labels], training=False)
        per_block = [np.average(np.mean(np.abs(np.asarray(r) - np.asarray(f)), axis=(1, 2, 3)), weights=weights)
                     for r, f in zip(real, fake)]
        assert min(abs(a - b) for a, b in itertools.combinations(per_block, 2)) > 0.1 * max(per_block)  # apart
        chosen = [per_block[int(block) - 1] for block in blocks]
        assert float(terms["feature_matching"]) == pytest.approx(np.mean(chosen), rel=1e-4)
    for wrong in ("", "0", "4", "11", "1,2"):
        with pytest.raises(ValueError, match="distinct digits"):
            AdversarialConfig(feature_matching_blocks=wrong)


def test_prior_codes_draw_each_rows_code_from_its_pairs_gaussian() -> None:
    """Inside the train step, as LatentPrior.sample draws them (colour columns after the pair's
    ignored); a row of a pair the prior never saw keeps its N(0, I) noise."""
    codes, conditions, _, _ = synthetic_codes(np.random.default_rng(0))
    prior = LatentPrior.fit(codes, conditions, N_SUB)
    rows = np.stack([condition("Topwear", "Women"), condition("Bags", "Boys"), condition("Topwear", "Men"),
                     condition("Shoes", "Girls")])
    coloured = np.concatenate([rows, np.eye(4, 2, dtype=np.float32)], axis=1)  # a colour one-hot after the pair
    noise = np.random.default_rng(1).standard_normal((4, codes.shape[1])).astype(np.float32)
    drawn = np.asarray(PriorCodes(prior).sample(coloured, noise))
    np.testing.assert_allclose(drawn[:3], prior.sample(rows[:3], noise[:3]), rtol=1e-4, atol=1e-3)
    np.testing.assert_array_equal(drawn[3], noise[3])


def test_epoch_grids_draw_a_warm_started_vaegans_codes_from_its_prior(tmp_path: Path, monkeypatch) -> None:
    """The grid shows what generation will draw: with a prior, its codes, not N(0, I)'s."""
    codes, conditions, _, _ = synthetic_codes(np.random.default_rng(0))
    prior = LatentPrior.fit(codes, conditions, N_SUB)
    rows = np.stack([condition("Bags", "Boys")])
    photos, photo_conditions = fixed_batch(2)
    pictures = []
    monkeypatch.setattr(snapshots, "image_grid", lambda images, **_: pictures.append(images) or SimpleNamespace(
        save=lambda path: None))
    draws = np.random.default_rng(0).standard_normal((3, codes.shape[1])).astype(np.float32)
    for with_prior in (False, True):
        model = build_generator("vaegan", SCHEMA.size, latent_dim=codes.shape[1], adversarial=AdversarialConfig(),
                                prior=prior if with_prior else None)
        grids = snapshots.EpochGrids(tmp_path, rows, (photos * 255).astype(np.uint8), photo_conditions, columns=3)
        grids.set_model(model)
        grids.on_epoch_end(0)
        wanted = prior.sample(np.repeat(rows, 3, axis=0), draws) if with_prior else draws
        expected = to_uint8(np.asarray(model.decoder([wanted, np.repeat(rows, 3, axis=0)], training=False)))
        np.testing.assert_array_equal(pictures[-1][:3], expected)


# ----------------------------------------------------------------------------- train_generator.py --arch vaegan


@pytest.fixture(scope="module")
def colour_classifier(tiny, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained catalog labeler with a colour head: the generator takes its colours."""
    schema = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (("baseColour", COLOURS),))
    folder = tmp_path_factory.mktemp("colour-classifier") / "classifier"
    Labeler(build_classifier(schema), schema).save(folder)
    return folder


def run(tiny, classifier: Path, root: Path, *extra: str) -> SimpleNamespace:
    argv = ["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache), "--classifier", str(classifier),
            "--run-dir", str(root / "run"), "--out", str(root / "out"), "--batch-size", "4", "--quiet",
            "--arch", "vaegan", "--latent-dim", "16", "--adversarial-start-epochs", "1", *extra]
    return SimpleNamespace(code=cli.main(argv), out=root / "out", run=root / "run")


@pytest.fixture(scope="module")
def trained(tiny, colour_classifier, tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    return run(tiny, colour_classifier, tmp_path_factory.mktemp("vaegan"), "--epochs", "2")


def test_a_vaegan_run_saves_a_colour_controlled_generator(trained) -> None:
    assert trained.code == 0
    generator = Generator.load(trained.out)
    assert generator.arch == "vaegan" and generator.colours == COLOURS
    assert generator.prior.colour_counts[:, 0].sum() == generator.prior.counts.sum()  # every photo is Blue
    assert not generator.prior.colour_counts[:, 1].any()
    blue, black = (generator.generate("Shoes", "Men", 3, 2, colour=c) for c in COLOURS)
    assert blue.shape == (2, 80, 60, 3) and not np.array_equal(blue, black)
    card = read_card(trained.out)
    assert card["config"]["adversarial_weight"] == AdversarialConfig().adversarial_weight
    assert {"discriminator_loss", "adversarial_loss", "adaptive_weight"} <= card["training"]["history"].keys()
    assert card["training"]["history"]["adaptive_weight"][0] == 0.0  # the first epoch is a plain CVAE's
    assert card["training"]["history"]["adaptive_weight"][1] > 0


def test_a_warm_started_vaegan_judges_images_drawn_from_its_prior(tiny, colour_classifier, trained,
                                                                  tmp_path: Path, monkeypatch) -> None:
    """Fine-tuning a vaegan's decoder (--init-from, --freeze-encoder): the discriminator's drawn
    images come from the warm start's latent prior, the codes generation uses; the encoder stays
    as it was, so that prior still fits it."""
    given = []

    class Recorded(PriorCodes):
        def __init__(self, prior) -> None:
            given.append(prior)
            super().__init__(prior)

    monkeypatch.setattr(vaegan, "PriorCodes", Recorded)
    start = Generator.load(trained.out)
    tuned = run(tiny, colour_classifier, tmp_path, "--epochs", "1", "--adversarial-start-epochs", "0",
                "--init-from", str(trained.out), "--freeze-encoder")
    assert tuned.code == 0 and len(given) == 1
    np.testing.assert_array_equal(given[0].means, start.prior.means)
    result = Generator.load(tuned.out)
    for before, after in zip(start.encoder.get_weights(), result.encoder.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert any(not np.array_equal(a, b) for a, b in zip(start.decoder.get_weights(), result.decoder.get_weights()))


def test_a_vaegan_starts_from_a_conv_generators_encoder_and_prior_and_adds_colour(
        tiny, colour_classifier, tmp_path: Path) -> None:
    """--init-from a conv generator without colour (the shipped `smooth`), --freeze-encoder: the
    vaegan's encoder takes the colour too, with zero weights, so it gives the start's codes for any
    colour; the start's (perhaps refined) prior is kept, its colours counted on the training rows;
    the upsampling decoder is the vaegan's own."""
    start_run = run(tiny, colour_classifier, tmp_path / "conv", "--arch", "conv", "--no-colour", "--epochs", "1")
    assert start_run.code == 0
    start = Generator.load(start_run.out)
    assert not start.colours
    tuned = run(tiny, colour_classifier, tmp_path / "vaegan", "--epochs", "1", "--adversarial-start-epochs", "0",
                "--init-from", str(start_run.out), "--freeze-encoder")
    assert tuned.code == 0
    result = Generator.load(tuned.out)
    assert result.arch == "vaegan" and result.colours == COLOURS
    images, pairs = fixed_batch(3)
    for colour in np.eye(len(COLOURS), dtype=np.float32):
        coloured = np.concatenate([pairs, np.repeat(colour[None], len(pairs), axis=0)], axis=1)
        for ours, theirs in zip(result.encoder([images, coloured]), start.encoder([images, pairs])):
            np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(result.prior.means, start.prior.means)
    np.testing.assert_array_equal(result.prior.scales, start.prior.scales)
    assert result.prior.colour_counts[:, 0].sum() == result.prior.counts.sum()  # every tiny photo is Blue
    card = read_card(tuned.out)
    assert card["latent_prior"]["kept_from"] == str(start_run.out) and card["encoder_frozen"] is True


def test_optional_decoder_layers_reach_a_warm_started_generator_and_train(tiny, colour_classifier, trained,
                                                                          tmp_path: Path) -> None:
    tuned = run(tiny, colour_classifier, tmp_path, "--epochs", "1", "--adversarial-start-epochs", "0",
                "--init-from", str(trained.out), "--decoder-noise", "--decoder-refine")
    assert tuned.code == 0
    start = Generator.load(tuned.out)
    decoder = start.decoder
    scales = [layer.get_weights()[0] for layer in decoder.layers if isinstance(layer, NoiseInjection)]
    assert len(scales) == 4 and all(np.abs(scale).max() > 0 for scale in scales)  # trained off their zeros
    projections = [layer.project.kernel for layer in decoder.layers if isinstance(layer, ResidualRefinement)]
    assert len(projections) == 2 and all(np.abs(kernel).max() > 0 for kernel in projections)
    config = read_card(tuned.out)["config"]
    assert config["decoder_noise"] is True and config["decoder_refine"] is True
    assert "add --decoder-noise --decoder-refine" in cli.warm_start_problem(start, "vaegan", start.schema)
    assert "add --decoder-refine" in cli.warm_start_problem(start, "vaegan", start.schema, {"--decoder-noise"})
    assert cli.warm_start_problem(start, "vaegan", start.schema, {"--decoder-noise", "--decoder-refine"}) is None


def test_only_a_conv_generator_of_the_same_labels_starts_a_vaegan(trained, tmp_path: Path) -> None:
    coloured = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (("baseColour", COLOURS),))
    start = Generator.load(trained.out)
    assert cli.warm_start_problem(start, "vaegan", coloured) is None
    assert "cannot start --arch conv" in cli.warm_start_problem(start, "conv", coloured)
    other = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (("baseColour", ("Red", "Green")),))
    assert "labels are not this run's" in cli.warm_start_problem(start, "vaegan", other)
    with pytest.raises(GeneratorError, match="not \\(2, 4\\)"):
        cli.transfer_weights(keras.Sequential([keras.Input((3,)), keras.layers.Dense(4)]),
                             keras.Sequential([keras.Input((2,)), keras.layers.Dense(4)]))


def test_no_colour_or_no_colour_head_gives_the_paper_heads_only(capsys) -> None:
    coloured = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (("baseColour", COLOURS),))
    assert cli.generator_schema(cli.parse_args(["--arch", "vaegan"]), coloured) == coloured
    assert cli.generator_schema(cli.parse_args(["--arch", "vaegan", "--no-colour"]), coloured) == SCHEMA
    assert cli.generator_schema(cli.parse_args(["--arch", "paper"]), coloured) == SCHEMA
    assert cli.generator_schema(cli.parse_args(["--arch", "conv"]), SCHEMA) == SCHEMA
    assert "no colour control" in capsys.readouterr().out


def test_a_labeler_without_colours_gives_the_training_rows_colours(capsys) -> None:
    """The shipped labeler has no colour head: the colours with 50+ training photos, most frequent
    first, as a catalog labeler trained on those rows would have them; rarer ones are left out."""
    styles = pd.DataFrame({"baseColour": ["Black"] * 50 + ["White"] * 60 + ["Teal"] * 49 + ["NA"] * 70,
                           "subCategory": "Topwear", "gender": "Men"})
    schema = cli.generator_schema(cli.parse_args(["--arch", "vaegan"]), SCHEMA, styles)
    assert schema.heads["baseColour"] == ("White", "Black")
    assert schema.paper == SCHEMA
    assert cli.generator_schema(cli.parse_args(["--arch", "conv", "--no-colour"]), SCHEMA, styles) == SCHEMA
    assert cli.generator_schema(cli.parse_args(["--arch", "conv"]), SCHEMA, styles[50:159]) == SCHEMA  # White only
    assert "no colour control" in capsys.readouterr().out


def test_a_vaegan_never_overwrites_a_generator_without_replace(tiny, colour_classifier, trained, tmp_path: Path,
                                                                 capsys, monkeypatch) -> None:
    """A vaegan is not judged by its validation loss, so an occupied --out needs --replace; and it
    keeps its last epoch, so even with --replace a diverged (NaN) one must not reach --out."""
    out = tmp_path / "out"
    out.mkdir()
    for file in trained.out.iterdir():
        (out / file.name).write_bytes(file.read_bytes())
    before = {file.name: file.read_bytes() for file in out.iterdir()}
    assert run(tiny, colour_classifier, tmp_path, "--epochs", "1").code == 2
    assert "evaluate_generator.py" in one_error_line(capsys.readouterr().err)
    assert {file.name: file.read_bytes() for file in out.iterdir()} == before

    real_evaluate = keras.Model.evaluate

    def diverged(self, *args, **kwargs):
        return {**real_evaluate(self, *args, **kwargs), "loss": float("nan")}

    monkeypatch.setattr(keras.Model, "evaluate", diverged)
    assert run(tiny, colour_classifier, tmp_path, "--epochs", "1", "--replace").code == 2
    assert "diverged" in one_error_line(capsys.readouterr().err)
    assert {file.name: file.read_bytes() for file in out.iterdir()} == before


def test_resume_restores_the_discriminator_and_its_optimizer(tiny, colour_classifier, trained, tmp_path: Path,
                                                             monkeypatch) -> None:
    """Interrupted, then resumed with --replace into an occupied --out, which it overwrites."""
    (tmp_path / "out").mkdir()
    for file in trained.out.iterdir():
        (tmp_path / "out" / file.name).write_bytes(file.read_bytes())
    seen: dict[str, tuple] = {}

    def interrupt_second_epoch(self, epoch, logs=None):
        if epoch == 1:
            seen["interrupted"] = state(self.model)
            raise KeyboardInterrupt

    monkeypatch.setattr(keras.callbacks.TensorBoard, "on_epoch_begin", interrupt_second_epoch)
    assert run(tiny, colour_classifier, tmp_path, "--epochs", "2", "--replace").code == 130
    assert json.loads((tmp_path / "run" / "backup" / "training_metadata.json").read_text())["epoch"] == 1

    def record(self, epoch, logs=None):
        seen["resumed"] = state(self.model)

    def record_end(self, epoch, logs=None):
        seen["resumed_end"] = int(self.model.discriminator_optimizer.iterations)

    monkeypatch.setattr(keras.callbacks.TensorBoard, "on_epoch_begin", record)
    monkeypatch.setattr(keras.callbacks.TensorBoard, "on_epoch_end", record_end)
    assert run(tiny, colour_classifier, tmp_path, "--epochs", "2", "--replace", "--resume").code == 0
    assert read_card(tmp_path / "out")["command"].endswith("--replace --resume")
    assert int(seen["interrupted"][-1][0]) == 0  # no discriminator step in the plain first epoch
    assert int(seen["resumed_end"]) > 0  # the resumed run switched to the adversarial step
    for restored, saved in zip(seen["resumed"], seen["interrupted"], strict=True):
        assert len(restored) == len(saved)
        for a, b in zip(restored, saved):
            np.testing.assert_array_equal(a, b)


def state(model) -> tuple[list[np.ndarray], ...]:
    """Weights (the discriminator's among them) and both optimizers' variables (Adam's moments)."""
    return (model.get_weights(), [np.array(v) for v in model.optimizer.variables],
            [np.array(v) for v in model.discriminator_optimizer.variables])


def test_every_epoch_leaves_a_grid_to_look_at(trained) -> None:
    from PIL import Image

    grids = sorted((trained.run / "grids").glob("epoch-*.png"))
    assert [g.name for g in grids] == ["epoch-001.png", "epoch-002.png"]
    with Image.open(grids[-1]) as picture:
        width, height = picture.size
    # 8 columns of 60-pixel images at scale 2; the tiny data has fewer than 8 label rows and photos
    assert width == 8 * 120 + 7 * 2 and height > 2 * 160


def test_a_judge_is_refused_for_a_vaegan_and_a_colour_generator(tiny, colour_classifier, tmp_path: Path,
                                                                capsys) -> None:
    with pytest.raises(SystemExit):
        run(tiny, colour_classifier, tmp_path, "--judge-weight", "0.1")
    assert "--judge-weight works with --arch conv only" in capsys.readouterr().err
    coloured = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (("baseColour", COLOURS),))
    with pytest.raises(ClassifierError, match="train it with --no-colour"):
        Labeler.load(colour_classifier).as_judge(coloured)


def test_the_script_judges_colour_with_judge_colour(tiny, colour_classifier, trained, tmp_path: Path,
                                                    capsys) -> None:
    folder = shutil.copytree(trained.out, tmp_path / "refined")
    argv = ["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache), "--generator", str(folder), "--quiet",
            "--judge", str(colour_classifier), "--judge-steps", "3", "--judge-batch-size", "4", "--by-colour",
            "--judge-colour", "--judge-loss", "heads"]
    assert fit_cli.main(argv) == 0
    refinement = read_card(folder)["latent_prior"]["judge_refinement"]
    assert refinement["colour"] is True and refinement["judge"] == str(colour_classifier)
    with pytest.raises(SystemExit) as exit_info:
        fit_cli.parse_args(["--generator", str(folder), "--judge-colour"])
    assert exit_info.value.code == 2 and "--judge-colour needs --judge" in capsys.readouterr().err


def test_a_colour_judge_judges_colour_beside_the_judge_of_the_two_heads(tiny, colour_classifier, trained,
                                                                        tmp_path: Path, capsys) -> None:
    """--colour-judge: --judge scores sub-category and gender, the colour judge only the colour."""
    folder = shutil.copytree(trained.out, tmp_path / "refined")
    base = ["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache), "--generator", str(folder), "--quiet",
            "--judge", str(colour_classifier), "--judge-steps", "3", "--judge-batch-size", "4", "--by-colour"]
    assert fit_cli.main([*base, "--colour-judge", str(colour_classifier), "--judge-loss", "heads",
                         "--judge-colour-weight", "0.5"]) == 0
    refinement = read_card(folder)["latent_prior"]["judge_refinement"]
    assert refinement["colour"] is True and refinement["colour_judge"] == str(colour_classifier)
    assert refinement["colour_judge_command"] == read_card(colour_classifier).get("command")
    assert refinement["colour_weight"] == 0.5
    for argv, message in ((["--generator", str(folder), "--colour-judge", str(colour_classifier)],
                           "--colour-judge needs --judge"),
                          ([*base, "--colour-judge", str(colour_classifier)],
                           "judging colour needs --judge-loss heads"),
                          ([*base, "--judge-colour"], "judging colour needs --judge-loss heads"),
                          ([*base, "--judge-colour-weight", "0.5"], "--judge-colour-weight needs colour judged"),
                          ([*base, "--judge-colour", "--judge-loss", "heads", "--judge-colour-weight", "0"],
                           "--judge-colour-weight must be above 0")):
        with pytest.raises(SystemExit) as exit_info:
            fit_cli.parse_args(argv)
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_a_joint_judge_takes_each_heads_scores_from_its_own_judge() -> None:
    image = keras.Input(IMAGE_SHAPE)
    pooled = keras.layers.GlobalAveragePooling2D()(image)
    size, paper = SCHEMA.size + 2, SCHEMA.size  # the paper's columns, then two colours
    heads = keras.Model(image, keras.layers.Dense(size, activation="sigmoid")(pooled), name="judge")
    colour = keras.Model(image, keras.layers.Dense(size, activation="sigmoid")(pooled), name="judge")
    joint = joint_judge(heads, colour, paper)
    images, _ = fixed_batch(3)
    expected = np.concatenate([np.asarray(heads(images))[:, :paper], np.asarray(colour(images))[:, paper:]], axis=1)
    np.testing.assert_allclose(np.asarray(joint(images, training=False)), expected, rtol=1e-6)
    assert joint.name == "judge"


def test_a_colour_generators_prior_is_refined_against_the_judges_two_heads(tiny, colour_classifier, trained,
                                                                           tmp_path: Path) -> None:
    """fit_generator_prior.py --judge on a generator with colour control: the judge scores the
    paper's heads (the sub-category and gender the prior's pairs name), the decoder is given a
    colour per drawn row, and the refined prior keeps its colour counts."""
    folder = shutil.copytree(trained.out, tmp_path / "refined")
    argv = ["--data-dir", str(tiny.data_dir), "--cache-dir", str(tiny.cache), "--generator", str(folder), "--quiet",
            "--judge", str(colour_classifier), "--judge-steps", "3", "--judge-batch-size", "4",
            "--judge-learning-rate", "0.5", "--judge-kl-weight", "0"]
    assert fit_cli.main(argv) == 0
    refined, fitted = Generator.load(folder).prior, Generator.load(trained.out).prior
    np.testing.assert_array_equal(refined.colour_counts, fitted.colour_counts)
    assert read_card(folder)["latent_prior"]["judge_refinement"]["judge"] == str(colour_classifier)


def test_a_catalog_labeler_judges_colour_in_the_generators_order(colour_classifier) -> None:
    labeler = Labeler.load(colour_classifier)
    reversed_colours = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (("baseColour", COLOURS[::-1]),))
    judge = labeler.as_judge(reversed_colours, "here", colour=True)
    images, _ = fixed_batch(3)
    scores = np.asarray(labeler.model(images, training=False))
    colours = labeler.schema.slices["baseColour"]
    expected = np.concatenate([scores[:, : SCHEMA.size], scores[:, colours][:, ::-1]], axis=1)
    np.testing.assert_allclose(np.asarray(judge(images, training=False)), expected, rtol=1e-6)
    unknown = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (("baseColour", ("Blue", "Mauve")),))
    with pytest.raises(ClassifierError, match="no baseColour head for the generator's colours Mauve"):
        labeler.as_judge(unknown, "here", colour=True)
    paper_only = Labeler(build_classifier(SCHEMA, arch="compact"), SCHEMA)
    with pytest.raises(ClassifierError, match="no baseColour head.*--heads catalog"):
        paper_only.as_judge(reversed_colours, "here", colour=True)
    with pytest.raises(ClassifierError, match="conditioned on baseColour"):
        labeler.as_judge(SCHEMA, "here", colour=True)


def test_per_head_crossentropy_sums_each_heads_own() -> None:
    rng = np.random.default_rng(0)
    wanted = np.concatenate([np.eye(3, dtype=np.float32)[[0, 2]], np.eye(2, dtype=np.float32)[[1, 0]],
                             np.eye(4, dtype=np.float32)[[3, 1]]], axis=1)
    scores = rng.uniform(0.05, 1.0, wanted.shape).astype(np.float32)

    def crossentropy(bounds) -> np.ndarray:  # each head: -sum(wanted * log(share of the head's scores))
        return sum(-(wanted[:, a:b] * np.log(scores[:, a:b] / scores[:, a:b].sum(axis=1, keepdims=True))).sum(1)
                   for a, b in bounds)

    np.testing.assert_allclose(np.asarray(per_head_crossentropy(wanted, scores, (3, 5))),
                               crossentropy(((0, 3), (3, 5), (5, 9))), rtol=1e-5)
    np.testing.assert_allclose(np.asarray(per_head_crossentropy(wanted, scores, 3)),
                               crossentropy(((0, 3), (3, 9))), rtol=1e-5)
    # a weight per head: the colour head's at 0.25 scales its term alone
    weighted = crossentropy(((0, 3), (3, 5))) + 0.25 * crossentropy(((5, 9),))
    np.testing.assert_allclose(np.asarray(per_head_crossentropy(wanted, scores, (3, 5), (1, 1, 0.25))),
                               weighted, rtol=1e-5)
    with pytest.raises(ValueError, match="3 heads but 2 weights"):
        per_head_crossentropy(wanted, scores, (3, 5), (1, 1))


def test_refining_draws_each_rows_colour_from_its_pairs_colours(monkeypatch) -> None:
    codes, conditions, _, _ = synthetic_codes(np.random.default_rng(0))
    n_colours = 3
    colours = np.zeros((len(conditions), n_colours), np.float32)
    colours[:, 0] = 1.0
    bags = conditions[:, SCHEMA.sub_categories.index("Bags")] == 1
    colours[bags] = np.eye(n_colours, dtype=np.float32)[np.arange(bags.sum()) % 2 + 1]  # bags: colours 1 and 2
    plain = LatentPrior.fit(codes, conditions, N_SUB)
    prior = plain.with_colours(np.concatenate([conditions, colours], axis=1))
    index = np.repeat(np.arange(len(prior.conditions)), 200)
    rows = drawn_conditions(prior, index, SCHEMA.size + n_colours, np.random.default_rng(1))
    np.testing.assert_array_equal(rows[:, : SCHEMA.size], prior.conditions[index])
    drawn = rows[:, SCHEMA.size:]
    assert (drawn.sum(axis=1) == 1).all()
    is_bag = prior.conditions[index, SCHEMA.sub_categories.index("Bags")] == 1
    assert set(drawn[is_bag].argmax(axis=1)) == {1, 2} and set(drawn[~is_bag].argmax(axis=1)) == {0}
    np.testing.assert_array_equal(drawn_conditions(plain, index, SCHEMA.size, np.random.default_rng(1)),
                                  plain.conditions[index])
    # refining this prior: the decoder is given those rows, and a judge of pooled pixels moves the codes
    schema = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (("baseColour", ("Blue", "Black", "Red")),))
    decoder = build_upsample_decoder(codes.shape[1], schema.size)
    image = keras.Input(IMAGE_SHAPE)
    judge = keras.Model(image, keras.layers.Dense(SCHEMA.size, activation="sigmoid")(
        keras.layers.GlobalAveragePooling2D()(image)))
    refined, summary = refine_prior(Generator(None, decoder, schema, "vaegan", prior=prior), judge,
                                    RefinementConfig(steps=5, batch_size=8, learning_rate=0.5, kl_weight=0.0))
    assert summary["kl_per_pair_mean"] > 0.1  # each pair shifted in its whitened coordinates
    np.testing.assert_array_equal(refined.colour_counts, prior.colour_counts)
    # judging colour too: a judge of the paper's heads and the three colours, whose colour scores
    # alone differ, moves the codes elsewhere than the same judge's first columns do
    colour_judge = keras.Model(image, keras.layers.Dense(schema.size, activation="sigmoid")(
        keras.layers.GlobalAveragePooling2D()(image)))
    paper_part = keras.Model(image, colour_judge.output[:, : SCHEMA.size])
    moved, given = {}, []
    fit = PriorRefiner.fit

    def spy(self, x, y, **kwargs):  # the refiner's inputs and targets, as the judge's loss sees them
        given.append((x, y))
        return fit(self, x, y, **kwargs)

    monkeypatch.setattr(PriorRefiner, "fit", spy)
    for colour, model in ((False, paper_part), (True, colour_judge)):
        refined, summary = refine_prior(Generator(None, decoder, schema, "vaegan", prior=prior), model,
                                        RefinementConfig(steps=5, batch_size=8, learning_rate=0.5, kl_weight=0.0,
                                                         loss="heads", colour=colour))
        moved[colour] = refined.means
        assert summary["colour"] == colour
    assert not np.allclose(moved[False], moved[True])
    ((_, own), paper_targets), ((_, asked), colour_targets) = given
    # a lower colour weight: the loss gets one weight per head, colour's last, and the codes move elsewhere
    weights, crossentropy = [], refine_module.per_head_crossentropy
    monkeypatch.setattr(refine_module, "per_head_crossentropy",
                        lambda *args: weights.append(args[3]) or crossentropy(*args))
    lighter = refine_prior(Generator(None, decoder, schema, "vaegan", prior=prior), colour_judge,
                           RefinementConfig(steps=5, batch_size=8, learning_rate=0.5, kl_weight=0.0, loss="heads",
                                            colour=True, colour_weight=0.25))[0]
    assert weights and all(list(w) == [1.0, 1.0, 0.25] for w in weights)
    assert not np.allclose(lighter.means, moved[True])
    np.testing.assert_array_equal(paper_targets, own[:, : SCHEMA.size])
    np.testing.assert_array_equal(colour_targets, asked)  # the decoder's own rows: colour one-hots included
    assert (colour_targets[:, SCHEMA.size:].sum(axis=1) == 1).all()
    with pytest.raises(GeneratorError, match=f"judge scores {SCHEMA.size} labels.*have {schema.size}"):
        refine_prior(Generator(None, decoder, schema, "vaegan", prior=prior), paper_part,
                     RefinementConfig(steps=1, loss="heads", colour=True))
    with pytest.raises(GeneratorError, match="needs the heads loss"):
        refine_prior(Generator(None, decoder, schema, "vaegan", prior=prior), colour_judge,
                     RefinementConfig(steps=1, colour=True))


# ----------------------------------------------------------------------------- the perceptual distance


def test_the_perceptual_distance_is_zero_for_the_same_image_and_per_row() -> None:
    distance = PerceptualDistance(build_classifier(SCHEMA, arch="compact"))
    images, _ = fixed_batch(4)
    other, _ = fixed_batch(4, seed=9)
    np.testing.assert_allclose(np.asarray(distance.distance(images, images)), 0.0, atol=1e-6)
    apart = np.asarray(distance.distance(images, other))
    assert apart.shape == (4,) and (apart > 0).all()
    # each row's distance is its own pair's, whatever else is in the batch
    np.testing.assert_allclose(np.asarray(distance.distance(images[:1], other[:1])), apart[:1], rtol=1e-4)


def test_the_perceptual_distance_can_see_both_images_at_one_random_offset() -> None:
    """With a shift, each call compares the two images both moved by one offset within the shift
    (so the classifier's pooling grid moves over them), a new offset on each call; without, never moved."""
    classifier = build_classifier(SCHEMA, arch="compact")
    images, _ = fixed_batch(4)
    other, _ = fixed_batch(4, seed=9)
    fixed, moving = PerceptualDistance(classifier), PerceptualDistance(classifier, shift=2, seed=1)

    def at(offset) -> np.ndarray:
        return np.asarray(fixed.distance(vaegan.shifted(images, np.array(offset), 2),
                                         vaegan.shifted(other, np.array(offset), 2)))

    offsets = [(row, column) for row in range(5) for column in range(5)]
    by_offset = {offset: at(offset) for offset in offsets}
    seen = set()
    for _ in range(4):
        distances = np.asarray(moving.distance(images, other))
        matches = [offset for offset in offsets if np.allclose(by_offset[offset], distances, rtol=1e-5)]
        assert matches, "the distance is not that of any offset within the shift"
        seen.update(matches)
    assert len(seen) > 1
    np.testing.assert_allclose(np.asarray(fixed.distance(images, other)), by_offset[(2, 2)], rtol=1e-5)


def test_a_blurred_perceptual_distance_cannot_see_a_fine_pattern() -> None:
    """With a blur of 2 px, a pattern of period 4 px (the plaid's scale is 6-8 px) on top of an image
    moves the distance less than a fifth as much as it does unblurred, while a shape-scale change
    (the image moved by 6 px) still shows; the blur is a mirrored-edge Gaussian, so a flat image stays flat."""
    classifier = build_classifier(SCHEMA, arch="compact")
    images, _ = fixed_batch(4)
    images = np.asarray(perceptual_module.blurred(images, perceptual_module.gaussian_taps(3.0)))  # smooth shapes
    rows, columns = np.indices(images.shape[1:3])
    plaid = 0.1 * np.sin(2 * np.pi * rows / 4)[..., None] * np.sin(2 * np.pi * columns / 4)[..., None]
    patterned = np.clip(images + plaid.astype(np.float32), 0.0, 1.0)
    moved = np.roll(images, 6, axis=2)
    sharp, soft = PerceptualDistance(classifier), PerceptualDistance(classifier, blur=2.0)
    def mean(distance: PerceptualDistance, other: np.ndarray) -> float:
        return float(np.asarray(distance.distance(images, other)).mean())

    assert mean(soft, patterned) < 0.2 * mean(sharp, patterned)
    assert mean(soft, moved) > 0.2 * mean(sharp, moved)
    np.testing.assert_allclose(np.asarray(perceptual_module.blurred(np.ones((1, 80, 60, 3), np.float32),
                                                                    perceptual_module.gaussian_taps(2.0))), 1.0,
                               atol=1e-6)


def test_random_features_are_seeded_and_every_block_tells_images_apart() -> None:
    """He-normal weights from the seed: the same seed gives the same network; every block's features
    separate two different batches (no block dies or saturates to a constant) and not two equal ones."""
    same, again, other_seed = random_features(3), random_features(3), random_features(4)
    for a, b, c in zip(same.get_weights(), again.get_weights(), other_seed.get_weights()):
        np.testing.assert_array_equal(a, b)
        assert not np.allclose(a, c)
    images, _ = fixed_batch(4)
    other, _ = fixed_batch(4, seed=9)
    for blocks in range(1, 5):
        distance = PerceptualDistance(same, COMPACT_LAYERS[blocks - 1:blocks])
        np.testing.assert_allclose(np.asarray(distance.distance(images, images)), 0.0, atol=1e-6)
        assert (np.asarray(distance.distance(images, other)) > 1e-3).all(), f"block {blocks}"


def test_the_perceptual_distance_takes_a_compact_classifier_only() -> None:
    image = keras.Input((80, 60, 3))
    with pytest.raises(GeneratorError, match="relu1_2.*--arch compact"):
        PerceptualDistance(keras.Model(image, keras.layers.Conv2D(2, 3, name="conv")(image)))


def test_the_perceptual_term_trains_the_generator_not_its_classifier() -> None:
    """The same seed and batch with the term's weight at 0 and at 1 (and at 1 with a shift, its
    random offset drawn inside the compiled step): only then do the decoders differ; the classifier
    (its BatchNormalization statistics too) stays, and neither it nor the shift's random state is
    among the weights a checkpoint or a resume backup saves."""
    classifier = build_classifier(SCHEMA, arch="compact")
    before = [np.array(w) for w in classifier.weights]
    images, labels = fixed_batch(8)
    decoders, histories, saved = {}, {}, {}
    for weight, shift in ((0.0, 0), (1.0, 0), (1.0, 2)):
        keras.utils.set_random_seed(0)
        model = build_generator("vaegan", SCHEMA.size, latent_dim=16,
                                adversarial=AdversarialConfig(perceptual_weight=weight, perceptual_shift=shift),
                                perceptual=PerceptualDistance(classifier, shift=shift, seed=1))
        model.compile(optimizer=keras.optimizers.Adam(1e-3), discriminator_optimizer=keras.optimizers.Adam(1e-3))
        key = (weight, shift)
        histories[key] = model.fit(images, labels, batch_size=4, epochs=1, shuffle=False, verbose=0).history
        decoders[key], saved[key] = model.decoder.get_weights(), len(model.weights)
    assert histories[0.0, 0]["perceptual"][0] == 0.0 < histories[1.0, 0]["perceptual"][0]  # weight 0: not computed
    assert np.isfinite(histories[1.0, 2]["perceptual"][0]) and histories[1.0, 2]["perceptual"][0] > 0
    for trained in ((1.0, 0), (1.0, 2)):
        assert any(not np.allclose(a, b) for a, b in zip(decoders[0.0, 0], decoders[trained]))
    assert saved[0.0, 0] == saved[1.0, 0] == saved[1.0, 2]
    for old, new in zip(before, classifier.weights):
        np.testing.assert_array_equal(old, np.array(new))


def test_an_r1_penalty_takes_the_place_of_spectral_normalisation() -> None:
    """With --r1-weight the discriminator's layers are plain, its step returns the squared slope of
    the photos' mean logit (as computed here by hand) and trains on gamma/2 times it."""
    import tensorflow as tf

    def wrapped(model) -> int:
        return sum(isinstance(layer, keras.layers.SpectralNormalization) for layer in model.discriminator.layers)

    assert wrapped(build_generator("vaegan", SCHEMA.size, latent_dim=16, adversarial=AdversarialConfig())) == 5
    keras.utils.set_random_seed(0)
    model = build_generator("vaegan", SCHEMA.size, latent_dim=16,
                            adversarial=AdversarialConfig(r1_weight=10.0, discriminator_shift=0))
    assert wrapped(model) == 0
    model.discriminator_optimizer = keras.optimizers.SGD(0.1)
    images, labels = fixed_batch(4)
    decoded = np.random.default_rng(0).random((8,) + IMAGE_SHAPE).astype(np.float32)
    weights = np.array([1.0, 2.0, 0.5, 1.0], np.float32)
    photos = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(photos)
        total = tf.reduce_sum(tf.reduce_mean(model.discriminator([photos, tf.constant(labels)])[0], axis=(1, 2, 3)))
    by_hand = np.average(np.sum(np.square(tape.gradient(total, photos)), axis=(1, 2, 3)), weights=weights)
    start = [np.array(v) for v in model.discriminator.trainable_weights]
    moved = {}
    for gamma in (10.0, 0.0):
        for variable, value in zip(model.discriminator.trainable_weights, start):
            variable.assign(value)
        model.adversarial = AdversarialConfig(r1_weight=gamma, discriminator_shift=0)
        loss, slope = model._train_discriminator(images, labels, decoded, weights, 1.0)
        moved[gamma] = [np.array(v) - value for v, value in zip(model.discriminator.trainable_weights, start)]
        assert float(slope) == (pytest.approx(by_hand, rel=1e-4) if gamma else 0.0)
    assert by_hand > 0
    assert any(not np.allclose(a, b) for a, b in zip(moved[10.0], moved[0.0]))  # the penalty trains it
