"""Startup cost of `halluc --help` against a bare `import typer`, measured side by side.

Run: python tests/bench/startup.py [--runs N]. Target: ratio <= 1.5 (median of N runs each,
interleaved so that machine noise hits both alike). Measures the steady state of an installed
tool: PYTHONDONTWRITEBYTECODE is cleared and a warm-up run writes the bytecode, as any first run
(or pip's install-time compilation) does for a user.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

TARGET = 1.5


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def wall(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    halluc = shutil.which("halluc")
    cmds = {
        "python -c 'import typer'": [sys.executable, "-c", "import typer"],
        "halluc --help": [halluc, "--help"] if halluc else [sys.executable, "-m", "ucli", "--help"],
    }
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for cmd in cmds.values():  # warm the file cache and write bytecode once
        wall(cmd)
    for _ in range(args.runs):
        for name, cmd in cmds.items():
            times[name].append(wall(cmd))
    base = statistics.median(times["python -c 'import typer'"])
    print(f"{'command':<28} {'median s':>9} {'ratio':>7}")
    for name, ts in times.items():
        print(f"{name:<28} {statistics.median(ts):>9.3f} {statistics.median(ts) / base:>7.2f}")
    ratio = statistics.median(times["halluc --help"]) / base
    print(
        f"target ratio <= {TARGET}: {'met' if ratio <= TARGET else 'MISSED'} ({ratio:.2f}, {args.runs} runs each)"
    )
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
