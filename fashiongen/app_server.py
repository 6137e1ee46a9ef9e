"""The app as a running server, for the benchmark and the browser tests: `streamlit run app.py`
headless on a loopback port, and the Chromium that drives it on a machine without a network.

The library itself never imports Streamlit: the server is a child process.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

# app.py sits at the checkout's root, beside the package (the README installs the package editable)
APP_ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# without the networking flags Chromium keeps calling Google's hosts, which a closed network refuses
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
# true in the browser once Streamlit has finished the page's script run
RUN_FINISHED = """() => document.querySelector("[data-testid='stApp']").dataset.testScriptState === 'notRunning'"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_app(port: int, log) -> subprocess.Popen:
    """The README's `streamlit run app.py`, headless on 127.0.0.1:`port`, importing this checkout; its
    output goes to `log` (a file, or subprocess.PIPE)."""
    path = os.pathsep.join(filter(None, [str(APP_ROOT), os.environ.get("PYTHONPATH")]))
    return subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        cwd=APP_ROOT, env=dict(os.environ, PYTHONPATH=path), stdout=log, stderr=subprocess.STDOUT,
    )


def stop_app(server: subprocess.Popen) -> None:
    """Ask the server to stop; kill it if it has not within 20 s."""
    server.terminate()
    try:
        server.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.kill()


def wait_until_serving(url: str, server: subprocess.Popen, timeout_s: float) -> bool:
    """True once `url` answers Streamlit's health check; False if the server exits or time runs out."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and server.poll() is None:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return True
        except OSError:
            time.sleep(0.05)
    return False
