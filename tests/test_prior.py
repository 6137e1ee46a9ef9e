"""The generator's latent prior: one Gaussian per label pair, fitted on the encoder's codes, and
the generator drawing from it; and, on the real data, that the
shipped generator's prior makes its images show the requested labels more often than N(0, I)."""

from __future__ import annotations

import json
import shlex
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from helpers import LATENT, N_SUB, REPO, SCHEMA, condition, load_script, random_photos_of_three_pairs, synthetic_codes

from fashiongen.errors import GeneratorError
from fashiongen.generator.cvae import build_generator
from fashiongen.generator.generator import DECODER_FILE, Generator
from fashiongen.generator.prior import PRIOR_FILE, LatentPrior
from fashiongen.model_folder import GENERATOR, SCHEMA_FILE
from fashiongen.schema import LabelSchema


def test_fit_gives_each_pairs_mean_and_its_covariance_shrunk_towards_the_pooled_one() -> None:
    codes, conditions, centres, _ = synthetic_codes(np.random.default_rng(0))
    prior = LatentPrior.fit(codes, conditions, N_SUB, shrinkage=5.0)
    assert len(prior.counts) == 3 and prior.counts.sum() == 850  # the 7 rows outside the schema left out
    residuals = {}
    for pair in centres:
        rows = (conditions == condition(*pair)).all(axis=1)
        np.testing.assert_allclose(prior.centres(condition(*pair)[None])[0], codes[rows].mean(axis=0), rtol=1e-5)
        residuals[pair] = codes[rows] - codes[rows].mean(axis=0)
    stacked = np.concatenate(list(residuals.values()))
    pooled = stacked.T @ stacked / (len(stacked) - 3)  # unbiased: one mean per pair estimated
    np.testing.assert_allclose(prior.pooled_scale @ prior.pooled_scale.T, pooled, rtol=1e-4, atol=1e-4)
    for index, pair in enumerate(sorted(centres, key=lambda p: tuple(condition(*p)))):  # np.unique's row order
        own = residuals[pair]
        expected = (own.T @ own + 5.0 * pooled) / (len(own) + 5.0)
        assert (prior.conditions[index] == condition(*pair)).all()
        np.testing.assert_allclose(prior.scales[index] @ prior.scales[index].T, expected, rtol=1e-4, atol=1e-4)
        assert np.allclose(prior.scales[index], np.tril(prior.scales[index]))


