#!/usr/bin/env bash
# Re-pin requirements.txt and requirements-test.txt to the newest releases that the ranges in
# pyproject.toml allow, with pip-tools. Run it in a virtual environment of the Python you ship for
# (the pins are resolved for that Python), then run the tests before committing the new pins:
#   bash scripts/pin_requirements.sh && pip install -r requirements-test.txt && python -m pytest
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q "pip-tools>=7.4,<8"
options=(--quiet --upgrade --strip-extras --no-emit-index-url --no-emit-find-links)
python -m piptools compile "${options[@]}" --output-file requirements.txt requirements.in
python -m piptools compile "${options[@]}" --output-file requirements-test.txt requirements-test.in
