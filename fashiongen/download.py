"""Fetch the Fashion Product Images (Small) dataset into ``<dest>/fashion-small``.

Two sources: the Kaggle dataset ``paramaggarwal/fashion-product-images-small`` (through the
official ``kaggle`` package) or an existing local copy in the same layout (``images/<id>.jpg``
plus ``styles.csv``), which is linked or copied into place.

Whatever the source, the new dataset is built and verified in a temporary folder beside the
destination and only then renamed into place, so an interrupted or failed run never leaves a
half-written dataset where a good one was. A marker file ``fashion-small.complete.json`` next
to the dataset, written last, records what was installed; its presence (with matching counts)
is what makes a second run a no-op.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import stat
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from fashiongen.errors import DatasetError
from fashiongen.paths import DATASET_DIRNAME

# cheap to import: pandas, slow to import, is imported only when read_styles runs
from fashiongen.styles import STYLES_HEADER, read_styles

log = logging.getLogger(__name__)

KAGGLE_DATASET = "paramaggarwal/fashion-product-images-small"
STYLES_FILENAME = "styles.csv"
IMAGES_DIRNAME = "images"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
MARKER_SUFFIX = ".complete.json"
# Work folder beside the dataset: same filesystem, so the final rename is atomic.
PARTIAL_DIRNAME = f".{DATASET_DIRNAME}.partial"

MODE_KAGGLE = "kaggle"
MODE_SYMLINK = "symlink"
MODE_COPY = "copy"


class DatasetSetupError(Exception):
    """A failure to report as one line; ``exit_code`` is what a CLI should exit with."""

    exit_code = 1


class UserInputError(DatasetSetupError):
    """Something the user has to fix (credentials, a bad --from-dir): exit status 2."""

    exit_code = 2


class MissingCredentialsError(UserInputError):
    """No usable Kaggle credentials."""


class InvalidSourceError(UserInputError):
    """A local source folder that is not a dataset in the expected layout."""


class InvalidDatasetError(DatasetSetupError):
    """A folder (downloaded or local) that fails verification."""


class UnsafeArchiveError(DatasetSetupError):
    """A zip member that would be written outside the extraction folder."""


@dataclass(frozen=True)
class DatasetSummary:
    """What verification found in a dataset folder."""

    path: Path
    images: int
    styles_rows: int


@dataclass(frozen=True)
class SetupResult:
    """Outcome of a download or install: the dataset, where it came from, and whether it was already there."""

    summary: DatasetSummary
    mode: str
    source: str
    already_present: bool

    def describe(self) -> str:
        """One line for the user."""
        counts = f"{self.summary.images} images, {self.summary.styles_rows} styles rows"
        origin = {
            MODE_KAGGLE: f"from Kaggle {self.source}",
            MODE_SYMLINK: f"symlink to {self.source}",
            MODE_COPY: f"copied from {self.source}",
        }.get(self.mode, self.source)
        if self.already_present:
            return (
                f"{self.summary.path} is already complete ({counts}; {origin}): "
                "nothing to do (use --force to redo)"
            )
        return f"{self.summary.path} ready: {counts} ({origin})"


# --------------------------------------------------------------------------- verification


def count_images(images_dir: Path) -> int:
    """Number of image files directly inside ``images_dir``."""
    with os.scandir(images_dir) as entries:
        return sum(
            1 for entry in entries if entry.is_file() and os.path.splitext(entry.name)[1].lower() in IMAGE_SUFFIXES
        )


def count_styles_rows(styles_csv: Path) -> int:
    """Data rows in styles.csv, read by the library's own reader (``fashiongen.styles.read_styles``),
    so that a file it would reject (a short row, a non-integer or repeated id) fails here, at
    install time, rather than in training. Raises InvalidDatasetError with its one-line reason.
    """
    try:
        return len(read_styles(styles_csv))
    except DatasetError as exc:
        raise InvalidDatasetError(one_line(exc)) from exc


def verify_dataset(root: Path | str) -> DatasetSummary:
    """Check ``root`` holds a ``styles.csv`` that the library reads, with the expected header,
    and a non-empty ``images/``.

    Raises InvalidDatasetError with a one-line reason otherwise.
    """
    root = Path(root)
    if not root.is_dir():
        raise InvalidDatasetError(f"{root} is not a directory")
    styles_csv = root / STYLES_FILENAME
    if not styles_csv.is_file():
        raise InvalidDatasetError(f"no {STYLES_FILENAME} in {root}")
    with open(styles_csv, encoding="utf-8-sig", errors="replace", newline="") as handle:
        header = handle.readline().rstrip("\r\n")
    if header != STYLES_HEADER:
        raise InvalidDatasetError(
            f"{styles_csv} has an unexpected header {header[:120]!r} (expected {STYLES_HEADER!r})"
        )
    images_dir = root / IMAGES_DIRNAME
    if not images_dir.is_dir():
        raise InvalidDatasetError(f"no {IMAGES_DIRNAME}/ folder in {root}")
    images = count_images(images_dir)
    if images == 0:
        raise InvalidDatasetError(f"{images_dir} holds no image files")
    return DatasetSummary(path=root, images=images, styles_rows=count_styles_rows(styles_csv))


# --------------------------------------------------------------------------- credentials


def kaggle_config_dir(environ: Mapping[str, str] | None = None, home: Path | None = None) -> Path:
    """The folder where the kaggle package looks for kaggle.json (same rules as kaggle 2.x)."""
    environ = os.environ if environ is None else environ
    home = Path(environ.get("HOME") or Path.home()) if home is None else home
    if environ.get("KAGGLE_CONFIG_DIR"):
        return Path(environ["KAGGLE_CONFIG_DIR"])
    legacy = home / ".kaggle"
    # kaggle falls back to the XDG folder only when ~/.kaggle does not exist.
    if legacy.exists():
        return legacy
    return Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "kaggle"


def _read_json_object(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _non_empty_file(path: Path) -> bool:
    try:
        return path.is_file() and bool(path.read_text(encoding="utf-8", errors="replace").strip())
    except OSError:
        return False


def find_kaggle_credentials(environ: Mapping[str, str] | None = None, home: Path | None = None) -> str | None:
    """Where usable Kaggle credentials are, or None when there are none.

    Mirrors what ``KaggleApi.authenticate`` accepts, without importing kaggle (whose import
    already tries to authenticate): an API token (KAGGLE_API_TOKEN or ~/.kaggle/access_token),
    a legacy username + key (kaggle.json in the config dir and/or KAGGLE_USERNAME/KAGGLE_KEY),
    or cached OAuth credentials (~/.kaggle/credentials.json).
    """
    environ = os.environ if environ is None else environ
    home = Path(environ.get("HOME") or Path.home()) if home is None else home
    if environ.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN"
    kaggle_json = kaggle_config_dir(environ, home) / "kaggle.json"
    file_values = _read_json_object(kaggle_json)
    # kaggle merges the file with KAGGLE_* variables, the variables winning.
    username = environ.get("KAGGLE_USERNAME") or file_values.get("username")
    key = environ.get("KAGGLE_KEY") or file_values.get("key")
    if username and key:
        return str(kaggle_json) if file_values else "KAGGLE_USERNAME/KAGGLE_KEY"
    # The token and OAuth files are read from ~/.kaggle whatever KAGGLE_CONFIG_DIR says.
    for name in ("access_token", "access_token.txt", "credentials.json"):
        if _non_empty_file(home / ".kaggle" / name):
            return str(home / ".kaggle" / name)
    return None


def credentials_hint(environ: Mapping[str, str] | None = None, home: Path | None = None) -> str:
    """Where to put Kaggle credentials, as one line."""
    environ = os.environ if environ is None else environ
    home = Path(environ.get("HOME") or Path.home()) if home is None else home
    # Suggest ~/.kaggle even when kaggle would fall back to ~/.config/kaggle: creating ~/.kaggle
    # makes kaggle use it, and it is the place every Kaggle guide names.
    config_dir = Path(environ["KAGGLE_CONFIG_DIR"]) if environ.get("KAGGLE_CONFIG_DIR") else home / ".kaggle"
    return (
        f"save kaggle.json (kaggle.com > Settings > API > Create New Token) as {config_dir / 'kaggle.json'} "
        "(chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY (or KAGGLE_API_TOKEN, or a token in "
        "~/.kaggle/access_token); or use --from-dir DIR with a local copy"
    )


# --------------------------------------------------------------------------- zip handling


def unsafe_member_reason(info: zipfile.ZipInfo) -> str | None:
    """Why extracting this zip member could write outside the destination, or None if it is safe."""
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "has an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "contains '..'"
    # Unix-made zips keep the file mode in the high 16 bits of external_attr.
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    return None


def check_archive_members(archive: zipfile.ZipFile) -> None:
    """Raise UnsafeArchiveError if any member is an absolute path, climbs with '..', or is a symlink."""
    for info in archive.infolist():
        reason = unsafe_member_reason(info)
        if reason:
            raise UnsafeArchiveError(
                f"refusing to extract {archive.filename}: member {info.filename!r} {reason}"
            )


def find_dataset_prefix(names: Iterable[str]) -> str:
    """The folder inside a zip that holds styles.csv and images/ ('' for top level, else 'dir/').

    The Kaggle zip may hold the files at top level, nested in a folder such as
    ``myntradataset/``, or both; the shallowest copy wins so only one copy gets extracted.
    """
    names = [name.replace("\\", "/") for name in names]
    styles_folders = [name[: -len(STYLES_FILENAME)] for name in names if name.rpartition("/")[2] == STYLES_FILENAME]
    candidates = [
        prefix for prefix in styles_folders if any(name.startswith(f"{prefix}{IMAGES_DIRNAME}/") for name in names)
    ]
    if not candidates:
        raise InvalidDatasetError(f"the zip has no folder holding both {STYLES_FILENAME} and {IMAGES_DIRNAME}/")
    return min(candidates, key=lambda prefix: (prefix.count("/"), prefix))


def extract_dataset(zip_path: Path, staging_dir: Path, progress: bool = True) -> Path:
    """Extract styles.csv and images/ of ``zip_path``'s dataset folder into ``staging_dir`` (not existing yet).

    Other members (e.g. a second copy of the dataset) are skipped. Every member is checked
    before anything is written, so an unsafe zip writes nothing.
    Returns ``staging_dir``.
    """
    try:
        with zipfile.ZipFile(zip_path) as archive:
            check_archive_members(archive)
            prefix = find_dataset_prefix(archive.namelist())
            wanted = (f"{prefix}{STYLES_FILENAME}", f"{prefix}{IMAGES_DIRNAME}/")
            members = [
                (info, name[len(prefix) :])
                for info in archive.infolist()
                if (name := info.filename.replace("\\", "/")) == wanted[0] or name.startswith(wanted[1])
            ]
            staging_dir.mkdir(parents=True)
            for info, relative in tqdm(members, desc="Extracting", unit="file", disable=not progress):
                target = staging_dir / relative
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as source, open(target, "wb") as sink:
                    shutil.copyfileobj(source, sink, 1024 * 1024)
    except (zipfile.BadZipFile, EOFError) as exc:
        raise InvalidDatasetError(f"{zip_path} is not a valid zip (truncated download?): {one_line(exc)}") from exc
    return staging_dir


# --------------------------------------------------------------------------- installing


def dataset_path(dest: Path | str) -> Path:
    """Where the dataset lives under ``dest``."""
    return Path(dest) / DATASET_DIRNAME


def marker_path(dest: Path | str) -> Path:
    """The complete-marker JSON beside the dataset (beside, so a read-only symlinked copy works too)."""
    return Path(dest) / f"{DATASET_DIRNAME}{MARKER_SUFFIX}"


def read_marker(dest: Path | str) -> dict | None:
    """The marker's content, or None when absent or unreadable."""
    path = marker_path(dest)
    if not path.is_file():
        return None
    return _read_json_object(path) or None


