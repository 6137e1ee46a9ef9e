#!/usr/bin/env python
"""Measure FashionGen against the naive way side by side in one run, and the served app against its
targets; print a table, write JSON.

Sections (later work adds more):
  data        first decode of the dataset (images/s), cached reload (s) and peak memory, for
              FashionGen's loader and for the naive way (Pillow in a loop into a float32 array).
  classifier  training the paper's frozen-backbone head with backbone features computed once vs
              the paper's loop (every image through the backbone every epoch); latency of labeling
              one upload through the app's code path vs model.predict, p50/p95 after warm-up.
  generator   generating 16 images through the app's code path vs decoder.predict, p50/p95.
  training    seconds per training step (64 images) of the default generator's two phases (the
              plain CVAE step and the VAE-GAN's adversarial step) with FashionGen's TensorFlow
              setting (oneDNN kernels on) vs TensorFlow's own default, which leaves them off on
              CPUs without AVX-512.
  label_folder  labelling a folder of dataset photos into a CSV: scripts/label_images.py's batched
              path (a batch decoded, one Labeler.analyse call, rows appended) vs the naive loop
              (Labeler.label per image, a row each), images/s after a warm-up.
  app         the app end to end: a real `streamlit run app.py` server driven by Playwright in
              Debian's Chromium. Cold start (process spawn to the Label page's first render),
              then p50/p95 of labeling an upload and of changing the seed on the Generate page,
              in one session and in 8 concurrent sessions, against the issue's targets (not
              against a naive contender).

Each measurement runs in a fresh process, so its peak memory (max RSS) is its own; that is why the
measured functions import what they use themselves (a child loads only its contender's libraries).
The app and training sections need no styles.csv: the app section uploads photos from --data-dir's
images/ when there are any, otherwise images the shipped generator draws; the training section
times random pixels.
Example: python scripts/benchmark.py --data-dir ../shared/data/fashion-small --json benchmark.json
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Callable
from unittest.mock import patch

from fashiongen import ONEDNN_VARIABLE as ONEDNN
from fashiongen.app_server import (
    CHROMIUM,
    CHROMIUM_FLAGS,
    RUN_FINISHED,
    free_port,
    start_app,
    stop_app,
    wait_until_serving,
)
from fashiongen.model_folder import LABELER, SCHEMA_FILE
from fashiongen.paths import DEFAULT_DATA_DIR
from fashiongen.schema import LabelSchema


def _percentiles(times_ms: list[float]) -> dict:
    """p50 and p95 of a latency sample, and its size (every section reports latencies this way)."""
    import numpy as np

    return {"p50_ms": float(np.percentile(times_ms, 50)), "p95_ms": float(np.percentile(times_ms, 95)),
            "samples": len(times_ms)}


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


# ----------------------------------------------------------------------------- data section
# The measured functions run in child processes; they return plain dicts.


def _dataset_paths(data_dir: str, limit: int | None) -> list[Path]:
    from fashiongen.dataset import _image_files
    from fashiongen.styles import read_styles

    styles = read_styles(Path(data_dir) / "styles.csv")
    on_disk = _image_files(Path(data_dir) / "images")
    ids = sorted(i for i in styles["id"] if i in on_disk)[:limit]
    return [on_disk[i] for i in ids]


def _naive_decode(data_dir: str, limit: int | None) -> dict:
    """The way the paper's notebook does it: Pillow per file, straight into float32."""
    import numpy as np
    from PIL import Image

    paths = _dataset_paths(data_dir, limit)
    start = time.perf_counter()
    images = np.zeros((len(paths), 80, 60, 3), np.float32)
    for i, path in enumerate(paths):
        image = Image.open(path).convert("RGB")
        if image.size != (60, 80):
            image = image.resize((60, 80))
        images[i] = np.asarray(image, np.float32) / 255.0
    seconds = time.perf_counter() - start
    return {"images": len(paths), "seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "array_mb": images.nbytes / 2**20}


def _ours_load(data_dir: str, limit: int | None, cache_dir: str) -> dict:
    """FashionGen's load_images: cache key from file stats, then parallel decode or cache reload."""
    from fashiongen.dataset import load_images

    paths = _dataset_paths(data_dir, limit)
    start = time.perf_counter()
    images = load_images(paths, cache_dir=cache_dir).images
    seconds = time.perf_counter() - start
    return {"images": len(paths), "seconds": seconds, "peak_rss_mb": _peak_rss_mb(), "array_mb": images.nbytes / 2**20}


def _ours_full_reload(data_dir: str, cache_dir: str) -> dict:
    """The whole `load_dataset` call a training script makes, from a warm cache."""
    from fashiongen.dataset import load_dataset

    start = time.perf_counter()
    loaded = load_dataset(data_dir, cache_dir=cache_dir)
    seconds = time.perf_counter() - start
    return {"images": len(loaded.images), "seconds": seconds, "peak_rss_mb": _peak_rss_mb()}


def _in_fresh_process(function: Callable, *args) -> dict:
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
        return pool.submit(function, *args).result()


def bench_data(args: argparse.Namespace) -> dict:
    data_dir = str(args.data_dir)
    for path in _dataset_paths(data_dir, args.limit):  # warm the page cache for both contenders
        path.read_bytes()
    with tempfile.TemporaryDirectory(prefix="fashiongen-bench-") as cache_dir:
        naive = _in_fresh_process(_naive_decode, data_dir, args.limit)
        first = _in_fresh_process(_ours_load, data_dir, args.limit, cache_dir)
        reload = _in_fresh_process(_ours_load, data_dir, args.limit, cache_dir)
        full = _in_fresh_process(_ours_full_reload, data_dir, cache_dir) if args.limit is None else None
    n = naive["images"]
    result = {
        "images": n,
        "naive_decode_images_per_s": n / naive["seconds"],
        "naive_decode_s": naive["seconds"],
        "naive_peak_rss_mb": naive["peak_rss_mb"],
        "first_decode_images_per_s": n / first["seconds"],
        "first_decode_s": first["seconds"],
        "first_decode_peak_rss_mb": first["peak_rss_mb"],
        "cached_reload_s": reload["seconds"],
        "cached_reload_peak_rss_mb": reload["peak_rss_mb"],
        "first_decode_speedup_vs_naive": naive["seconds"] / first["seconds"],
        "cached_reload_speedup_vs_naive": naive["seconds"] / reload["seconds"],
        "peak_memory_ratio_vs_naive": first["peak_rss_mb"] / naive["peak_rss_mb"],
    }
    if full is not None:
        result["load_dataset_cached_s"] = full["seconds"]
        result["load_dataset_cached_peak_rss_mb"] = full["peak_rss_mb"]
    rows = [
        ("decode all images", f"{n / naive['seconds']:,.0f} img/s ({naive['seconds']:.2f} s)",
         f"{n / first['seconds']:,.0f} img/s ({first['seconds']:.2f} s)", f"{result['first_decode_speedup_vs_naive']:.1f}x faster"),
        ("reload", f"{naive['seconds']:.2f} s (decodes again)", f"{reload['seconds']:.2f} s (cache)",
         f"{result['cached_reload_speedup_vs_naive']:.1f}x faster"),
        ("peak memory (max RSS)", f"{naive['peak_rss_mb']:,.0f} MB (float32)", f"{first['peak_rss_mb']:,.0f} MB (uint8)",
         f"{result['peak_memory_ratio_vs_naive']:.2f}x"),
    ]
    if full is not None:
        rows.append(("load_dataset(), warm cache", "", f"{full['seconds']:.2f} s, {full['peak_rss_mb']:,.0f} MB", ""))
    _print_table(f"data: {n:,} images from {data_dir}", ("measure", "naive (PIL loop -> float32)", "fashiongen", "ratio"), rows)
    return result


# ----------------------------------------------------------------------------- classifier section


BATCH_SIZE = 128  # train_classifier.py's default, for both contenders


def _train_frozen_phase(data_dir: str, n_images: int, epochs: int, cached: bool) -> dict:
    """Train the paper architecture's head on a frozen MobileNetV2 for `epochs`: either every image
    through the backbone every epoch (the paper's loop) or features computed once (ours)."""
    import numpy as np

    from fashiongen.batches import ImageBatches
    from fashiongen.dataset import load_dataset
    from fashiongen.labeler.model import build_classifier, compile_classifier, split_at_features
    from fashiongen.schema import LabelSchema
    from fashiongen.splits import make_split

    loaded = load_dataset(data_dir)
    schema = LabelSchema.from_styles(loaded.styles)
    labels = loaded.labels(schema)
    rows = make_split("random", loaded).train[:n_images]
    model = build_classifier(schema, "paper")
    start = time.perf_counter()
    if cached:
        extractor, head = split_at_features(model)
        compile_classifier(head, schema, steps_per_execution=32)  # as train_classifier.py does
        features = extractor.predict(ImageBatches(loaded.images, batch_size=256, indices=rows), verbose=0)
        history = head.fit(features, labels[rows], batch_size=BATCH_SIZE, epochs=epochs, shuffle=True, verbose=0)
    else:
        compile_classifier(model, schema)
        history = model.fit(ImageBatches(loaded.images, labels, BATCH_SIZE, indices=rows, shuffle=True), epochs=epochs,
                            verbose=0)
    return {"seconds": time.perf_counter() - start, "final_loss": float(np.asarray(history.history["loss"])[-1])}


def _labeler_or_untrained():
    """(the shipped labeler, "shipped model"), or an untrained compact one where none is shipped."""
    from fashiongen.errors import ClassifierError
    from fashiongen.labeler.labeler import Labeler
    from fashiongen.labeler.model import build_classifier
    from fashiongen.schema import LabelSchema

    try:
        return Labeler.load(), "shipped model"
    except ClassifierError:
        schema = LabelSchema(tuple(f"sub{i}" for i in range(20)), ("Men", "Women", "Unisex", "Boys", "Girls"))
        return Labeler(build_classifier(schema), schema), "untrained compact model (no shipped model found)"


def _label_latency(data_dir: str, repeats: int) -> dict:
    """Label one uploaded photo (JPEG bytes) through the app's code path (decode, preprocess,
    predict, rank names), and through the naive way (`model.predict` on one image), after a
    warm-up; milliseconds per image."""
    from fashiongen.batches import to_unit_float
    from fashiongen.imaging import load_image

    labeler, source = _labeler_or_untrained()
    photos = sorted((Path(data_dir) / "images").glob("*.jpg"))[:50]
    uploads = [p.read_bytes() for p in photos]

    def timed(function) -> list[float]:
        for upload in uploads[:10]:
            function(upload)  # warm-up: graph tracing, allocator
        times = []
        for i in range(repeats):
            start = time.perf_counter()
            function(uploads[i % len(uploads)])
            times.append((time.perf_counter() - start) * 1000)
        return times

    ours = timed(labeler.label)
    naive = timed(lambda upload: labeler.model.predict(to_unit_float(load_image(upload)[None]), verbose=0))
    return {"model": source, "ours": _percentiles(ours), "naive": _percentiles(naive)}


def bench_classifier(args: argparse.Namespace) -> dict:
    data_dir = str(args.data_dir)
    n, epochs = args.classifier_images, args.classifier_epochs
    loop = _in_fresh_process(_train_frozen_phase, data_dir, n, epochs, False)
    cached = _in_fresh_process(_train_frozen_phase, data_dir, n, epochs, True)
    latency = _in_fresh_process(_label_latency, data_dir, args.latency_repeats)
    result = {
        "frozen_phase": {"images": n, "epochs": epochs, "paper_loop_s": loop["seconds"],
                         "cached_features_s": cached["seconds"], "speedup": loop["seconds"] / cached["seconds"],
                         "paper_loop_final_loss": loop["final_loss"], "cached_final_loss": cached["final_loss"]},
        "label_one_upload": latency,
    }
    rows = [
        (f"train frozen-backbone head, {epochs} epochs x {n:,} images", f"{loop['seconds']:.1f} s (paper's loop)",
         f"{cached['seconds']:.1f} s (features once)", f"{result['frozen_phase']['speedup']:.1f}x faster"),
        ("label one upload, p50", f"{latency['naive']['p50_ms']:.1f} ms (model.predict)",
         f"{latency['ours']['p50_ms']:.1f} ms (Labeler.label)",
         f"{latency['naive']['p50_ms'] / latency['ours']['p50_ms']:.1f}x faster"),
        ("label one upload, p95", f"{latency['naive']['p95_ms']:.1f} ms", f"{latency['ours']['p95_ms']:.1f} ms",
         f"{latency['naive']['p95_ms'] / latency['ours']['p95_ms']:.1f}x faster"),
    ]
    _print_table(f"classifier ({latency['model']} for latency)", ("measure", "naive", "fashiongen", "ratio"), rows)
    return result


# ----------------------------------------------------------------------------- generator section


def _generate_latency(repeats: int, folder: str | None) -> dict:
    """Generate 16 images of one (sub-category, gender) with the generator in `folder` (None: the
    shipped one) through the app's code path (Generator.generate), and the naive way
    (decoder.predict); ms per call."""
    import numpy as np

    from fashiongen.errors import GeneratorError
    from fashiongen.generator.architectures import DEFAULT_ARCH
    from fashiongen.generator.cvae import build_generator
    from fashiongen.generator.generator import Generator
    from fashiongen.schema import LabelSchema

    if folder is not None:
        generator, source = Generator.load(folder), folder
    else:
        try:
            generator, source = Generator.load(), "shipped generator"
        except GeneratorError:
            model = build_generator(DEFAULT_ARCH, 25)
            schema = LabelSchema(tuple(f"sub{i}" for i in range(20)), ("Men", "Women", "Unisex", "Boys", "Girls"))
            generator = Generator(model.encoder, model.decoder, schema, DEFAULT_ARCH)
            source = "untrained default generator (no shipped model found)"
    sub_category, gender = generator.schema.sub_categories[0], generator.schema.genders[0]

    def naive(seed: int) -> None:
        codes = generator.codes(seed, 16)
        conditions = np.repeat(generator.condition(sub_category, gender)[None], 16, axis=0)
        generator.decoder.predict([codes, conditions], verbose=0)

    def timed(function) -> list[float]:
        for seed in range(10):
            function(seed)  # warm-up
        times = []
        for seed in range(repeats):
            start = time.perf_counter()
            function(seed)
            times.append((time.perf_counter() - start) * 1000)
        return times

    ours = timed(lambda seed: generator.generate(sub_category, gender, seed, 16))
    slow = timed(naive)
    return {"model": source, "ours": _percentiles(ours), "naive": _percentiles(slow)}


def _generator_problem(folder: str) -> str | None:
    """Why the generator in `folder` cannot be loaded (one line), or None."""
    from fashiongen.errors import GeneratorError
    from fashiongen.generator.generator import Generator

    try:
        Generator.load(folder)
    except GeneratorError as error:
        return str(error)
    return None


def bench_generator(args: argparse.Namespace) -> dict:
    result = _in_fresh_process(_generate_latency, args.latency_repeats,
                               None if args.generator is None else str(args.generator))
    ours, naive = result["ours"], result["naive"]
    rows = [
        ("generate 16 images, p50", f"{naive['p50_ms']:.1f} ms (decoder.predict)",
         f"{ours['p50_ms']:.1f} ms (Generator.generate)", f"{naive['p50_ms'] / ours['p50_ms']:.1f}x faster"),
        ("generate 16 images, p95", f"{naive['p95_ms']:.1f} ms", f"{ours['p95_ms']:.1f} ms",
         f"{naive['p95_ms'] / ours['p95_ms']:.1f}x faster"),
    ]
    _print_table(f"generator ({result['model']})", ("measure", "naive", "fashiongen", "ratio"), rows)
    return {"generate_16": result}


# ----------------------------------------------------------------------------- training section

TRAINING_WARMUP = 2  # untimed steps first (graph tracing)


def _training_steps(adversarial: bool, steps: int) -> dict:
    """Seconds per training step of an untrained VAE-GAN with the default generator's labels (25 of
    the paper's plus 35 colours) on one batch of random pixels (the time does not depend on them):
    its adversarial step, or the plain CVAE step it takes before the discriminator joins. The
    oneDNN setting is the one this process was started with."""
    import numpy as np

    from fashiongen.runtime import import_tensorflow_quietly

    tensorflow = import_tensorflow_quietly()
    import keras
    from tensorflow.python.util import _pywrap_util_port

    from fashiongen.generator.cvae import build_generator
    from fashiongen.generator.vaegan import AdversarialConfig
    from fashiongen.imaging import IMAGE_SHAPE
    from fashiongen.training import TrainingConfig

    n_labels, batch = 60, TrainingConfig.batch_size
    model = build_generator("vaegan", n_labels, seed=0, adversarial=AdversarialConfig(),
                            adversarial_start=0 if adversarial else 10**9)
    model.compile(optimizer=keras.optimizers.Adam(1e-4), discriminator_optimizer=keras.optimizers.Adam(1e-4))
    rng = np.random.default_rng(0)
    images = rng.random((batch, *IMAGE_SHAPE), dtype=np.float32)
    conditions = np.eye(n_labels, dtype=np.float32)[rng.integers(0, n_labels, batch)]
    for _ in range(TRAINING_WARMUP):
        model.train_on_batch(images, conditions)
    start = time.perf_counter()
    for _ in range(steps):
        model.train_on_batch(images, conditions)
    return {"seconds_per_step": (time.perf_counter() - start) / steps, "batch_size": batch,
            "onednn": bool(_pywrap_util_port.IsMklEnabled()), "tensorflow": tensorflow.__version__}


def _with_onednn(setting: str, function: Callable, *args) -> dict:
    """`function` in a fresh process started with TF_ENABLE_ONEDNN_OPTS=`setting`."""
    with patch.dict(os.environ, {ONEDNN: setting}):
        return _in_fresh_process(function, *args)


def _tensorflow_default_onednn() -> bool:
    """Whether TensorFlow turns oneDNN on by itself on this CPU (asked in a process without the variable)."""
    code = ("from tensorflow.python.util import _pywrap_util_port; "
            "print(int(_pywrap_util_port.IsMklEnabled()))")
    env = {key: value for key, value in os.environ.items() if key != ONEDNN} | {"TF_CPP_MIN_LOG_LEVEL": "3"}
    answer = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    return answer.stdout.strip().endswith("1")


def bench_training(args: argparse.Namespace) -> dict:
    # the naive contender is what TensorFlow chooses by itself; ours is what importing fashiongen
    # chose in this process (the user's own TF_ENABLE_ONEDNN_OPTS, if any, wins there too)
    tensorflow_default = "1" if _tensorflow_default_onednn() else "0"
    result, rows = {}, []
    for phase, adversarial in (("plain_step", False), ("adversarial_step", True)):
        naive = _with_onednn(tensorflow_default, _training_steps, adversarial, args.training_steps)
        ours = _in_fresh_process(_training_steps, adversarial, args.training_steps)
        ratio = naive["seconds_per_step"] / ours["seconds_per_step"]
        result[phase] = {"tensorflow_default": naive, "fashiongen": ours, "speedup": ratio}
        label = "VAE-GAN adversarial step" if adversarial else "plain CVAE step (before the discriminator joins)"
        rows.append((f"{label}, {ours['batch_size']} images",
                     f"{naive['seconds_per_step']:.2f} s (oneDNN {'on' if naive['onednn'] else 'off'})",
                     f"{ours['seconds_per_step']:.2f} s (oneDNN {'on' if ours['onednn'] else 'off'})",
                     f"{ratio:.1f}x faster"))
    _print_table("training (s per step)", ("measure", "TensorFlow's default", "fashiongen", "ratio"), rows)
    return result


# ----------------------------------------------------------------------------- label_folder section

LABEL_FOLDER_WARMUP = 32  # images each contender labels untimed first (graph tracing, allocator)


def _label_folder(data_dir: str, n_images: int, batched: bool) -> dict:
    """Label the first `n_images` photos (by id) into a CSV with the shipped labeler: through
    label_images.py's code path (`label_into_csv`, batches of its default size) or the naive loop
    (`Labeler.label` per file, one CSV row each), after an untimed warm-up on other photos."""
    import csv


    spec = importlib.util.spec_from_file_location("label_images", Path(__file__).with_name("label_images.py"))
    script = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = script  # its dataclass looks its module up there
    spec.loader.exec_module(script)
    labeler, source = _labeler_or_untrained()
    paths = _dataset_paths(data_dir, n_images + LABEL_FOLDER_WARMUP)
    folder = paths[0].parent
    warmup, timed = [p.name for p in paths[n_images:]], [p.name for p in paths[:n_images]]
    columns = script.head_columns(labeler.schema)

    def naive(names: list[str], out: Path) -> None:
        with open(out, "w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(script.csv_header(labeler.schema))
            for name in names:
                prediction = labeler.label(folder / name)
                cells = [cell for column in columns for cell in (prediction.top(column)[0],
                                                                 f"{prediction.top(column)[1]:.4f}")]
                writer.writerow([name, *cells, "true" if prediction.not_a_product else "false"])

    def ours(names: list[str], out: Path) -> None:
        script.label_into_csv(labeler, folder, names, out, script.DEFAULT_BATCH_SIZE)

    contender = ours if batched else naive
    with tempfile.TemporaryDirectory(prefix="fashiongen-bench-label-") as scratch:
        contender(warmup, Path(scratch) / "warmup.csv")
        start = time.perf_counter()
        contender(timed, Path(scratch) / "labels.csv")
        seconds = time.perf_counter() - start
        with open(Path(scratch) / "labels.csv", newline="") as handle:
            rows = list(csv.reader(handle))[1:]
    # the class names only: the two paths must label alike (probabilities differ in the last float bits)
    labels = [[cell for i, cell in enumerate(row) if i % 2 == 1] for row in rows]
    return {"model": source, "images": len(timed), "rows": len(rows), "seconds": seconds, "labels": labels,
            "batch_size": script.DEFAULT_BATCH_SIZE if batched else 1, "peak_rss_mb": _peak_rss_mb()}


def bench_label_folder(args: argparse.Namespace) -> dict:
    data_dir, n = str(args.data_dir), args.label_folder_images
    for path in _dataset_paths(data_dir, n + LABEL_FOLDER_WARMUP):  # warm the page cache for both contenders
        path.read_bytes()
    naive = _in_fresh_process(_label_folder, data_dir, n, False)
    ours = _in_fresh_process(_label_folder, data_dir, n, True)
    n = ours["images"]
    agree = sum(a == b for a, b in zip(naive["labels"], ours["labels"]))
    result = {
        "model": ours["model"], "images": n, "batch_size": ours["batch_size"], "warmup_images": LABEL_FOLDER_WARMUP,
        "naive_images_per_s": n / naive["seconds"], "naive_s": naive["seconds"],
        "naive_peak_rss_mb": naive["peak_rss_mb"],
        "batched_images_per_s": n / ours["seconds"], "batched_s": ours["seconds"],
        "batched_peak_rss_mb": ours["peak_rss_mb"],
        "speedup": naive["seconds"] / ours["seconds"],
        "rows": {"naive": naive["rows"], "batched": ours["rows"]},
        "same_labels": agree / max(n, 1),
    }
    rows = [
        (f"label {n:,} photos into a CSV", f"{n / naive['seconds']:,.0f} img/s ({naive['seconds']:.1f} s)",
         f"{n / ours['seconds']:,.0f} img/s ({ours['seconds']:.1f} s)", f"{result['speedup']:.1f}x faster"),
        ("peak memory (max RSS)", f"{naive['peak_rss_mb']:,.0f} MB", f"{ours['peak_rss_mb']:,.0f} MB",
         f"{ours['peak_rss_mb'] / naive['peak_rss_mb']:.2f}x"),
        ("same top class on every head", "", f"{agree:,} of {n:,} images", ""),
    ]
    _print_table(f"label_folder ({ours['model']}, batches of {ours['batch_size']})",
                 ("measure", "naive (Labeler.label per image)", "label_images.py", "ratio"), rows)
    return result


# ----------------------------------------------------------------------------- app section
# A real server and a real browser: `streamlit run app.py` in a subprocess, Playwright's async API
# in Debian's Chromium (never `playwright install`). Every time is measured in this process, from the
# browser action to what the user sees.

APP_TARGETS = {"cold_start_s": 10.0, "label_p50_ms": 300.0, "generate_p50_ms": 500.0}  # the issue's, on this CPU
APP_WARMUP = 2  # untimed interactions before the timed ones, in the first session
APP_SESSION_WARMUP = 1  # and in each concurrent session (the server is warm; a new context loads the page's scripts)
APP_TIMEOUT_MS = 180_000  # one interaction on a loaded machine with 8 sessions; far above any target
UPLOADER = "[data-testid='stFileUploader']"
SEED_SLIDER = "input[type=range][aria-label^='Seed']"
# The Label page's answer for the photo `name`: its caption and a metric per head of the shipped labeler
# on screen; then the probability chart drawn with every head's bars, which ends the interaction. For a
# photo the labeler takes for no product photo, the answer is the caption and the warning.
LABEL_SHOWN = """([name, heads]) => [...document.querySelectorAll("[data-testid='stImageCaption']")]
        .some(caption => caption.textContent.startsWith(name + " as the model sees it"))
    && (document.querySelectorAll("[data-testid='stMetricValue']").length === heads
        || document.querySelector("[data-testid='stAlertContentWarning']") !== null)"""
FLAGGED = "[data-testid='stAlertContentWarning']"
CHARTS_DRAWN = """heads => [...document.querySelectorAll("[data-testid='stPlotlyChart'] .barlayer .trace")]
    .filter(trace => trace.querySelector('.point')).length === heads"""
# After removing the upload: the page is back to its hint, no chart left.
LABEL_CLEARED = """() => document.querySelector("[data-testid='stAlertContentInfo']") !== null
    && document.querySelector("[data-testid='stPlotlyChart']") === null
    && document.querySelector("[data-testid='stFileChip']") === null"""
# The Generate page's images: the first `old.length` are loaded and none has the src in `old` (the grid:
# old = [grid src]; at the start: old = ["", ""], the grid and the interpolation).
IMAGES_CHANGED = """old => {
    const images = [...document.querySelectorAll("[data-testid='stImage'] img")].slice(0, old.length);
    return images.length === old.length
        && images.every((img, i) => img.src !== old[i] && img.complete && img.naturalWidth > 0);
}"""


def _generated_photos(folder: str, count: int) -> list[str]:
    """Without a dataset: product photos the shipped generator draws, one per sub-category, as PNGs."""
    from PIL import Image

    from fashiongen.generator.generator import Generator

    generator = Generator.load()
    schema = generator.schema
    paths = []
    for i in range(count):
        sub_category = schema.sub_categories[i % len(schema.sub_categories)]
        image = generator.generate(sub_category, schema.genders[i % len(schema.genders)], seed=i, n=1)[0]
        path = Path(folder) / f"generated-{i:02d}.png"
        Image.fromarray(image).save(path)
        paths.append(str(path))
    return paths


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds the process `pid` has used so far (Linux /proc), else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
    except (OSError, ValueError, IndexError):
        return None


async def _wait_healthy(url: str, server: subprocess.Popen, log_path: Path) -> None:
    if not await asyncio.to_thread(wait_until_serving, url, server, APP_TIMEOUT_MS / 1000):
        raise RuntimeError(f"streamlit did not start: {log_path.read_text()[-2000:]}")


async def _label_times(page, url: str, photos: list[str], warmup: int, repeats: int,
                       heads: int) -> dict[str, list[float]]:
    """Upload one photo at a time on the Label page: ms from setting the file input to its labels on
    screen, and to the probability chart drawn (end to end). The upload is removed between photos (untimed),
    so every answer is a new one."""
    await page.goto(url)
    await page.locator(UPLOADER).wait_for()
    times = {"label_shown": [], "label": []}
    for i in range(warmup + repeats):
        photo = photos[i % len(photos)]
        start = time.perf_counter()
        await page.locator("input[type=file]").set_input_files(photo)
        await page.wait_for_function(LABEL_SHOWN, arg=[Path(photo).name, heads])
        shown = time.perf_counter()
        if not await page.locator(FLAGGED).count():  # a flagged photo's chart waits, folded, until asked for
            await page.wait_for_function(CHARTS_DRAWN, arg=heads)
        if i >= warmup:
            times["label_shown"].append((shown - start) * 1000)
            times["label"].append((time.perf_counter() - start) * 1000)
        await page.locator("[data-testid='stFileChipDeleteBtn'] button").click()
        await page.wait_for_function(LABEL_CLEARED)
    return times


async def _generate_times(page, url: str, warmup: int, repeats: int) -> list[float]:
    """Move the Generate page's seed slider one step (arrow key): ms until the new grid image has
    loaded. The next step waits (untimed) for the run to finish, so runs never overlap."""
    await page.goto(f"{url}/generate")
    await page.wait_for_function(IMAGES_CHANGED, arg=["", ""])
    images = page.locator("[data-testid='stImage'] img")
    times = []
    for i in range(warmup + repeats):
        old = [await images.nth(0).get_attribute("src")]
        start = time.perf_counter()
        await page.locator(SEED_SLIDER).press("ArrowRight")
        await page.wait_for_function(IMAGES_CHANGED, arg=old)
        if i >= warmup:
            times.append((time.perf_counter() - start) * 1000)
        await page.wait_for_function(RUN_FINISHED)
    return times


async def _new_page(browser):
    page = await (await browser.new_context(viewport={"width": 1280, "height": 1000})).new_page()
    page.set_default_timeout(APP_TIMEOUT_MS)
    return page


async def _drive_app(photos: list[str], repeats: int, sessions: int, rounds: int, log_path: Path) -> dict:
    from playwright.async_api import async_playwright

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    heads = len(LabelSchema.load(LABELER.shipped / SCHEMA_FILE).heads)  # the Label page shows each
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        page = await _new_page(browser)  # browser start-up is not part of the app's cold start
        with open(log_path, "w") as log:
            spawned = time.perf_counter()
            server = start_app(port, log)
            try:
                await _wait_healthy(url, server, log_path)
                ready = time.perf_counter() - spawned
                await page.goto(url)
                await page.locator(UPLOADER).wait_for()  # drawn after the labeler has loaded
                first_render = time.perf_counter() - spawned
                # The generator loads on the Generate page's first visit, once per process: not an
                # interaction's cost (it was 2-3 s of CPU, 100+ ms on each of 22 generate steps).
                await page.goto(f"{url}/generate")
                await page.wait_for_function(IMAGES_CHANGED, arg=["", ""])
                # The server's CPU time per interaction (warm-ups and each phase's page load included)
                # tells its share of the wall time from the browsers' (which run on the same cores).
                server_cpu, cpu = {}, _cpu_seconds(server.pid)

                def charge(kind: str, interactions: int) -> None:
                    nonlocal cpu
                    now = _cpu_seconds(server.pid)
                    if now is not None and cpu is not None:
                        server_cpu[kind] = (now - cpu) * 1000 / interactions
                    cpu = now

                one = await _label_times(page, url, photos, APP_WARMUP, repeats, heads)
                charge("label", APP_WARMUP + repeats)
                one["generate"] = await _generate_times(page, url, APP_WARMUP, repeats)
                charge("generate", APP_WARMUP + repeats)
                # Concurrent sessions: each its own browser context (a user), all labeling, then all generating.
                pages = [await _new_page(browser) for _ in range(sessions)]
                shifted = [photos[k % len(photos):] + photos[:k % len(photos)] for k in range(sessions)]
                cpu = _cpu_seconds(server.pid)
                label = await asyncio.gather(*(_label_times(p, url, shifted[k], APP_SESSION_WARMUP, rounds, heads)
                                               for k, p in enumerate(pages)))
                charge("label_concurrent", sessions * (APP_SESSION_WARMUP + rounds))
                generate = await asyncio.gather(*(_generate_times(p, url, APP_SESSION_WARMUP, rounds) for p in pages))
                charge("generate_concurrent", sessions * (APP_SESSION_WARMUP + rounds))
            finally:
                stop_app(server)
                await browser.close()
    together = {kind: [t for times in label for t in times[kind]] for kind in ("label_shown", "label")}
    together["generate"] = [t for times in generate for t in times]
    return {"server_ready_s": ready, "first_render_s": first_render, "one": one, "concurrent": together,
            "server_cpu_ms_per_interaction": server_cpu}


def bench_app(args: argparse.Namespace) -> dict:
    sessions, repeats = args.app_sessions, args.app_repeats
    rounds = math.ceil(repeats / sessions)
    with tempfile.TemporaryDirectory(prefix="fashiongen-bench-app-") as scratch:
        photos = [str(p) for p in sorted((args.data_dir / "images").glob("*.jpg"))[:50]]
        source = f"{len(photos)} photos from {args.data_dir / 'images'}"
        if not photos:
            photos = _in_fresh_process(_generated_photos, scratch, 20)
            source = f"{len(photos)} images drawn by the shipped generator (no photos in {args.data_dir / 'images'})"
        measured = asyncio.run(_drive_app(photos, repeats, sessions, rounds, Path(scratch) / "streamlit.log"))

    one = {kind: _percentiles(times) for kind, times in measured["one"].items()}
    together = {kind: _percentiles(times) for kind, times in measured["concurrent"].items()}
    checks = {"cold_start_s": (APP_TARGETS["cold_start_s"], measured["first_render_s"])}
    for kind in ("label", "generate"):
        target = APP_TARGETS[f"{kind}_p50_ms"]
        checks[f"{kind}_p50_ms"] = (target, one[kind]["p50_ms"])
        checks[f"{kind}_p50_ms_{sessions}_sessions"] = (target, together[kind]["p50_ms"])
    result = {
        "photos": source, "repeats": repeats, "warmup": APP_WARMUP, "sessions": sessions, "rounds_per_session": rounds,
        "cold_start": {"server_ready_s": measured["server_ready_s"], "first_render_s": measured["first_render_s"]},
        "one_session": one, "concurrent_sessions": together, "targets": APP_TARGETS,
        # label: the upload's script run and the (untimed) removal's; generate: the slider step's
        "server_cpu_ms_per_interaction": measured["server_cpu_ms_per_interaction"],
        "target_checks": {name: {"target": target, "measured": value, "target_over_measured": target / value,
                                 "met": value < target} for name, (target, value) in checks.items()},
    }

    def verdict(name: str) -> tuple[str, str]:
        check = result["target_checks"][name]
        unit = "s" if name.endswith("_s") else "ms"
        met = "met" if check["met"] else "missed"
        return f"< {check['target']:g} {unit}", f"{check['target_over_measured']:.2f}x ({met})"

    rows = [("server answers /_stcore/health", f"{measured['server_ready_s']:.2f} s", "", "", ""),
            ("cold start to first render (Label page)", f"{measured['first_render_s']:.2f} s", "",
             *verdict("cold_start_s"))]
    for label, stats, suffix in (("1 session", one, ""), (f"{sessions} sessions", together, f"_{sessions}_sessions")):
        for kind, what in (("label_shown", "label an upload: labels shown"),
                           ("label", "label an upload: chart drawn (end to end)"),
                           ("generate", "generate: seed + 1 to new grid")):
            rows.append((f"{what}, {label}", f"{stats[kind]['p50_ms']:.0f} ms", f"{stats[kind]['p95_ms']:.0f} ms",
                         *(verdict(f"{kind}_p50_ms{suffix}") if kind != "label_shown" else ("", ""))))
    for kind, what in (("label", "server CPU per label (upload + removal runs)"),
                       ("generate", "server CPU per generate")):
        for label, key in (("1 session", kind), (f"{sessions} sessions", f"{kind}_concurrent")):
            value = measured["server_cpu_ms_per_interaction"].get(key)
            if value is not None:
                rows.append((f"{what}, {label}", f"{value:.0f} ms", "", "", ""))
    _print_table(f"app: streamlit run app.py + Chromium, {source}; {repeats} timed interactions of each kind in one "
                 f"session, {rounds} per session with {sessions} sessions at once",
                 ("measure", "p50 (or once)", "p95", "target", "target / measured"), rows)
    return result


# ----------------------------------------------------------------------------- runner

SECTIONS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "data": bench_data, "classifier": bench_classifier, "generator": bench_generator, "app": bench_app,
    "label_folder": bench_label_folder, "training": bench_training,
}


def _print_table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    print(f"\n{title}\n{line}")
    for row in [header, None, *rows]:
        print(line if row is None else "  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


def _app_prerequisites(args: argparse.Namespace) -> str | None:
    """Why the app section cannot run here, in one line, or None."""
    if args.app_repeats < 1 or args.app_sessions < 1:
        return "--app-repeats and --app-sessions must be at least 1"
    if not Path(CHROMIUM).is_file():
        return f"the app section needs Debian's chromium ({CHROMIUM} is missing): apt-get install chromium"
    if importlib.util.find_spec("playwright") is None:
        return "the app section needs Playwright's Python package: pip install -r requirements-test.txt"
    return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Sections: " + ", ".join(SECTIONS) + ". data, classifier and generator run their contenders side by "
               "side in one run; app measures the served app against the issue's targets.",
    )
    parser.add_argument("--sections", nargs="+", choices=sorted(SECTIONS), default=sorted(SECTIONS),
                        help="which sections to run (default: all)")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR,
                        help="dataset folder with styles.csv and images/ (default: data/fashion-small; "
                             "the shared copy is ../shared/data/fashion-small)")
    parser.add_argument("--limit", type=int, default=None,
                        help="use only the first N images (by id) for a quick run (default: all)")
    parser.add_argument("--classifier-images", type=int, default=8192,
                        help="classifier section: training images for the frozen-phase comparison (default: 8192)")
    parser.add_argument("--classifier-epochs", type=int, default=10,
                        help="classifier section: epochs for both contenders (default: 10, as in the paper)")
    parser.add_argument("--latency-repeats", type=int, default=200,
                        help="classifier and generator sections: timed calls after the warm-up (default: 200)")
    parser.add_argument("--training-steps", type=int, default=8,
                        help=f"training section: timed steps per contender and phase after {TRAINING_WARMUP} "
                             f"untimed ones (default: 8)")
    parser.add_argument("--label-folder-images", type=int, default=4096,
                        help=f"label_folder section: photos each contender labels into a CSV after "
                             f"{LABEL_FOLDER_WARMUP} untimed ones (default: 4096)")
    parser.add_argument("--app-repeats", type=int, default=20,
                        help=f"app section: timed label and generate interactions in one session after {APP_WARMUP} "
                             f"untimed ones; with concurrent sessions each does ceil(N / sessions) after "
                             f"{APP_SESSION_WARMUP} (default: 20)")
    parser.add_argument("--app-sessions", type=int, default=8,
                        help="app section: browser sessions driven at once for the concurrent measurement (default: 8)")
    parser.add_argument("--generator", type=Path, default=None,
                        help="generator section: time the generator in this folder, a candidate before it ships "
                             "(default: the shipped one)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if set(args.sections) - {"app", "training", "generator"} and not (args.data_dir / "styles.csv").is_file():
        print(f"error: {args.data_dir} has no styles.csv; pass --data-dir or run scripts/download_data.py",
              file=sys.stderr)
        return 2
    if args.limit is not None and args.limit < 1:
        print("error: --limit must be at least 1", file=sys.stderr)
        return 2
    if args.training_steps < 1:
        print("error: --training-steps must be at least 1", file=sys.stderr)
        return 2
    if args.label_folder_images < 1:
        print("error: --label-folder-images must be at least 1", file=sys.stderr)
        return 2
    if "generator" in args.sections and args.generator is not None:
        problem = _in_fresh_process(_generator_problem, str(args.generator))
        if problem:
            print(f"error: --generator: {problem}", file=sys.stderr)
            return 2
    if "app" in args.sections:
        problem = _app_prerequisites(args)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            return 2
    results = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "data_dir": str(args.data_dir),
    }
    for name in args.sections:
        results[name] = SECTIONS[name](args)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
