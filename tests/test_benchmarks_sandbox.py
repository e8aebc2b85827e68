"""Hostile HumanEval completions: nothing may hang the run, touch files outside, read secrets or reach the network."""

import socket
import threading
import time

import psutil
import pytest

from halluc_benchmarks.sandbox import isolation, run_python

BYPASS = "import sys\nsys.meta_path.pop(0)\nimport ctypes\nlibc = ctypes.CDLL(None)\n"


def test_plain_code_runs_and_failures_are_reported():
    assert run_python("print(6 * 7)").output == "42\n"
    failed = run_python("assert 1 == 2")
    assert failed.status == "failed" and "AssertionError" in failed.output


def test_an_infinite_loop_cannot_hang_the_run():
    start = time.monotonic()
    assert run_python("while True:\n    pass", timeout=2).status == "timeout"
    assert time.monotonic() - start < 5


def _leftovers() -> list[psutil.Process]:
    return [
        p
        for p in psutil.process_iter(["cmdline"])
        if any("halluc-sandbox-" in c for c in (p.info["cmdline"] or []))
    ]


def test_forking_is_refused_and_a_fork_bomb_leaves_nothing_behind():
    for code in (
        "import os\nos.fork()",
        "import posix\nposix.fork()",
        "import subprocess\nsubprocess.run(['ls'])",
    ):
        result = run_python(code)
        assert result.status == "failed" and "not allowed in the halluc sandbox" in result.output
    assert "ctypes is not allowed" in run_python("import ctypes").output
    start = time.monotonic()
    bomb = run_python(BYPASS + "while True:\n    libc.fork()", timeout=3)
    assert bomb.status in ("timeout", "failed") and time.monotonic() - start < 8
    time.sleep(0.5)
    assert _leftovers() == []


@pytest.mark.parametrize(
    "code",
    [
        "open({target!r}, 'w').write('pwned')",
        "import os\nos.close(os.open({target!r}, os.O_WRONLY | os.O_CREAT))",
        "import shutil\nshutil.rmtree({folder!r})",
        "import os\nos.remove({keep!r})",
    ],
)
def test_files_outside_the_sandbox_cannot_be_written_or_removed(tmp_path, code):
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    target = tmp_path / "pwned.txt"
    result = run_python(code.format(target=str(target), folder=str(tmp_path), keep=str(keep)))
    assert result.status == "failed"
    assert not target.exists() and keep.read_text() == "mine"


def test_the_real_home_folder_is_out_of_reach(tmp_path):
    import os

    real_home = os.path.expanduser("~")
    target = os.path.join(real_home, "halluc-sandbox-test-pwned")
    result = run_python(f"import os\nprint(os.path.expanduser('~'))\nopen({target!r}, 'w').write('x')")
    assert result.status == "failed" and not os.path.exists(target)
    assert real_home not in result.output.splitlines()[0]  # HOME is the sandbox folder


def test_even_a_program_that_dismantles_the_guard_cannot_write_outside_when_run_as_nobody(tmp_path):
    if "nobody" not in isolation().layers:
        pytest.skip("this machine cannot run the child as `nobody` (see sandbox.isolation)")
    target = tmp_path / "pwned.txt"
    result = run_python(BYPASS + f"fd = libc.open({str(target).encode()!r}, 65, 420)\nassert fd >= 0, fd")
    assert result.status == "failed" and not target.exists()


def test_secrets_in_the_environment_are_not_visible(monkeypatch):
    monkeypatch.setenv("HALLUC_FAKE_SECRET", "s3cr3t-value-123")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake-0123456789")
    result = run_python("import os\nprint(sorted(os.environ))\nprint(open('/proc/self/environ').read())")
    assert result.status == "passed"
    assert "s3cr3t-value-123" not in result.output and "sk-fake" not in result.output
    assert "HALLUC_FAKE_SECRET" not in result.output


@pytest.fixture
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.2)
    accepted = []
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join(timeout=2)
    server.close()


def test_the_network_is_out_of_reach(listener):
    port, accepted = listener
    result = run_python(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2)")
    assert result.status == "failed" and "not allowed" in result.output
    if "no-network" in isolation().layers:  # the OS layer holds even when the guard is bypassed
        raw = run_python(
            f"import _socket\ns = _socket.socket()\ns.settimeout(2)\ns.connect(('127.0.0.1', {port}))"
        )
        assert raw.status == "failed"
    time.sleep(0.3)
    assert accepted == []
