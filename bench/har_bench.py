"""Benchmark: time and peak memory of `probe har` on a generated ~100 MB HAR (prints figures; not a test).

Usage: python bench/har_bench.py [SIZE_MB]   (default 100). The HAR is written to a temp dir and deleted.
Each measurement runs in a fresh subprocess so peak RSS (ru_maxrss) belongs to that step alone.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import time

STEP = r"""
import json, resource, sys, time
mode, path = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if mode == "json.load":
    with open(path, "rb") as fh:
        n = len(json.load(fh)["log"]["entries"])
elif mode == "load_har":
    from diagkit.formats.har import load_har
    n = len(load_har(path)["log"]["entries"])
else:
    from diagkit.collectors.har import probe as har
    from diagkit.context import Context
    from diagkit.runner import run_probe
    r = run_probe(har.probe, path, {}, Context(timeout=60))
    n = r.facts.get("entries")
    print("findings", sorted({f.id for f in r.findings}), "streamed", r.facts.get("streamed"), file=sys.stderr)
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"entries": n, "seconds": round(time.perf_counter() - t, 2), "peak_rss_mb": round(rss, 1)}))
"""


def make_entry(i: int, rng: random.Random) -> dict:
    headers = [{"name": f"X-Header-{k}", "value": "v" * rng.randint(5, 60)} for k in range(12)]
    headers.append({"name": "Date", "value": "Sun, 01 Mar 2026 10:00:00 GMT"})
    headers.append({"name": "X-Request-Id", "value": f"req-{i}"})
    body = "".join(rng.choice("abcdefghij ") for _ in range(rng.randint(200, 4000)))
    status = 500 if i % 997 == 0 else 200
    return {
        "startedDateTime": f"2026-03-01T10:{(i // 1000) % 60:02d}:{i % 60:02d}.000Z", "time": 44,
        "request": {"method": "GET", "url": f"https://api{i % 7}.example.com/v1/items/{i}?page={i}&q=x",
                    "httpVersion": "HTTP/2", "headers": headers[:8], "queryString": [], "cookies": [],
                    "headersSize": -1, "bodySize": 0},
        "response": {"status": status, "statusText": "", "httpVersion": "HTTP/2", "headers": headers,
                     "cookies": [], "content": {"size": len(body), "mimeType": "text/html", "text": body},
                     "redirectURL": "", "headersSize": -1, "bodySize": -1},
        "cache": {}, "timings": {"blocked": 1, "dns": -1, "connect": -1, "ssl": -1, "send": 1, "wait": 40,
                                 "receive": 2},
    }


def generate(path: str, size_mb: int) -> int:
    rng = random.Random(1)
    count = written = 0
    with open(path, "w", encoding="utf-8") as fh:
        fh.write('{"log": {"version": "1.2", "creator": {"name": "bench", "version": "1"}, "entries": [')
        while written < size_mb * 1024 * 1024:
            text = json.dumps(make_entry(count, rng))
            fh.write(("," if count else "") + text)
            written += len(text) + 1
            count += 1
        fh.write("]}}")
    return count


def main() -> None:
    size_mb = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "bench.har")
        t = time.perf_counter()
        count = generate(path, size_mb)
        size = os.path.getsize(path) / 1024 / 1024
        print(f"generated {path}: {size:.1f} MB, {count} entries in {time.perf_counter() - t:.1f} s")
        for mode in ("json.load", "load_har", "probe"):
            out = subprocess.run([sys.executable, "-c", STEP, mode, path], capture_output=True, text=True,
                                 check=True)
            figures = json.loads(out.stdout)
            print(f"{mode:<10} {figures['seconds']:>6} s  peak RSS {figures['peak_rss_mb']:>7} MB "
                  f"({figures['peak_rss_mb'] / size:.1f}x file)  entries {figures['entries']}")
            if out.stderr.strip():
                print("           " + out.stderr.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