def existing_complete(dest: Path | str) -> tuple[DatasetSummary, dict] | None:
    """The installed dataset and its marker if both are there and the counts still match."""
    marker = read_marker(dest)
    if marker is None:
        return None
    try:
        summary = verify_dataset(dataset_path(dest))
    except (InvalidDatasetError, OSError):
        return None
    if (summary.images, summary.styles_rows) != (marker.get("images"), marker.get("styles_rows")):
        return None
    return summary, marker


def _remove(path: Path) -> None:
    """Delete a file, a symlink (never what it points to) or a folder tree."""
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir():
        shutil.rmtree(path)


def clean_partial(dest: Path | str) -> bool:
    """Remove the work folder left by an interrupted run; True if there was one."""
    partial = Path(dest) / PARTIAL_DIRNAME
    if not os.path.lexists(partial):
        return False
    log.info("Removing leftovers of an interrupted run: %s", partial)
    _remove(partial)
    return True


def _install(staged: Path, target: Path) -> None:
    """Put the verified ``staged`` folder (or symlink) at ``target``, replacing what is there.

    The old dataset is moved aside, not deleted, until the new one is in place, and moved back
    if that fails: ``target`` is never a half-written dataset.
    """
    if not os.path.lexists(target):
        os.rename(staged, target)
        return
    previous = staged.parent / "previous"
    os.rename(target, previous)
    try:
        os.rename(staged, target)
    except BaseException:
        os.rename(previous, target)
        raise


