"""What the training scripts share: distribution strategy, run folder, callbacks, model-card facts."""

from __future__ import annotations

import argparse
import atexit
import dataclasses
import hashlib
import json
import math
import os
import shlex
import shutil
import socket
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, ClassVar, TypeVar

import keras
import numpy as np

from fashiongen.config import add_arguments, as_card, flag_of, from_namespace, option, shown
from fashiongen.dataset import FashionData
from fashiongen.distribute import ReplicaStatistics
from fashiongen.errors import TrainingError
from fashiongen.files import atomic_write_text, check_writable
from fashiongen.paths import DEFAULT_DATA_DIR
from fashiongen.schema import LabelSchema
from fashiongen.splits import DEFAULT_SPLIT_SEED, Split, validation_digest

SPLITS = ("random", "grouped")  # splits.split_ids' kinds
STRATEGIES = ("default", "mirrored", "multiworker")


@dataclass
class TrainingConfig:
    """The flags both training scripts share. Each script's config (at its top) extends it with its
    own flags, its `kind` and its defaults for out, epochs and batch size."""

    kind: ClassVar[str] = "model"
    data_dir: Path = option(DEFAULT_DATA_DIR, "dataset folder with styles.csv and images/")
    out: Path = option(Path("runs") / "model", "folder that receives the trained model")
    run_dir: Path | None = option(None, "folder for TensorBoard logs, the best checkpoint and the resume backup",
                                  default_text="runs/<kind>/<arch>")
    epochs: int = option(10, "training epochs")
    batch_size: int = option(64, "images per step")
    split: str = option("random", "random = the paper's 19:1 split; grouped = byte-identical images kept on one "
                                  "side", choices=SPLITS)
    seed: int = option(DEFAULT_SPLIT_SEED, "shuffling and sampling seed, and the split's unless --split-seed")
    split_seed: int | None = option(None, "the split's own seed: runs of several --seed values that keep the same "
                                          "validation photos", default_text="--seed")
    limit: int | None = option(None, "train on only the first N training images, for a quick trial",
                               default_text="all")
    resume: bool = option(False, "continue the interrupted run in --run-dir from its last finished epoch, with the "
                                 "flags it started with (--epochs may grow); without it, a new run starts and old "
                                 "progress there is discarded")
    strategy: str = option("default", "tf.distribute strategy: default (one device; the GPU when there is one), "
                                      "mirrored (all local GPUs, or --cpu-devices logical CPUs), multiworker "
                                      "(machines listed in TF_CONFIG)", choices=STRATEGIES)
    cpu_devices: int | None = option(None, "split the CPU into N logical devices (lets --strategy mirrored run "
                                           "without GPUs)", default_text="")
    cache_dir: Path | None = option(None, "decoded-image cache",
                                    default_text="$FASHIONGEN_CACHE_DIR or ~/.cache/fashiongen")
    quiet: bool = option(False, "no progress bars")
    replace: bool = option(False, "save to --out even when the model already there scores better on this run's "
                                  "validation images, or cannot be compared (unreadable, another label schema)")
    arch: str = ""  # each script's config makes it a flag


