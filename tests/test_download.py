"""Tests for fashiongen.download and scripts/download_data.py.

The Kaggle path runs the real kaggle package (import, authentication with fake credentials)
with only ``KaggleApi.dataset_download_files``, the network call, replaced by one that writes
a zip built here.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import make_tiny_dataset
from PIL import Image

from fashiongen import download

REPO_ROOT = Path(__file__).resolve().parents[1]
SCRIPT = REPO_ROOT / "scripts" / "download_data.py"
SHARED_DATASET = Path(__file__).resolve().parents[2] / "shared/data/fashion-small"
ZIP_NAME = "fashion-product-images-small.zip"

STYLES_ROWS = [
    "15970,Men,Apparel,Topwear,Shirts,Navy Blue,Fall,2011,Casual,Turtle Check Men Navy Blue Shirt",
    # An unquoted comma in productDisplayName, as in 22 lines of the real file.
    "44065,Men,Personal Care,Fragrance,Perfume and Body Mist,NA,Spring,2017,Casual,"
    "Boss Men Perfume, After Shave Balm and Shower Gel Set",
    "39386,Men,Apparel,Bottomwear,Jeans,Blue,Summer,2012,Casual,Peter England Men Party Blue Jeans",
]
STYLES_CSV = (download.STYLES_HEADER + "\n" + "\n".join(STYLES_ROWS) + "\n").encode()
IMAGE_IDS = [15970, 44065, 39386]


def jpeg_bytes(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (60, 80), (shade, 255 - shade, 128)).save(buffer, "JPEG")
    return buffer.getvalue()


def dataset_files() -> dict[str, bytes]:
    """Relative path -> content of a tiny dataset in the real layout."""
    files = {"styles.csv": STYLES_CSV}
    files.update({f"images/{image_id}.jpg": jpeg_bytes(i * 60) for i, image_id in enumerate(IMAGE_IDS)})
    return files


def build_zip(path: Path, prefixes: tuple[str, ...] = ("",), extra: tuple[zipfile.ZipInfo | str, ...] = ()) -> Path:
    """A zip holding the tiny dataset under each prefix, plus ``extra`` members (content b'evil')."""
    with zipfile.ZipFile(path, "w") as archive:
        for prefix in prefixes:
            for name, content in dataset_files().items():
                archive.writestr(prefix + name, content)
        for member in extra:
            archive.writestr(member, b"evil")
    return path


def make_dataset_dir(root: Path) -> Path:
    for name, content in dataset_files().items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


@pytest.fixture(scope="module")
def cli():
    """scripts/download_data.py loaded as a module, so its main() runs in this process."""
    spec = importlib.util.spec_from_file_location("download_data_cli", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run(cli, capsys):
    """Run the CLI in-process; returns (exit code, non-empty output lines of stdout + stderr)."""

    def runner(*args: object) -> tuple[int, list[str]]:
        code = cli.main([str(arg) for arg in args])
        captured = capsys.readouterr()
        return code, [line for line in (captured.out + captured.err).splitlines() if line.strip()]

    return runner


def clean_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("KAGGLE_")}
    env.pop("XDG_CONFIG_HOME", None)
    env["HOME"] = str(home)
    return env


@pytest.fixture
def fake_kaggle(monkeypatch, tmp_path):
    """Fake credentials in the environment; the kaggle download call serves ``fake_kaggle.zip``.

    Set ``fake_kaggle.zip`` to a zip path, or ``fake_kaggle.error`` to an exception to raise.
    """
    home = tmp_path / "home"
    home.mkdir()
    for key in [key for key in os.environ if key.startswith("KAGGLE_")] + ["XDG_CONFIG_HOME"]:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KAGGLE_USERNAME", "test-user")
    monkeypatch.setenv("KAGGLE_KEY", "0123456789abcdef")
    from kaggle.api.kaggle_api_extended import KaggleApi

    class Server:
        zip: Path | None = None
        error: Exception | None = None
        calls: list[dict] = []

    def dataset_download_files(self, dataset, path=None, force=False, quiet=True, unzip=False, licenses=[]):
        Server.calls.append({"dataset": dataset, "path": path, "unzip": unzip, "authenticated": self._authenticated})
        if Server.error is not None:
            raise Server.error
        Path(path).mkdir(parents=True, exist_ok=True)  # as kaggle's download_file does
        (Path(path) / ZIP_NAME).write_bytes(Server.zip.read_bytes())

    monkeypatch.setattr(KaggleApi, "dataset_download_files", dataset_download_files)
    Server.calls = []
    Server.zip = build_zip(tmp_path / "served.zip")
    return Server


def assert_installed(dest: Path, mode: str = download.MODE_KAGGLE) -> dict:
    """The tiny dataset is complete at <dest>/fashion-small, with its marker, and no work folder is left."""
    target = dest / "fashion-small"
    assert sorted(p.name for p in (target / "images").iterdir()) == sorted(f"{i}.jpg" for i in IMAGE_IDS)
    assert (target / "styles.csv").read_bytes() == STYLES_CSV
    marker = json.loads((dest / "fashion-small.complete.json").read_text())
    assert (marker["images"], marker["styles_rows"], marker["mode"]) == (len(IMAGE_IDS), len(STYLES_ROWS), mode)
    assert not (dest / download.PARTIAL_DIRNAME).exists()
    return marker


def test_kaggle_download_installs_verifies_and_is_idempotent(run, fake_kaggle, tmp_path):
    dest = tmp_path / "data"
    code, lines = run("--dest", dest, "--quiet")
    assert code == 0, lines
    assert len(lines) == 1 and "3 images, 3 styles rows" in lines[0], lines
    marker = assert_installed(dest)
    assert marker["source"] == download.KAGGLE_DATASET
    assert fake_kaggle.calls == [
        {"dataset": download.KAGGLE_DATASET, "path": str(dest / download.PARTIAL_DIRNAME / "download"),
         "unzip": False, "authenticated": True}
    ]
    assert sorted(p.name for p in dest.iterdir()) == ["fashion-small", "fashion-small.complete.json"]

    code, lines = run("--dest", dest, "--quiet")
    assert code == 0
    assert len(lines) == 1 and "nothing to do" in lines[0], lines
    assert len(fake_kaggle.calls) == 1, "second run must not download again"


@pytest.mark.parametrize("prefixes", [("myntradataset/",), ("", "myntradataset/")], ids=["nested", "both"])
def test_kaggle_zip_with_nested_folder(run, fake_kaggle, tmp_path, prefixes):
    fake_kaggle.zip = build_zip(tmp_path / "nested.zip", prefixes=prefixes)
    dest = tmp_path / "data"
    code, lines = run("--dest", dest, "--quiet")
    assert code == 0, lines
    assert_installed(dest)
    assert sorted(p.name for p in (dest / "fashion-small").iterdir()) == ["images", "styles.csv"]


def test_kaggle_recovers_from_interrupted_run(run, fake_kaggle, tmp_path):
    dest = tmp_path / "data"
    partial = dest / download.PARTIAL_DIRNAME
    (partial / "download").mkdir(parents=True)
    whole_zip = fake_kaggle.zip.read_bytes()
    (partial / "download" / ZIP_NAME).write_bytes(whole_zip[: len(whole_zip) // 2])
    (partial / "staged" / "images").mkdir(parents=True)
    (partial / "staged" / "images" / "99999.jpg").write_bytes(b"half")
    # A dataset folder without a marker (e.g. killed before the marker was written) gets redone.
    (dest / "fashion-small" / "images").mkdir(parents=True)
    (dest / "fashion-small" / "images" / "1.jpg").write_bytes(b"stale")

    code, lines = run("--dest", dest, "--quiet")
    assert code == 0, lines
    assert_installed(dest)
    assert len(fake_kaggle.calls) == 1


@pytest.mark.parametrize("failure", ["truncated zip", "network error"])
def test_kaggle_failure_keeps_the_good_dataset(run, fake_kaggle, tmp_path, failure):
    dest = tmp_path / "data"
    assert run("--dest", dest, "--quiet")[0] == 0
    if failure == "truncated zip":
        whole = fake_kaggle.zip.read_bytes()
        fake_kaggle.zip = tmp_path / "truncated.zip"
        fake_kaggle.zip.write_bytes(whole[: len(whole) - 200])
        expected = "not a valid zip"
    else:
        import requests

        fake_kaggle.error = requests.ConnectionError("Failed to resolve 'api.kaggle.com'")
        expected = "Failed to resolve"

    code, lines = run("--dest", dest, "--quiet", "--force")
    assert code == 1
    assert len(lines) == 1 and expected in lines[0] and "Traceback" not in lines[0], lines
    assert_installed(dest)  # still the previous, complete dataset


def test_failed_swap_restores_the_previous_dataset(run, tmp_path, monkeypatch):
    source = make_dataset_dir(tmp_path / "source")
    dest = tmp_path / "data"
    assert run("--dest", dest, "--from-dir", source, "--quiet")[0] == 0
    real_rename = os.rename

    def rename_failing_on_new_dataset(src, dst):
        if Path(src).name == "staged":
            raise OSError("simulated failure while renaming the new dataset into place")
        real_rename(src, dst)

    monkeypatch.setattr(download.os, "rename", rename_failing_on_new_dataset)
    code, lines = run("--dest", dest, "--from-dir", source, "--copy", "--quiet")
    assert code == 1 and len(lines) == 1 and "simulated failure" in lines[0], lines
    assert (dest / "fashion-small").is_symlink()  # the previous install, back in place
    assert_installed(dest, mode=download.MODE_SYMLINK)


@pytest.mark.parametrize(
    "names, prefix",
    [
        (["styles.csv", "images/1.jpg"], ""),
        (["myntradataset/styles.csv", "myntradataset/images/1.jpg"], "myntradataset/"),
        (["myntradataset/styles.csv", "myntradataset/images/1.jpg", "styles.csv", "images/1.jpg"], ""),
        (["a/styles.csv", "b/images/1.jpg", "b/styles.csv"], "b/"),  # styles.csv must sit beside images/
        (["a/styles.csv", "b/images/1.jpg"], None),
    ],
)
def test_find_dataset_prefix(names, prefix):
    if prefix is None:
        with pytest.raises(download.InvalidDatasetError, match="no folder holding both"):
            download.find_dataset_prefix(names)
    else:
        assert download.find_dataset_prefix(names) == prefix


def symlink_member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3  # Unix, so the mode bits below are meaningful
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize("kind", ["dotdot", "absolute", "symlink"])
def test_kaggle_zip_slip_is_refused(run, fake_kaggle, tmp_path, kind):
    escaped = tmp_path / "escaped.txt"
    member = {
        # Extracted to <dest>/.fashion-small.partial/staged/images/, this lands in tmp_path.
        "dotdot": "images/../../../../escaped.txt",
        "absolute": str(escaped),
        "symlink": symlink_member("images/link.jpg"),
    }[kind]
    fake_kaggle.zip = build_zip(tmp_path / "evil.zip", extra=(member,))
    dest = tmp_path / "data"

    code, lines = run("--dest", dest, "--quiet")
    assert code == 1
    assert len(lines) == 1 and "refusing to extract" in lines[0], lines
    assert not escaped.exists()
    assert list(dest.iterdir()) == []  # nothing installed, work folder removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "evil.zip", "home", "served.zip"]


def test_unsafe_member_reason_accepts_ordinary_members():
    assert download.unsafe_member_reason(zipfile.ZipInfo("myntradataset/images/1.jpg")) is None
    assert download.unsafe_member_reason(zipfile.ZipInfo("C:/x.jpg")) == "has an absolute path"
    assert download.unsafe_member_reason(zipfile.ZipInfo("images\\..\\..\\x.jpg")) == "contains '..'"


def test_missing_credentials_exits_2_with_one_line(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--dest", str(tmp_path / "data")],
        env=clean_env(home), capture_output=True, text=True, timeout=60,
    )
    output = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 2, output
    assert len(output) == 1, output
    assert "Traceback" not in output[0]
    assert str(home / ".kaggle" / "kaggle.json") in output[0] and "KAGGLE_USERNAME" in output[0]
    assert not (tmp_path / "data" / "fashion-small").exists()


def test_credentials_kaggle_rejects_exit_2_with_one_line(run, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".kaggle").mkdir(parents=True)
    (home / ".kaggle" / "credentials.json").write_text("{}")  # present, so our check passes; kaggle says no
    for key in [key for key in os.environ if key.startswith("KAGGLE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("HOME", str(home))
    code, lines = run("--dest", tmp_path / "data", "--quiet")
    assert code == 2
    assert len(lines) == 1 and "did not accept the credentials in" in lines[0], lines
    assert not (tmp_path / "data" / "fashion-small").exists()


@pytest.mark.parametrize(
    "setup, found",
    [
        ({}, None),
        ({"env": {"KAGGLE_USERNAME": "u"}}, None),  # a username alone is not enough
        ({"env": {"KAGGLE_USERNAME": "u", "KAGGLE_KEY": "k"}}, "KAGGLE_USERNAME/KAGGLE_KEY"),
        ({"env": {"KAGGLE_API_TOKEN": "t"}}, "KAGGLE_API_TOKEN"),
        ({"file": ".kaggle/kaggle.json"}, ".kaggle/kaggle.json"),
        ({"file": ".config/kaggle/kaggle.json"}, ".config/kaggle/kaggle.json"),  # kaggle's XDG fallback
        ({"file": "custom/kaggle.json", "env": {"KAGGLE_CONFIG_DIR": "custom"}}, "custom/kaggle.json"),
        ({"file": "custom/kaggle.json"}, None),  # without KAGGLE_CONFIG_DIR that folder is not read
        ({"token": ".kaggle/access_token"}, ".kaggle/access_token"),
    ],
)
def test_find_kaggle_credentials(tmp_path, setup, found):
    env = dict(setup.get("env", {}))
    if "KAGGLE_CONFIG_DIR" in env:
        env["KAGGLE_CONFIG_DIR"] = str(tmp_path / env["KAGGLE_CONFIG_DIR"])
    if "file" in setup:
        (tmp_path / setup["file"]).parent.mkdir(parents=True)
        (tmp_path / setup["file"]).write_text(json.dumps({"username": "u", "key": "k"}))
    if "token" in setup:
        (tmp_path / setup["token"]).parent.mkdir(parents=True)
        (tmp_path / setup["token"]).write_text("KGAT_abc\n")
    location = download.find_kaggle_credentials(environ=env, home=tmp_path)
    expected = found if found is None or found.startswith("KAGGLE_") else str(tmp_path / found)
    assert location == expected


def test_from_dir_symlink_then_copy(run, tmp_path):
    source = make_dataset_dir(tmp_path / "source")
    dest = tmp_path / "data"
    target = dest / "fashion-small"

    code, lines = run("--dest", dest, "--from-dir", source, "--quiet")
    assert code == 0 and len(lines) == 1 and "symlink to" in lines[0], lines
    assert target.is_symlink() and target.resolve() == source.resolve()
    assert_installed(dest, mode=download.MODE_SYMLINK)

    code, lines = run("--dest", dest, "--from-dir", source, "--quiet")
    assert code == 0 and "nothing to do" in lines[0], lines

    code, lines = run("--dest", dest, "--from-dir", source, "--copy", "--quiet")
    assert code == 0 and "copied from" in lines[0], lines
    assert not target.is_symlink() and target.is_dir()
    assert_installed(dest, mode=download.MODE_COPY)
    assert len(list((source / "images").iterdir())) == len(IMAGE_IDS), "the source must be untouched"

    # Taking the installed copy as its own source would delete it while replacing it.
    code, lines = run("--dest", dest, "--from-dir", target, "--copy", "--force", "--quiet")
    assert code == 2 and len(lines) == 1 and "destination" in lines[0], lines
    assert_installed(dest, mode=download.MODE_COPY)


@pytest.mark.parametrize("problem", ["missing", "no styles.csv", "wrong header", "no images"])
def test_bad_from_dir_is_a_user_error(run, tmp_path, problem):
    source = make_dataset_dir(tmp_path / "source")
    if problem == "missing":
        source = tmp_path / "absent"
    elif problem == "no styles.csv":
        (source / "styles.csv").unlink()
    elif problem == "wrong header":
        (source / "styles.csv").write_text("id,name\n1,x\n")
    else:
        for image in (source / "images").iterdir():
            image.unlink()
    code, lines = run("--dest", tmp_path / "data", "--from-dir", source, "--quiet")
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: --from-dir") and "Traceback" not in lines[0], lines
    assert not (tmp_path / "data" / "fashion-small").exists()


@pytest.mark.shared
@pytest.mark.skipif(not SHARED_DATASET.is_dir(), reason=f"real dataset not present at {SHARED_DATASET}")
def test_from_dir_on_shared_dataset(run, tmp_path, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # the documented use: --from-dir ../shared/data/fashion-small
    dest = tmp_path / "data"
    code, lines = run("--dest", dest, "--from-dir", os.path.relpath(SHARED_DATASET, REPO_ROOT), "--quiet")
    assert code == 0, lines
    assert len(lines) == 1 and "41396 images, 44446 styles rows" in lines[0], lines
    assert (dest / "fashion-small").resolve() == SHARED_DATASET.resolve()
    marker = json.loads((dest / "fashion-small.complete.json").read_text())
    assert (marker["images"], marker["styles_rows"]) == (41396, 44446)


def test_help_mentions_every_flag(cli):
    result = subprocess.run([sys.executable, str(SCRIPT), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    flags = {option for action in cli.build_parser()._actions for option in action.option_strings}
    assert {"--dest", "--from-dir", "--copy", "--force", "--quiet"} <= flags
    assert all(flag in result.stdout for flag in flags)


def test_importing_the_library_stays_cheap():
    code = "import sys, fashiongen.download; print(sorted({'kaggle', 'tensorflow'} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


# --------------------------------------------------------------------------- hostile --from-dir input


@pytest.mark.parametrize(
    "bad_line, message",
    [
        ("99,Men,Apparel", "has 3 fields, expected 10"),
        ("abc,Men,Apparel,Topwear,Shirts,Blue,Summer,2012,Casual,No id", "has id 'abc', not an integer"),
        ("1,Men,Apparel,Topwear,Shirts,Blue,Summer,2012,Casual,Same id as line 2", "lists id 1 more than once"),
    ],
    ids=["short row", "non-integer id", "duplicated id"],
)
def test_from_dir_with_a_malformed_styles_body_is_refused(run, tmp_path, bad_line, message):
    source = make_tiny_dataset(tmp_path / "source")
    with open(source / "styles.csv", "a") as styles:
        styles.write(bad_line + "\n")
    dest = tmp_path / "data"
    code, lines = run("--dest", dest, "--from-dir", source, "--quiet")
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: --from-dir") and message in lines[0], lines
    assert not (dest / "fashion-small").exists() and not (dest / "fashion-small.complete.json").exists()


def test_kaggle_zip_with_a_malformed_styles_body_is_not_installed(run, fake_kaggle, tmp_path):
    source = make_tiny_dataset(tmp_path / "source")
    with open(source / "styles.csv", "a") as styles:
        styles.write("99,Men,Apparel\n")
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as archive:
        for path in sorted(source.rglob("*")):
            archive.write(path, path.relative_to(source).as_posix())
    fake_kaggle.zip = tmp_path / "bad.zip"
    dest = tmp_path / "data"
    code, lines = run("--dest", dest, "--quiet")
    assert code == 1 and len(lines) == 1 and "has 3 fields" in lines[0], lines
    assert list(dest.iterdir()) == []  # nothing installed, work folder removed


@pytest.mark.parametrize("layout", ["same folder", "dest inside source", "source inside dest"])
@pytest.mark.parametrize("copy", [False, True], ids=["symlink", "copy"])
def test_from_dir_overlapping_dest_is_refused(run, tmp_path, layout, copy):
    if layout == "source inside dest":
        dest = tmp_path / "data"
        source = make_tiny_dataset(dest / "source")
    else:
        source = make_tiny_dataset(tmp_path / "source")
        dest = source if layout == "same folder" else source / "sub"
    before = sorted(source.rglob("*"))
    code, lines = run("--dest", dest, "--from-dir", source, "--quiet", *(["--copy"] if copy else []))
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("error: --") and "destination" in lines[0], lines
    assert sorted(source.rglob("*")) == before  # nothing written into the source (or the dest)


def test_leftover_work_folder_is_removed_by_the_next_run(run, tmp_path):
    """kill -9 leaves the work folder (the kill cannot be caught); every later run removes it,
    even one that then refuses its source or finds the dataset already there."""
    source = make_tiny_dataset(tmp_path / "source")
    dest = tmp_path / "data"
    partial = dest / download.PARTIAL_DIRNAME
    partial.mkdir(parents=True)  # what a run killed right after making it leaves
    code, lines = run("--dest", dest, "--from-dir", tmp_path / "absent", "--quiet")
    assert code == 2 and "is not a directory" in lines[0], lines
    assert not partial.exists()

    assert run("--dest", dest, "--from-dir", source, "--quiet")[0] == 0
    (partial / "staged").mkdir(parents=True)
    code, lines = run("--dest", dest, "--from-dir", source, "--quiet")
    assert code == 0 and "nothing to do" in lines[0], lines
    assert sorted(p.name for p in dest.iterdir()) == ["fashion-small", "fashion-small.complete.json"]


def test_leftover_work_folder_after_a_real_kill(tmp_path):
    """The script killed with SIGKILL mid-copy, then run again: nothing of the first run is left."""
    source = make_tiny_dataset(tmp_path / "source")
    dest = tmp_path / "data"
    slow_copy = (
        "import sys, time, runpy, shutil\n"
        "real = shutil.copyfile\n"
        "def slow(*args, **kwargs):\n"
        "    print('copying', flush=True); time.sleep(60); return real(*args, **kwargs)\n"
        "shutil.copyfile = slow\n"
        f"sys.argv = ['download_data.py', '--dest', {str(dest)!r}, '--from-dir', {str(source)!r},\n"
        "            '--copy', '--quiet']\n"
        f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')\n"
    )
    process = subprocess.Popen([sys.executable, "-c", slow_copy], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "copying"  # inside the work folder now
        process.kill()
    finally:
        process.wait(timeout=60)
    assert (dest / download.PARTIAL_DIRNAME).is_dir()
    result = subprocess.run([sys.executable, str(SCRIPT), "--dest", str(dest), "--from-dir", str(source), "--quiet"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in dest.iterdir()) == ["fashion-small", "fashion-small.complete.json"]


def test_importing_download_does_not_import_pandas() -> None:
    # pandas takes about a second to import, and only verification (read_styles) needs it.
    code = "import sys, fashiongen.download; print('pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "False", done.stderr[-2000:]