def _write_marker(dest: Path, summary: DatasetSummary, mode: str, source: str) -> None:
    record = {
        "dataset": KAGGLE_DATASET,
        "mode": mode,
        "source": source,
        **{key: value for key, value in asdict(summary).items() if key != "path"},
        "completed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    final = marker_path(dest)
    temporary = final.with_name(final.name + ".tmp")
    temporary.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, final)


def _build_and_install(dest: Path, mode: str, source: str, build: Callable[[Path], Path]) -> SetupResult:
    """Run ``build(partial_dir) -> staged path`` in a fresh work folder, verify, install, mark.

    The work folder is removed afterwards, on success and on failure alike.
    """
    dest.mkdir(parents=True, exist_ok=True)
    partial = dest / PARTIAL_DIRNAME
    partial.mkdir()
    try:
        staged = build(partial)
        verify_dataset(staged)  # fail here, before touching the installed dataset
        _install(staged, dataset_path(dest))
        summary = verify_dataset(dataset_path(dest))
        _write_marker(dest, summary, mode, source)
    finally:
        _remove(partial)
    return SetupResult(summary=summary, mode=mode, source=source, already_present=False)


def _already_present(dest: Path, force: bool, wanted: tuple[str, str] | None) -> SetupResult | None:
    """The existing complete install, if it satisfies the request (``wanted`` = (mode, source) or any)."""
    if force:
        return None
    found = existing_complete(dest)
    if found is None:
        return None
    summary, marker = found
    mode, source = str(marker.get("mode", "?")), str(marker.get("source", "?"))
    if wanted is not None and (mode, source) != wanted:
        return None
    return SetupResult(summary=summary, mode=mode, source=source, already_present=True)


