"""Run untrusted model-written Python (HumanEval completions) so that it cannot do harm.

Layers, each a backstop for the one before:
- a fresh temporary folder as working directory and HOME, removed afterwards; an empty
  environment (no API keys or other secrets reach the child); `python -I` (no user site, no
  PYTHON* variables);
- a guard prepended to the program: writing or deleting outside the folder, forking, spawning
  processes and opening sockets raise PermissionError (through `os` and `posix` alike), and
  `ctypes`, `cffi`, `multiprocessing` and `pty` cannot be imported;
- resource limits: address space, CPU seconds, file size, open files; its own session, and the
  whole process group is killed at the wall-clock limit, so loops and forks cannot hang a run;
- where the OS allows (`isolation()` says which): run as the unprivileged user `nobody` when
  halluc runs as root (file permissions then protect everything outside the folder even from a
  program that dismantles the guard, and the process-count limit applies), and inside
  `unshare -rn`, a new network namespace with no interface up (no network, loopback included).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cache

NOBODY = 65534

GUARD = r'''
import builtins as _b, io as _io, os as _os, posix as _px, shutil as _sh, socket as _so, subprocess as _sp
import sys as _sys, _posixsubprocess as _ps
_ROOT = _os.path.realpath(_os.getcwd())
def _inside(path):
    try:
        real = _os.path.realpath(_os.path.join(_ROOT, _os.fsdecode(path)))
    except (TypeError, ValueError):
        return False
    return real == _ROOT or real.startswith(_ROOT + _os.sep)
def _deny(*a, **k):
    raise PermissionError("not allowed in the halluc sandbox")
_open = _b.open
def _guarded_open(file, mode="r", *a, **k):
    if not isinstance(file, int) and any(c in mode for c in "wax+") and not _inside(file):
        raise PermissionError(f"writing outside the sandbox: {file}")
    return _open(file, mode, *a, **k)
_b.open = _io.open = _guarded_open
_os_open = _os.open
def _guarded_os_open(path, flags, *a, **k):
    if flags & (_os.O_WRONLY | _os.O_RDWR | _os.O_CREAT | _os.O_APPEND | _os.O_TRUNC) and not _inside(path):
        raise PermissionError(f"writing outside the sandbox: {path}")
    return _os_open(path, flags, *a, **k)
_os.open = _px.open = _guarded_os_open
for _name in ("fork", "forkpty", "system", "popen", "execv", "execve", "execvp", "execvpe", "execl", "execle",
              "execlp", "execlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "posix_spawn", "posix_spawnp",
              "kill", "killpg", "remove", "unlink", "rmdir", "removedirs", "rename", "renames", "replace",
              "chmod", "chown", "lchown", "truncate", "symlink", "link", "setuid", "setgid", "chroot"):
    for _mod in (_os, _px):
        if hasattr(_mod, _name):
            setattr(_mod, _name, _deny)
_ps.fork_exec = _deny
_sh.rmtree = _sh.move = _sh.chown = _deny
_sp.Popen = _sp.run = _sp.call = _sp.check_call = _sp.check_output = _deny
_so.socket = _so.create_connection = _so.socketpair = _deny
class _Refuse:
    """Refuse modules that reach the OS around the guard (libc through ctypes, process pools)."""
    BLOCKED = {"ctypes", "_ctypes", "cffi", "_cffi_backend", "multiprocessing", "_multiprocessing", "pty"}
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.BLOCKED:
            raise ImportError(f"{name} is not allowed in the halluc sandbox")
        return None
_sys.meta_path.insert(0, _Refuse())
for _m in [m for m in _sys.modules if m.split(".")[0] in _Refuse.BLOCKED]:
    del _sys.modules[_m]
'''


@dataclass(frozen=True)
class Isolation:
    """How this machine isolates the child: which Python runs it and which OS layers hold."""

    python: str
    nobody: bool  # runs as the unprivileged user `nobody` (halluc itself runs as root)
    no_network: bool  # inside `unshare -rn`: a network namespace with no interface up

    @property
    def layers(self) -> tuple[str, ...]:
        return tuple(name for name, on in (("nobody", self.nobody), ("no-network", self.no_network)) if on)


@dataclass(frozen=True)
class ExecResult:
    status: str  # passed | failed | timeout
    returncode: int | None
    output: str  # the tail of stdout + stderr
    isolation: tuple[str, ...]


def _drop_privileges() -> None:
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)


def _runs(cmd: list[str], as_nobody: bool) -> bool:
    try:
        done = subprocess.run(
            cmd, capture_output=True, timeout=10, preexec_fn=_drop_privileges if as_nobody else None
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


@cache
def isolation() -> Isolation:
    """Probe the layers as they will run.

    As root, the child runs as `nobody` with the first Python that user can execute: this one,
    else the system's `python3` (an interpreter inside root's home is out of its reach; HumanEval
    needs only the standard library). `unshare -rn` is probed as that same user.
    """
    python = sys.executable
    drop = False
    if os.name == "posix" and os.geteuid() == 0:
        for candidate in dict.fromkeys([sys.executable, shutil.which("python3"), "/usr/bin/python3"]):
            if candidate and _runs([candidate, "-I", "-c", "pass"], as_nobody=True):
                python, drop = candidate, True
                break
    unshare = shutil.which("unshare")
    no_network = bool(unshare) and _runs([unshare or "", "-rn", python, "-I", "-c", "pass"], as_nobody=drop)
    return Isolation(python, drop, no_network)


def _limits(timeout: float, memory_mb: int, drop: bool):
    def apply() -> None:
        import resource

        os.setsid()
        cpu = int(timeout) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb << 20, memory_mb << 20))
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if drop:
            resource.setrlimit(resource.RLIMIT_NPROC, (64, 64))
            _drop_privileges()

    return apply


def run_python(code: str, timeout: float = 10.0, memory_mb: int = 1024) -> ExecResult:
    """Run `code` under every layer available; `passed` means it exited 0 within the time limit."""
    iso = isolation()
    with tempfile.TemporaryDirectory(prefix="halluc-sandbox-") as folder:
        if iso.nobody:
            os.chmod(folder, 0o777)
        program = os.path.join(folder, "program.py")
        with open(program, "w", encoding="utf-8") as fh:
            fh.write(GUARD + "\n" + code)
        os.chmod(program, 0o644)
        cmd = [iso.python, "-I", "-B", program]
        if iso.no_network:
            cmd = [shutil.which("unshare") or "unshare", "-rn", *cmd]
        env = {"PATH": os.defpath, "HOME": folder, "TMPDIR": folder, "LANG": "C.UTF-8", "PYTHONHASHSEED": "0"}
        proc = subprocess.Popen(
            cmd,
            cwd=folder,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            preexec_fn=_limits(timeout, memory_mb, iso.nobody),
        )
        try:
            out, _ = proc.communicate(timeout=timeout)
            status = "passed" if proc.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            status, out = "timeout", b""
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)  # the child's whole session, forks included
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        return ExecResult(status, proc.returncode, out.decode("utf-8", "replace")[-2000:], iso.layers)