def test_unseen_pairs_take_their_sub_categorys_mean_and_nothing_known_takes_zero() -> None:
    codes, conditions, _, _ = synthetic_codes(np.random.default_rng(1))
    prior = LatentPrior.fit(codes, conditions, N_SUB)
    men, women = prior.centres(np.stack([condition("Topwear", "Men"), condition("Topwear", "Women")]))
    unseen = prior.centres(condition("Topwear", "Girls")[None])[0]
    np.testing.assert_allclose(unseen, (400 * men + 400 * women) / 800, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(prior.centres(condition("Dress", "Women")[None])[0], np.zeros(LATENT))


def test_samples_are_centre_plus_the_scaled_noise() -> None:
    codes, conditions, centres, _ = synthetic_codes(np.random.default_rng(2))
    prior = LatentPrior.fit(codes, conditions, N_SUB)
    rows = np.repeat(condition("Bags", "Boys")[None], 20000, axis=0)
    drawn = prior.sample(rows, np.random.default_rng(3).standard_normal((20000, LATENT)))
    np.testing.assert_allclose(drawn.mean(axis=0), prior.centres(rows[:1])[0], atol=0.15)
    bags = np.flatnonzero((prior.conditions == rows[0]).all(axis=1))[0]
    np.testing.assert_allclose(np.cov(drawn.T), prior.scales[bags] @ prior.scales[bags].T, rtol=0.06, atol=0.15)
    unseen = np.repeat(condition("Topwear", "Girls")[None], 20000, axis=0)  # no such pair: the pooled spread
    drawn = prior.sample(unseen, np.random.default_rng(4).standard_normal((20000, LATENT)))
    np.testing.assert_allclose(np.cov(drawn.T), prior.pooled_scale @ prior.pooled_scale.T, rtol=0.06, atol=0.15)


def test_with_colours_keeps_the_gaussians_and_counts_each_pairs_colours_anew() -> None:
    codes, conditions, _, _ = synthetic_codes(np.random.default_rng(0))
    prior = LatentPrior.fit(codes, conditions, N_SUB)
    rows = np.stack([condition("Topwear", "Men")] * 3 + [condition("Bags", "Boys"), condition("Shoes", "Girls")])
    colours = np.eye(3, dtype=np.float32)[[0, 0, 2, 1, 1]]  # the last row's pair is not the prior's
    coloured = prior.with_colours(np.concatenate([rows, colours], axis=1))
    for name in ("conditions", "means", "counts", "scales", "pooled_scale"):
        np.testing.assert_array_equal(getattr(coloured, name), getattr(prior, name))
    _, pairs = prior._pairs_of(rows)
    expected = np.zeros((len(prior.counts), 3), np.int64)
    expected[pairs[0]] = [2, 0, 1]
    expected[pairs[3]] = [0, 1, 0]
    np.testing.assert_array_equal(coloured.colour_counts, expected)


def test_fit_needs_labelled_images() -> None:
    with pytest.raises(GeneratorError, match="at least 2 labelled images"):
        LatentPrior.fit(np.zeros((3, LATENT)), np.zeros((3, SCHEMA.size), np.float32), N_SUB)


# ----------------------------------------------------------------------------- a Generator with a prior


@pytest.fixture(scope="module")
def with_prior(tmp_path_factory: pytest.TempPathFactory):
    """An untrained conv generator with a prior fitted on random images, saved; and without one."""
    model = build_generator("conv", SCHEMA.size, latent_dim=16)
    plain = Generator(model.encoder, model.decoder, SCHEMA, "conv", {"model": "generator", "arch": "conv"})
    images, conditions = random_photos_of_three_pairs()
    generator = Generator(plain.encoder, plain.decoder, SCHEMA, "conv", dict(plain.card))
    generator.fit_prior(images, conditions, batch_size=8)
    folder = tmp_path_factory.mktemp("with-prior") / "model"
    generator.save(folder)
    return generator, folder, plain


def test_generate_decodes_the_priors_codes(with_prior) -> None:
    generator, _, plain = with_prior
    rows = np.repeat(condition("Bags", "Men")[None], 3, axis=0)
    expected = generator.decode(generator.prior.sample(rows, generator.codes(5, 3)), rows)
    np.testing.assert_array_equal(generator.generate("Bags", "Men", 5, 3), expected)
    assert not np.array_equal(expected, plain.generate("Bags", "Men", 5, 3))  # N(0, I) draws other codes


def test_prior_survives_save_and_load(with_prior) -> None:
    generator, folder, _ = with_prior
    assert (folder / PRIOR_FILE).is_file()
    loaded = Generator.load(folder)
    np.testing.assert_array_equal(loaded.prior.means, generator.prior.means)
    np.testing.assert_array_equal(loaded.prior.scales, generator.prior.scales)
    np.testing.assert_array_equal(loaded.generate("Shoes", "Women", -3, 4), generator.generate("Shoes", "Women", -3, 4))


def test_a_saved_prior_stores_the_triangular_scales_zeros_compressed(tmp_path: Path) -> None:
    """The shipped prior is 68 lower-triangular 128x128 scales: stored plainly, half the file is zeros."""
    rng = np.random.default_rng(0)
    pairs, latent = 4, 64
    scales = np.tril(rng.normal(size=(pairs, latent, latent))).astype(np.float32)
    means = rng.normal(size=(pairs, latent)).astype(np.float32)
    prior = LatentPrior(np.eye(pairs, SCHEMA.size, dtype=np.float32), means, np.full(pairs, 10), scales, scales[0],
                        N_SUB)
    prior.save(tmp_path / PRIOR_FILE)
    arrays = sum(array.nbytes for array in (prior.conditions, prior.means, prior.counts, scales, prior.pooled_scale))
    assert (tmp_path / PRIOR_FILE).stat().st_size < 0.7 * arrays
    np.testing.assert_array_equal(LatentPrior.load(tmp_path / PRIOR_FILE).scales, scales)


def test_interpolation_ends_are_the_generated_images(with_prior) -> None:
    generator, _, _ = with_prior
    frames = generator.interpolate(("Shoes", "Women", 1), ("Bags", "Men", 2), 4)
    np.testing.assert_array_equal(frames[0], generator.generate("Shoes", "Women", 1, 1)[0])
    np.testing.assert_array_equal(frames[-1], generator.generate("Bags", "Men", 2, 1)[0])


def test_corrupt_prior_names_the_file_and_the_refit_command(with_prior, tmp_path: Path) -> None:
    broken = shutil.copytree(with_prior[1], tmp_path / "broken")
    (broken / PRIOR_FILE).write_bytes(b"PK\x03\x04 torn")
    with pytest.raises(GeneratorError, match="prior.npz is corrupt.*fit_generator_prior.py"):
        Generator.load(broken)


def test_prior_of_another_latent_size_is_refused(with_prior, tmp_path: Path) -> None:
    other = shutil.copytree(with_prior[1], tmp_path / "other")
    prior = with_prior[0].prior
    LatentPrior(prior.conditions, prior.means[:, :3], prior.counts, prior.scales[:, :3, :3],
                    prior.pooled_scale[:3, :3], N_SUB).save(other / PRIOR_FILE)
    assert zipfile.is_zipfile(other / PRIOR_FILE)
    with pytest.raises(GeneratorError, match="prior.npz does not fit this generator .*fit_generator_prior.py"):
        Generator.load(other)


def test_labels_of_another_width_blame_labels_json_not_the_prior(with_prior, tmp_path: Path) -> None:
    """One name fewer in labels.json: it blamed prior.npz, and the refit it suggested crashed in Keras."""
    folder = shutil.copytree(with_prior[1], tmp_path / "model")
    schema = json.loads((folder / SCHEMA_FILE).read_text())
    schema["sub_categories"].pop()
    (folder / SCHEMA_FILE).write_text(json.dumps(schema))
    for with_prior_file in (True, False):  # False: as fit_generator_prior.py loads it
        with pytest.raises(GeneratorError) as raised:
            Generator.load(folder, with_prior=with_prior_file)
        assert str(raised.value) == (f"{folder / SCHEMA_FILE} names {SCHEMA.size - 1} labels, but "
                                     f"{folder / DECODER_FILE} takes {SCHEMA.size}. Retrain it with: "
                                     f"{GENERATOR.retrain_command(folder)}")


def test_a_prior_split_for_another_schema_is_refused_and_its_refit_command_mends_it(
        with_prior, tiny_dataset: Path, cache_dir: Path, tmp_path: Path) -> None:
    folder = shutil.copytree(with_prior[1], tmp_path / "model")
    prior = with_prior[0].prior
    LatentPrior(prior.conditions, prior.means, prior.counts, prior.scales, prior.pooled_scale,
                    N_SUB - 1).save(folder / PRIOR_FILE)
    with pytest.raises(GeneratorError) as raised:
        Generator.load(folder)
    message = str(raised.value)
    assert message.startswith(f"{folder / PRIOR_FILE} does not fit this generator (it splits the labels after "
                              f"{N_SUB - 1} sub-categories, not {N_SUB}). Refit it with: ")
    first, then = message.split("Refit it with: ")[1].split(" ; then, for a residual kernel: ")
    for suggested, script in ((first, "fit_generator_prior.py"), (then, "fit_prior_kernel.py")):
        command = shlex.split(suggested)
        assert command[:2] == ["python", f"scripts/{script}"]
        argv = command[2:]
        argv[argv.index("--data-dir") + 1] = str(tiny_dataset)  # the suggested command, on the tiny data set
        assert load_script(REPO / "scripts" / script).main([*argv, "--cache-dir", str(cache_dir)]) == 0
    assert Generator.load(folder).prior.n_sub_categories == N_SUB
    assert Generator.load(folder).prior.kernel is not None  # both commands run as suggested


# ----------------------------------------------------------------------------- the shipped generator


def test_shipped_prior_makes_generated_images_show_their_labels(shared_data: Path) -> None:
    """The shipped classifier judges a few common and rare pairs, 8 seeds each: drawing codes from
    the prior must label right clearly more often than drawing them from N(0, I)."""
    from fashiongen.labeler.labeler import Labeler

    generator, labeler = Generator.load(), Labeler.load()
    assert generator.prior is not None, "the shipped generator has no latent prior"
    pairs = [("Shoes", "Men"), ("Topwear", "Women"), ("Watches", "Unisex"), ("Bags", "Women"), ("Saree", "Women"),
             ("Socks", "Boys")]
    hits = {"prior": 0, "standard normal": 0}
    for sub_category, gender in pairs:
        rows = generator.conditions(sub_category, gender, 0, 8)  # any colour, as the app draws them
        noise = np.concatenate([generator.codes(seed, 1) for seed in range(8)])
        for name, codes in (("prior", generator.prior.sample(rows, noise)), ("standard normal", noise)):
            predictions = labeler.predict(generator.decode(codes, rows))
            hits[name] += sum(p.top_sub_category[0] == sub_category for p in predictions)
    assert hits["prior"] >= hits["standard normal"] + 8, hits


# ----------------------------------------------------------------------------- colour control

COLOURED = LabelSchema(SCHEMA.sub_categories, SCHEMA.genders, (("baseColour", ("Black", "White", "Red")),))


def coloured(sub_category: str, gender: str, colour: str) -> np.ndarray:
    return np.concatenate([condition(sub_category, gender), np.eye(3, dtype=np.float32)[
        COLOURED.heads["baseColour"].index(colour)]])


@pytest.fixture(scope="module")
def colour_generator(tmp_path_factory: pytest.TempPathFactory):
    """An untrained conv generator conditioned on three colours, its prior fitted on random images:
    Shoes/Women seen 9 times black and once white; Bags/Men only red."""
    model = build_generator("conv", COLOURED.size, latent_dim=16)
    generator = Generator(model.encoder, model.decoder, COLOURED, "conv", {"model": "generator", "arch": "conv"})
    rows = [coloured("Shoes", "Women", "Black")] * 9 + [coloured("Shoes", "Women", "White")] + \
        [coloured("Bags", "Men", "Red")] * 4
    images = np.random.default_rng(5).integers(0, 256, (len(rows), 80, 60, 3), dtype=np.uint8)
    generator.fit_prior(images, np.stack(rows), batch_size=8)
    folder = tmp_path_factory.mktemp("coloured") / "model"
    generator.save(folder)
    return generator, folder


def test_the_prior_keys_pairs_by_the_paper_heads_and_counts_their_colours(colour_generator) -> None:
    prior = colour_generator[0].prior
    assert prior.conditions.shape == (2, SCHEMA.size)  # one Gaussian per pair, not per (pair, colour)
    np.testing.assert_allclose(prior.colour_weights(coloured("Shoes", "Women", "Red")), [0.9, 0.1, 0.0])
    np.testing.assert_allclose(prior.colour_weights(condition("Bags", "Men")), [0, 0, 1])
    # a pair never seen: its sub-category's colours; nothing known: every colour alike
    np.testing.assert_allclose(prior.colour_weights(condition("Shoes", "Men")), [0.9, 0.1, 0.0])
    np.testing.assert_allclose(prior.colour_weights(condition("Topwear", "Men")), [1 / 3] * 3)


def test_any_colour_is_drawn_from_the_pairs_colours_by_the_seed(colour_generator) -> None:
    generator = colour_generator[0]
    rows = generator.conditions("Bags", "Men", seed=3, n=6)
    np.testing.assert_array_equal(rows, np.repeat(coloured("Bags", "Men", "Red")[None], 6, axis=0))
    drawn = generator.conditions("Shoes", "Women", seed=11, n=400)[:, SCHEMA.size:]
    assert drawn.sum(axis=1).tolist() == [1.0] * 400 and drawn[:, 2].sum() == 0
    assert 0.85 < drawn[:, 0].mean() < 0.95  # 9 of 10 training photos are black
    np.testing.assert_array_equal(generator.conditions("Shoes", "Women", 11, 5),
                                  generator.conditions("Shoes", "Women", 11, 400)[:5])  # n = 5 is n = 400's start
    # the codes are those of the same seed: the colour has a random stream of its own
    np.testing.assert_array_equal(generator.latents(rows, 3), generator.prior.sample(rows, generator.codes(3, 6)))


def test_a_chosen_colour_is_in_every_row_and_changes_the_pixels(colour_generator) -> None:
    generator, folder = colour_generator
    white = generator.generate("Shoes", "Women", 4, 3, colour="White")
    black = generator.generate("Shoes", "Women", 4, 3, colour="Black")
    assert not np.array_equal(white, black)
    np.testing.assert_array_equal(Generator.load(folder).generate("Shoes", "Women", 4, 3, colour="White"), white)
    np.testing.assert_array_equal(generator.conditions("Shoes", "Women", 4, 2, "White"),
                                  np.repeat(coloured("Shoes", "Women", "White")[None], 2, axis=0))
    frames = generator.interpolate(("Shoes", "Women", 4, "White"), ("Bags", "Men", 2), 3).astype(int)
    # other batch-mates may move float32 rounding across a .5 boundary: at most 1 level
    assert np.abs(frames[0] - white[0]).max() <= 1
    assert np.abs(frames[-1] - generator.generate("Bags", "Men", 2, 1)[0]).max() <= 1


def test_colour_mistakes_name_the_valid_colours(colour_generator, with_prior) -> None:
    with pytest.raises(GeneratorError, match="Unknown colour 'Teal'; valid: Black, White, Red"):
        colour_generator[0].generate("Shoes", "Women", 0, colour="Teal")
    with pytest.raises(GeneratorError, match="no colour control"):
        with_prior[0].generate("Shoes", "Women", 0, colour="Black")
    assert with_prior[0].colours == () and colour_generator[0].colours == ("Black", "White", "Red")


def test_a_prior_saved_before_colour_counts_loads_with_none(with_prior, tmp_path: Path) -> None:
    folder = shutil.copytree(with_prior[1], tmp_path / "model")
    with np.load(folder / PRIOR_FILE) as saved:
        arrays = {name: saved[name] for name in saved.files if name != "colour_counts"}
    np.savez(folder / PRIOR_FILE, **arrays)
    loaded = Generator.load(folder)
    assert loaded.prior.colour_counts.shape == (3, 0)
    np.testing.assert_array_equal(loaded.generate("Shoes", "Women", 2, 2),
                                  with_prior[0].generate("Shoes", "Women", 2, 2))


# ----------------------------------------------------------------------------- keyed by colour


@pytest.fixture(scope="module")
def keyed_by_colour(tmp_path_factory: pytest.TempPathFactory):
    """The colour generator's rows, its prior keyed by colour; codes made so that each
    (pair, colour) has a known centre: black shoes at +3, white shoes at -3, red bags at 10."""
    model = build_generator("conv", COLOURED.size, latent_dim=LATENT)
    generator = Generator(model.encoder, model.decoder, COLOURED, "conv", {"model": "generator", "arch": "conv"})
    rows = np.stack([coloured("Shoes", "Women", "Black")] * 9 + [coloured("Shoes", "Women", "White")] * 3
                    + [coloured("Bags", "Men", "Red")] * 4)
    centres = np.array([3.0] * 9 + [-3.0] * 3 + [10.0] * 4)[:, None]
    codes = centres + np.random.default_rng(0).normal(scale=0.1, size=(len(rows), LATENT))
    prior = LatentPrior.fit(codes, rows, N_SUB, key_width=COLOURED.size, pair_width=SCHEMA.size)
    generator.prior = prior
    folder = tmp_path_factory.mktemp("keyed") / "model"
    generator.save(folder)
    return generator, folder


def test_a_prior_keyed_by_colour_draws_the_asked_colours_codes(keyed_by_colour) -> None:
    prior = keyed_by_colour[0].prior
    assert prior.keyed_by_colour and prior.conditions.shape == (3, COLOURED.size) and prior.pair_width == SCHEMA.size
    noise = np.zeros((3, LATENT), np.float32)
    rows = np.stack([coloured("Shoes", "Women", "Black"), coloured("Shoes", "Women", "White"),
                     coloured("Bags", "Men", "Red")])
    np.testing.assert_allclose(prior.sample(rows, noise)[:, 0], [3.0, -3.0, 10.0], atol=0.2)
    # a colour never seen with the pair: the pair's keys' count-weighted centre, not the sub-category's
    np.testing.assert_allclose(prior.centres(coloured("Shoes", "Women", "Red")[None])[0, 0],
                               (9 * 3.0 - 3 * 3.0) / 12, atol=0.2)
    # any colour: the pair's keys' counts
    np.testing.assert_allclose(prior.colour_weights(coloured("Shoes", "Women", "Red")), [0.75, 0.25, 0.0])
    np.testing.assert_allclose(prior.colour_weights(condition("Shoes", "Men")), [0.75, 0.25, 0.0])
    generator = keyed_by_colour[0]
    drawn = generator.conditions("Shoes", "Women", seed=11, n=400)
    np.testing.assert_array_equal(generator.latents(drawn, 11), prior.sample(drawn, generator.codes(11, 400)))


def test_a_prior_keyed_by_colour_survives_save_and_load(keyed_by_colour) -> None:
    generator, folder = keyed_by_colour
    loaded = Generator.load(folder)
    assert loaded.prior.keyed_by_colour and loaded.prior.pair_width == SCHEMA.size
    np.testing.assert_array_equal(loaded.generate("Shoes", "Women", 2, 3), generator.generate("Shoes", "Women", 2, 3))


def test_a_prior_keyed_by_colour_needs_colour_control(with_prior) -> None:
    generator = with_prior[0]
    with pytest.raises(GeneratorError, match="keyed by colour needs a generator with colour control"):
        generator.fit_prior(np.zeros((2, 80, 60, 3), np.uint8), np.stack([condition("Shoes", "Men")] * 2),
                            by_colour=True)


def test_a_prior_keyed_by_colour_keeps_one_spread_per_pair_around_each_colours_centre(keyed_by_colour) -> None:
    """About a thousand (pair, colour) keys in the real data: a factor each would not ship."""
    prior = keyed_by_colour[0].prior
    assert prior.scales.shape == (2, LATENT, LATENT) and len(prior.scale_of_key) == 3
    shoes = prior.scale_of_key[(prior.conditions[:, :SCHEMA.size] == condition("Shoes", "Women")).all(axis=1)]
    assert len(set(shoes.tolist())) == 1 and prior.scale_of_key.max() == 1
    # the shoes' spread is around each colour's centre (about 0.1), not across the two (about 3)
    spread = prior.scales[shoes[0]] @ prior.scales[shoes[0]].T
    assert np.diag(spread).max() < 0.5
    np.testing.assert_array_equal(prior.key_scales[0], prior.scales[prior.scale_of_key[0]])


def test_keyed_by_colour_each_centre_is_shrunk_towards_its_pairs_by_its_photos() -> None:
    """Black shoes (9 photos at +3) and white shoes (3 at -3), shrunk by 6 pseudo-images towards
    the shoes' centre (9 * 3 - 3 * 3) / 12 = 1.5: black (9 * 3 + 6 * 1.5) / 15 = 2.4 moves less
    than white (3 * -3 + 6 * 1.5) / 9 = 0; the red bags, their pair's only colour, stay at 10."""
    rows = np.stack([coloured("Shoes", "Women", "Black")] * 9 + [coloured("Shoes", "Women", "White")] * 3
                    + [coloured("Bags", "Men", "Red")] * 4)
    codes = np.array([3.0] * 9 + [-3.0] * 3 + [10.0] * 4)[:, None] * np.ones((1, LATENT))
    fit = lambda shrinkage: LatentPrior.fit(codes, rows, N_SUB, key_width=COLOURED.size,  # noqa: E731
                                            pair_width=SCHEMA.size, colour_shrinkage=shrinkage)
    np.testing.assert_allclose(fit(0.0).means[:, 0], sorted_by_key(fit(0.0), [3.0, -3.0, 10.0]), atol=1e-6)
    shrunk = fit(6.0)
    np.testing.assert_allclose(shrunk.means[:, 0], sorted_by_key(shrunk, [2.4, 0.0, 10.0]), atol=1e-6)
    np.testing.assert_array_equal(shrunk.scales, fit(0.0).scales)  # the spread is around each colour's photos


def sorted_by_key(prior: LatentPrior, values: list[float]) -> np.ndarray:
    """`values` for black shoes, white shoes and red bags, in the order of the prior's keys."""
    keys = [coloured("Shoes", "Women", "Black"), coloured("Shoes", "Women", "White"), coloured("Bags", "Men", "Red")]
    return np.array([values[[np.array_equal(key, row) for row in keys].index(True)] for key in prior.conditions])


def test_refined_without_stretch_a_prior_keyed_by_colour_keeps_one_spread_per_pair(keyed_by_colour) -> None:
    """A refined prior keyed by colour once stored a factor per key: 33 MB for the real data's
    thousand keys, where its pairs' spreads take 2 MB."""
    prior = keyed_by_colour[0].prior
    rng = np.random.default_rng(3)
    shift = rng.normal(size=prior.means.shape)
    moved = prior.refined(shift, np.zeros_like(shift))
    assert moved.scales.shape == prior.scales.shape and np.array_equal(moved.scale_of_key, prior.scale_of_key)
    noise = rng.standard_normal((len(prior.conditions), LATENT))
    expected = prior.means + np.einsum("pij,pj->pi", prior.key_scales, shift + noise)
    np.testing.assert_allclose(moved.sample(prior.conditions, noise), expected, rtol=1e-4, atol=1e-4)
    stretched = prior.refined(shift, np.full_like(shift, 0.1))
    assert len(stretched.scales) == len(prior.conditions)  # each key's spread is its own once stretched
