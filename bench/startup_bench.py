"""Measures CLI start-up: `diagkit --help`, `--version` and `probe --list` wall time (median of N runs).

Usage: python bench/startup_bench.py [N]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time


def measure(args: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "diagkit", *args], capture_output=True, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    baseline = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=False)
        baseline.append(time.perf_counter() - t0)
    print(f"python -c pass            {statistics.median(baseline) * 1000:7.1f} ms (interpreter floor)")
    for args in (["--version"], ["--help"], ["probe", "--help"], ["probe", "--list"], ["findings", "list"]):
        print(f"diagkit {' '.join(args):<18}{measure(args, runs):7.1f} ms (median of {runs})")


if __name__ == "__main__":
    main()