# --------------------------------------------------------------------------- Kaggle


def one_line(exc: BaseException) -> str:
    """The exception message squeezed onto one short line."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


def _authenticated_kaggle_api(credentials: str):
    """A KaggleApi authenticated with the ``credentials`` found; kaggle is imported only now.

    ``import kaggle`` (triggered by importing any of its submodules) authenticates at import
    time and prints a multi-line help when that fails: its output is swallowed here and a
    failure reported as one line instead.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
            api.authenticate()
        except SystemExit as exc:  # kaggle calls exit(1) when it rejects every credential
            raise MissingCredentialsError(
                f"Kaggle did not accept the credentials in {credentials}: {credentials_hint()}"
            ) from exc
        except Exception as exc:
            raise DatasetSetupError(f"Kaggle authentication failed: {one_line(exc)}") from exc
    return api


def _kaggle_download_zip(download_dir: Path, credentials: str, progress: bool) -> Path:
    """Download the dataset zip into ``download_dir`` with the kaggle package; return its path."""
    api = _authenticated_kaggle_api(credentials)
    log.info("Downloading %s from Kaggle into %s", KAGGLE_DATASET, download_dir)
    try:
        # kaggle prints the dataset URL even when quiet: --quiet promises only the final line.
        chatter = contextlib.nullcontext() if progress else contextlib.redirect_stdout(io.StringIO())
        with chatter:
            # force=True: never let kaggle trust or resume a file it finds (stale ones are removed anyway).
            api.dataset_download_files(
                KAGGLE_DATASET, path=str(download_dir), force=True, quiet=not progress, unzip=False
            )
    except Exception as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        hint = ""
        if status in (401, 403):
            hint = " (check your credentials and that you accepted the dataset's terms on kaggle.com)"
        raise DatasetSetupError(f"Kaggle download of {KAGGLE_DATASET} failed{hint}: {one_line(exc)}") from exc
    expected = download_dir / f"{KAGGLE_DATASET.split('/')[1]}.zip"
    if expected.is_file():
        return expected
    zips = sorted(download_dir.glob("*.zip"))
    if len(zips) != 1:
        raise DatasetSetupError(f"Kaggle reported success but {download_dir} holds {len(zips)} zip files, expected 1")
    return zips[0]


