"""A real `suneung serve` for the tests: a new workspace, started on 127.0.0.1 and a free
port, with a write token and a read token; stopped after the session.

The binary: $SUNEUNG_BINARY, else the repository's release build (make test builds it).
The real exam files: ../shared/data beside the checkout (its README), else the sample.
"""
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def binary():
    path = os.environ.get("SUNEUNG_BINARY") or str(ROOT / ".build" / "release" / "suneung")
    if not os.access(path, os.X_OK):
        pytest.exit(f"{path} is not built: run `swift build -c release` (make test does), or set SUNEUNG_BINARY", returncode=2)
    return path


def suneung(*arguments, workspace):
    result = subprocess.run([binary(), *arguments, "--workspace", str(workspace)], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"suneung {' '.join(arguments)}: {result.stdout}{result.stderr}")
    return result.stdout


class Server:
    def __init__(self, workspace):
        self.workspace = workspace
        suneung("init", workspace=workspace)
        self.write_token = self.token("trainer", "write")
        self.read_token = self.token("viewer", "read")
        self.process = None
        self.url = None

    def token(self, name, role):
        return re.search(r"snt_\S+", suneung("token", "add", name, "--role", role, workspace=self.workspace)).group(0)

    def start(self, port=0):
        self.process = subprocess.Popen(
            [binary(), "serve", "--workspace", str(self.workspace), "--host", "127.0.0.1", "--port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 60
        lines = []
        while time.time() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line)
            found = re.search(r"http://127\.0\.0\.1:(\d+)", line)
            if found:
                self.url = f"http://127.0.0.1:{found.group(1)}"
                return self
        raise RuntimeError("suneung serve did not start:\n" + "".join(lines))

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


@pytest.fixture(scope="session")
def server(tmp_path_factory):
    server = Server(tmp_path_factory.mktemp("workspace")).start()
    yield server
    server.stop()


def data_file(name):
    real = ROOT.parent / "shared" / "data" / name
    return real if real.exists() else ROOT / "data" / "sample" / name


@pytest.fixture(scope="session")
def test_csv():
    return data_file("test.csv")


@pytest.fixture(scope="session")
def train_csv():
    return data_file("train.csv")
