#!/usr/bin/env python
"""Put the Fashion Product Images (Small) dataset at <dest>/fashion-small (default: data/ in this repo).

Exit status: 0 done (or already there), 1 download/verification failure, 2 user error
(no Kaggle credentials, bad --from-dir).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from fashiongen import download

REPO_ROOT = Path(__file__).resolve().parents[1]  # --dest's default: data/ in the repo


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=(
            f"Download the Kaggle dataset {download.KAGGLE_DATASET} (needs Kaggle credentials) or take a "
            f"local copy, verify it, and put it at DEST/{download.DATASET_DIRNAME} (images/ + styles.csv). "
            "A second run does nothing; an interrupted run is cleaned up and redone."
        ),
        epilog="Exit status: 0 done or already there, 1 download or verification failed, 2 user error.",
    )
    parser.add_argument(
        "--dest",
        metavar="DIR",
        type=Path,
        default=REPO_ROOT / "data",
        help=f"folder that receives {download.DATASET_DIRNAME}/ and its marker file (default: data/ in the repo)",
    )
    parser.add_argument(
        "--from-dir",
        metavar="DIR",
        type=Path,
        help="use an existing local copy (images/ + styles.csv, e.g. ../shared/data/fashion-small) "
        "instead of Kaggle: verify it and symlink it into place",
    )
    parser.add_argument(
        "--copy",
        action="store_true",
        help="with --from-dir: make a real copy instead of a symlink",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="redo even if a complete dataset is already in place (it stays there until the new one is verified)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars or progress messages; only the final line",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.copy and args.from_dir is None:
        parser.error("--copy needs --from-dir")
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    progress = not args.quiet
    try:
        if args.from_dir is not None:
            result = download.install_from_dir(
                args.from_dir, args.dest, copy=args.copy, force=args.force, progress=progress
            )
        else:
            result = download.download_from_kaggle(args.dest, force=args.force, progress=progress)
    except download.DatasetSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("error: interrupted; the next run cleans up and starts over", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, never a traceback: the message says what failed
        print(f"error: {type(exc).__name__}: {download.one_line(exc)}", file=sys.stderr)
        return 1
    print(result.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