def download_from_kaggle(dest: Path | str, force: bool = False, progress: bool = True) -> SetupResult:
    """Download, extract and verify the Kaggle dataset into ``<dest>/fashion-small``.

    A complete install (from any source) is left alone unless ``force``. Needs Kaggle
    credentials (MissingCredentialsError otherwise), checked before kaggle is imported.
    """
    dest = Path(dest)
    clean_partial(dest)
    present = _already_present(dest, force, wanted=None)
    if present:
        return present
    credentials = find_kaggle_credentials()
    if credentials is None:
        raise MissingCredentialsError(f"no Kaggle credentials found: {credentials_hint()}")

    def build(partial: Path) -> Path:
        zip_path = _kaggle_download_zip(partial / "download", credentials, progress)
        staged = extract_dataset(zip_path, partial / "staged", progress)
        zip_path.unlink()  # free the disk space before the dataset is renamed into place
        return staged

    return _build_and_install(dest, MODE_KAGGLE, KAGGLE_DATASET, build)


# --------------------------------------------------------------------------- local copy


def _copy_tree(source: Path, target: Path, progress: bool) -> None:
    """Copy every file under ``source`` to ``target`` (file contents only: a read-only source gives a writable copy)."""
    files = []
    for folder, _, names in os.walk(source):
        relative = Path(folder).relative_to(source)
        (target / relative).mkdir(parents=True, exist_ok=True)
        files.extend(relative / name for name in names)
    for relative in tqdm(files, desc="Copying", unit="file", disable=not progress):
        shutil.copyfile(source / relative, target / relative)


def check_no_overlap(source: Path, dest: Path) -> None:
    """Raise InvalidSourceError when the source folder and ``dest`` are the same or one holds the other.

    The work folder and the dataset go into ``dest``: inside the source, a copy copies its own
    copy without end (and a symlink points the dataset at itself); a source inside ``dest`` can
    be the work folder or the dataset that an install deletes or replaces. Paths are compared
    resolved, so a symlinked install (``dest/fashion-small`` -> source) is not an overlap.
    """
    real_source, real_dest = source.resolve(), dest.resolve()
    if real_source == real_dest:
        raise InvalidSourceError(f"--from-dir {source} and --dest {dest} are the same folder: "
                                 "the dataset cannot be installed into itself; choose another destination")
    if real_dest.is_relative_to(real_source):
        raise InvalidSourceError(f"--dest {dest} is inside --from-dir {source}: the dataset would be installed "
                                 "into itself; choose a destination outside it")
    if real_source.is_relative_to(real_dest):
        raise InvalidSourceError(f"--from-dir {source} is inside the destination {dest}, whose contents an install "
                                 "replaces; move the copy out of it or choose another destination")


def install_from_dir(
    source_dir: Path | str, dest: Path | str, copy: bool = False, force: bool = False, progress: bool = True
) -> SetupResult:
    """Verify a local copy and make ``<dest>/fashion-small`` a symlink to it (or a real copy if ``copy``).

    Raises InvalidSourceError when ``source_dir`` is not a dataset in the expected layout, or
    overlaps ``dest``. A work folder left by a killed run is removed first, whatever happens next.
    """
    dest = Path(dest)
    source = Path(source_dir).expanduser()
    check_no_overlap(source, dest)
    clean_partial(dest)  # first, so that no later refusal leaves a killed run's work folder behind
    try:
        verify_dataset(source)
    except InvalidDatasetError as exc:
        raise InvalidSourceError(f"--from-dir {source_dir}: {exc}") from exc
    source = source.resolve()
    mode = MODE_COPY if copy else MODE_SYMLINK
    present = _already_present(dest, force, wanted=(mode, str(source)))
    if present:
        return present

    def build(partial: Path) -> Path:
        staged = partial / "staged"
        if copy:
            _copy_tree(source, staged, progress)
        else:
            staged.symlink_to(source, target_is_directory=True)
        return staged

    return _build_and_install(dest, mode, str(source), build)