def training_parser(config_class: type[TrainingConfig], doc: str) -> argparse.ArgumentParser:
    """A training script's parser: its docstring's first paragraph as description, the rest as
    epilog, and a flag for every field of its config."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0], epilog=doc.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser, config_class)
    return parser


TrainingConfigT = TypeVar("TrainingConfigT", bound=TrainingConfig)


def parse_training_config(parser: argparse.ArgumentParser, argv: list[str] | None,
                          config_class: type[TrainingConfigT]) -> TrainingConfigT:
    """Parse, check the shared numbers, default --run-dir to runs/<kind>/<arch> and --split-seed to --seed."""
    config = from_namespace(config_class, parser.parse_args(argv))
    if config.epochs < 1 or config.batch_size < 1 or (config.limit is not None and config.limit < 1):
        parser.error("--epochs, --batch-size and --limit must be at least 1")
    if config.resume and config.strategy == "multiworker":
        # the other workers keep their resume backup in a deleted temporary folder: they would
        # start over while the chief resumed, and the cluster would wait for them forever
        parser.error("--resume does not work with --strategy multiworker: start the run again without it")
    config.run_dir = config.run_dir or Path("runs") / config.kind / config.arch
    config.split_seed = config.seed if config.split_seed is None else config.split_seed
    return config


def command_line(argv: list[str] | None) -> list[str]:
    """The arguments a script ran with, for its model card."""
    return list(sys.argv[1:] if argv is None else argv)


BEST_WEIGHTS = "best.weights.h5"
BEST_RECORD = "best.json"  # the monitored value of the best weights, so that --resume keeps the bar


def check_outputs(config: TrainingConfig) -> None:
    """Raise TrainingError (one line) unless --out and --run-dir can be written as folders: checked
    before the training, so that a bad path does not throw a finished run away."""
    for flag, folder in (("--out", config.out), ("--run-dir", config.run_dir)):
        try:
            check_writable(folder, folder=True)
        except ValueError as error:
            raise TrainingError(f"{flag}: {error}") from None


RUN_SETTINGS = "settings.json"  # the run's configuration, so that --resume continues the run it names
# what a resumed run may change: how long it runs, where its files are and on which devices, not what it learns
RESUMABLE_CHANGES = frozenset({"epochs", "resume", "quiet", "out", "replace", "run_dir", "data_dir", "cache_dir",
                               "strategy", "cpu_devices"})


def check_resume(config: TrainingConfig) -> None:
    """Raise TrainingError (one line) when --resume has nothing to continue, or flags other than
    the run's recorded ones (other weights, or another recipe under the run's name): checked
    before the data is loaded, and the backup is kept."""
    if not config.resume:
        return
    if not (config.run_dir / "backup").is_dir():
        raise TrainingError(f"nothing to resume in {config.run_dir}: run without --resume")
    changed = changed_settings(config.run_dir / RUN_SETTINGS, run_settings(config), run_settings(type(config)()))
    if changed:
        raise TrainingError(f"--resume continues the run in {config.run_dir} with the settings it started with, "
                            f"but {'; '.join(changed)}: run with those, or without --resume to start anew")


RUN_LOCK = "lock"  # flock()ed by the run using the folder; its text names that process for the message

try:
    import fcntl  # POSIX; Windows has none, and runs there are not locked
except ImportError:  # pragma: no cover
    fcntl = None

_HELD: dict[Path, tuple[int, bool]] = {}  # run folder -> this process's locked descriptor, whether it made the folder


def lock_run_dir(config: TrainingConfig) -> None:
    """Hold the run folder until release_run_dir or this process's end, or raise TrainingError
    (one line) while another process holds it: two runs in one folder (two runs of an architecture
    without --run-dir share runs/<kind>/<arch>) would clear and overwrite each other's backup and
    best weights. The lock is the operating system's (flock), so it ends with its process however
    that ends: no stale lock to take over. Called after use_worker_folders, so only the chief of a
    multi-worker cluster holds the shared folder (refused, it leaves the other workers waiting)."""
    run_dir = config.run_dir.resolve()
    if fcntl is None or run_dir in _HELD:  # (held already: main() called again in one process)
        return
    made = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(run_dir / RUN_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(descriptor, 200).decode(errors="replace").strip() or "another process"
        os.close(descriptor)
        raise TrainingError(f"--run-dir {config.run_dir} is in use by another run ({holder}): wait for it to "
                            "end, or give this run its own --run-dir") from None
    except OSError:  # a filesystem without locks (some network mounts): the run goes unlocked, as before locks
        os.close(descriptor)
        return
    os.ftruncate(descriptor, 0)
    os.write(descriptor, f"process {os.getpid()} on {socket.gethostname()}\n".encode())
    _HELD[run_dir] = descriptor, made
    atexit.register(release_run_dir, config)  # if the caller does not


def release_run_dir(config: TrainingConfig) -> None:
    """Let go of the run folder if this process holds it (lock_run_dir); the scripts' main() calls
    it as the run ends, however it ends. A folder the lock made and the run never used (refused
    before training: too little data, an occupied --out) is removed again."""
    run_dir = config.run_dir.resolve()
    descriptor, made = _HELD.pop(run_dir, (None, False))
    if descriptor is None:
        return
    os.close(descriptor)  # which releases the flock
    if made and [path.name for path in run_dir.iterdir()] == [RUN_LOCK]:
        try:
            (run_dir / RUN_LOCK).unlink()
            run_dir.rmdir()
        except OSError:  # another run came in meanwhile: its folder now
            pass


def prepare_run_dir(config: TrainingConfig) -> Path:
    """Make the run folder and return where its best weights go. A new run clears the resume
    backup and the old best weights (it must never end with an older run's weights) and records
    its settings for check_resume."""
    run_dir = config.run_dir
    best_weights = run_dir / BEST_WEIGHTS
    if not config.resume:
        shutil.rmtree(run_dir / "backup", ignore_errors=True)
        best_weights.unlink(missing_ok=True)
        (run_dir / BEST_RECORD).unlink(missing_ok=True)
        run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(run_dir / RUN_SETTINGS, json.dumps(run_settings(config), indent=2) + "\n")
    return best_weights


def run_settings(config: TrainingConfig) -> dict[str, object]:
    """The model card's configuration, paths resolved (another spelling of a folder is the same run)."""
    resolved = {key: value.resolve() for key, value in vars(config).items() if isinstance(value, Path)}
    # through JSON, as the record holds it (tuples as lists)
    return json.loads(json.dumps(as_card(dataclasses.replace(config, **resolved))))


def changed_settings(record: Path, settings: dict[str, object], defaults: dict[str, object]) -> list[str]:
    """Each flag whose recorded value differs from `settings`, as "--flag was A, now B"; none when
    there is no readable record (a run started before records were kept). A flag the record lacks
    came later, and the run had its default (`defaults`), unless that default is None: resolved
    from other flags (as --split-seed from --seed), it cannot be told, and is not compared."""
    try:
        recorded = json.loads(record.read_text())
    except (OSError, ValueError):
        return []
    if not isinstance(recorded, dict):
        return []
    recorded = {key: value for key, value in defaults.items() if value is not None} | recorded
    return [f"{flag_of(key)} was {shown(value)}, now {shown(settings.get(key))}"
            for key, value in sorted(recorded.items())
            if key not in RESUMABLE_CHANGES and value != settings.get(key)]


def load_best_weights(model: keras.Model, best_weights: Path, out: Path) -> None:
    if not best_weights.is_file():  # ModelCheckpoint saves nothing while val_loss is NaN
        raise TrainingError(f"no epoch reached a finite validation loss, so {out} is unchanged; "
                            "try a lower --learning-rate")
    model.load_weights(best_weights)


def standard_callbacks(run_dir: Path, best_weights: Path, monitor: str | None = "val_loss",
                       strategy=None) -> list[keras.callbacks.Callback]:
    """Resume backup after every epoch, best weights by `monitor` (lower is better; None: the last
    epoch's), TensorBoard logs; under a `strategy` of several replicas, first their
    BatchNormalization statistics averaged."""
    synced = [ReplicaStatistics(strategy)] if strategy is not None and strategy.num_replicas_in_sync > 1 else []
    checkpoint = (RecordedCheckpoint(best_weights, run_dir / BEST_RECORD, monitor) if monitor is not None
                  else keras.callbacks.ModelCheckpoint(str(best_weights), save_weights_only=True))
    return synced + [
        keras.callbacks.BackupAndRestore(str(run_dir / "backup")),
        checkpoint,
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard")),
    ]


class RecordedCheckpoint(keras.callbacks.ModelCheckpoint):
    """ModelCheckpoint (best weights by `monitor`, lower is better) whose best value survives an
    interruption: it is written to `record` with every new best and read back on start. Without
    it a resumed run starts from "no best yet" and its first epoch, however bad, overwrites the
    best weights of the epochs before the interruption."""

    def __init__(self, best_weights: Path, record: Path, monitor: str = "val_loss") -> None:
        self.record = Path(record)
        threshold = None
        if Path(best_weights).is_file():  # a record without its weights holds no bar
            try:
                saved = json.loads(self.record.read_text())
                threshold = float(saved["best"]) if saved.get("monitor") == monitor else None
            except (OSError, ValueError, KeyError, TypeError):
                threshold = None
        super().__init__(str(best_weights), monitor=monitor, mode="min", save_best_only=True,
                         save_weights_only=True, initial_value_threshold=threshold)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        before = self.best
        super().on_epoch_end(epoch, logs)
        if self.best != before:
            atomic_write_text(self.record, json.dumps({"monitor": self.monitor, "best": float(self.best),
                                                       "epoch": epoch + 1}) + "\n")


def script_command(script: str, argv: list[str]) -> str:
    """How a model card records the command that made it: `python scripts/<script> <argv>`, shell-quoted."""
    return shlex.join(["python", f"scripts/{script}", *argv])


def card_basics(config: TrainingConfig, argv: list[str], dataset: FashionData, split: Split,
                train_rows: np.ndarray) -> dict:
    """The model card's common part: what, when, the command and its whole configuration, the data
    and the exact split."""
    kind, arch, data_dir = config.kind, config.arch, config.data_dir
    val_ids = dataset.styles["id"].to_numpy()[split.validation]
    return {
        "model": kind,
        "arch": arch,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": script_command(f"train_{kind}.py", argv),
        "config": as_card(config),
        "data": {
            "dataset": "paramaggarwal/fashion-product-images-small",
            "images": int(len(dataset.images)),
            "styles_rows_without_image": len(dataset.missing_ids),
            "unreadable_images": len(dataset.unreadable),
            "unreadable_image_reasons": {str(row_id): why for row_id, why in dataset.unreadable.items()},
            "styles_csv_sha256": hashlib.sha256((Path(data_dir) / "styles.csv").read_bytes()).hexdigest(),
        },
        "split": {
            **split.report(dataset.digests), "n_train_used": int(len(train_rows)),
            "validation_ids_sha256": validation_digest(val_ids),
        },
        "versions": {"keras": keras.__version__, "numpy": np.__version__},
    }


MAX_LISTED = 10  # unreadable images named in a script's report; the model card lists them all


def data_report(dataset: FashionData, split: Split, train_rows: np.ndarray) -> str:
    """What a training script prints about its data: the counts, the split and the skipped files."""
    lines = [f"{len(dataset.images):,} images ({len(dataset.missing_ids):,} styles rows without an image, "
             f"{len(dataset.unreadable):,} unreadable images skipped); {split.kind} split: "
             f"{len(train_rows):,} train / {len(split.validation):,} validation"]
    reasons = list(dataset.unreadable.values())
    lines += [f"  skipped: {why}" for why in reasons[:MAX_LISTED]]
    if len(reasons) > MAX_LISTED:
        lines.append(f"  ... and {len(reasons) - MAX_LISTED:,} more unreadable images (all in the model card)")
    return "\n".join(lines)


def check_enough_data(data_dir: Path, dataset: FashionData, schema: LabelSchema, split: Split,
                      train_rows: np.ndarray) -> None:
    """Raise `TrainingError` before any model is built when the data cannot train and validate one:
    a label schema without sub-categories or genders, or an empty training or validation part."""
    empty_heads = [head for head, names in (("sub-categories", schema.sub_categories), ("genders", schema.genders))
                   if not names]
    if empty_heads:
        raise TrainingError(f"no {' and no '.join(empty_heads)} to learn: {data_dir} has "
                            f"{len(dataset.images):,} usable images; it needs styles.csv rows with an image")
    if len(train_rows) == 0 or len(split.validation) == 0:
        raise TrainingError(
            f"too little data in {data_dir}: {len(dataset.images):,} usable images "
            f"({len(dataset.missing_ids):,} styles rows without an image, {len(dataset.unreadable):,} unreadable) "
            f"give {len(train_rows):,} train and {len(split.validation):,} validation images with the {split.kind} "
            f"split; training needs at least one of each")


Model = TypeVar("Model")


def previous_model(out: Path, load: Callable[[Path], Model], incompatibility: Callable[[Model], str | None],
                   replace: bool) -> Model | None:
    """The model already in `out` that a new run has to beat, loaded before training: one that cannot
    be compared (unreadable, or `incompatibility` names a reason) stops the run here with a
    `TrainingError` rather than after the training, unless `replace`. None when `out` holds no
    model or --replace gives up an incomparable one."""
    if not out.exists() or (out.is_dir() and not any(out.iterdir())):
        return None
    try:
        old = load(out)
        reason = incompatibility(old)
    except (RuntimeError, ValueError, OSError) as error:  # the loaders' ClassifierError, GeneratorError, ...
        old, reason = None, str(error).split(" Retrain it with:")[0]  # retraining into --out is this run
    if reason is None:
        return old
    if replace:
        print(f"--replace: {out} will be overwritten although it cannot be compared ({reason})")
        return None
    raise TrainingError(f"--out {out} holds a model this run cannot be compared with ({reason}); pass --replace "
                        "to overwrite it, or choose another --out")


def schema_difference(old: LabelSchema, new: LabelSchema) -> str | None:
    """Why a model with label schema `old` cannot be compared with one of `new` (None: it can)."""
    if old == new:
        return None
    heads = lambda schema: ", ".join(f"{len(names)} {column}" for column, names in schema.heads.items())  # noqa: E731
    return f"its label schema ({heads(old)}) is not this run's ({heads(new)})"


def keep_better(out: Path, run_dir: Path, new_loss: float | None, old_loss: float | None, replace: bool,
                n_validation: int) -> Path:
    """Where a finished model goes: `out` unless the model there (`old_loss`, measured on the same
    validation images through the same code as `new_loss`) is at least as good and not `replace`,
    then `run_dir`/model. A non-finite loss always loses. Prints one line saying which model --out
    keeps and why. `old_loss` None: nothing to compare with."""
    if old_loss is None:
        return out
    numbers = (f"this run's validation loss {new_loss:.5f}, the model in {out} {old_loss:.5f}, "
               f"on the same {n_validation:,} validation images")
    # a NaN loss compares False with anything: a broken old model is beaten, a broken new one loses
    if math.isfinite(new_loss) and (not math.isfinite(old_loss) or new_loss < old_loss):
        print(f"replaced {out} with this run's model, which is better: {numbers}")
        return out
    if replace:
        print(f"replaced {out} with this run's model, which is not better, because of --replace: {numbers}")
        return out
    kept = run_dir / "model"
    print(f"kept {out}: this run's model is not better ({numbers}); this run's model is in {kept} "
          "(--replace overwrites)")
    return kept


def rounded_history(history: keras.callbacks.History) -> dict[str, list[float]]:
    return {key: [round(float(v), 5) for v in values] for key, values in history.history.items()}
