"""Process-level setup: importing fashiongen turns TensorFlow's oneDNN kernels on unless the user
chose otherwise (TensorFlow itself does only on CPUs with AVX-512)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ASK = ("import fashiongen, os; from tensorflow.python.util import _pywrap_util_port as port; "
       "print(os.environ['TF_ENABLE_ONEDNN_OPTS'], int(port.IsMklEnabled()))")


@pytest.mark.parametrize(("chosen", "expected"), [(None, "1 1"), ("0", "0 0"), ("1", "1 1")])
def test_onednn_is_on_unless_the_user_turned_it_off(chosen: str | None, expected: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if chosen is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = chosen
    result = subprocess.run([sys.executable, "-c", ASK], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split("\n")[-2] == expected
