"""Redaction benchmark: prints time and peak memory against a json.load + json.dump round trip.

    /tmp/venv/bin/python bench/redact_bench.py [--sizes 10,25,50] [--workers N] [--skip-presidio]

1. HARs of 10/25/50 MB (generated, with cookies, JWTs, emails, form posts, JSON/HTML/base64 bodies):
   redaction vs Python's own json.load + json.dump of the same file, each in a fresh process so peak RSS
   (ru_maxrss) is that run's alone.
2. A 1 MB text sample: diagkit's text redaction vs a naive presidio AnalyzerEngine (all predefined
   recognizers, blank spaCy pipeline, line by line), with the number of findings of each.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_entry(rng: random.Random, i: int) -> dict:
    user = f"user{rng.randrange(5000)}@example{rng.randrange(50)}.com"
    jwt = ".".join([_b64url(b'{"alg":"RS256","kid":"k1"}'),
                    _b64url(json.dumps({"iss": "https://idp.example.com", "sub": f"u{i}", "email": user,
                                        "exp": 1700000000 + i}).encode()),
                    _b64url(os.urandom(32))])
    body = json.dumps({"id": i, "items": [{"name": f"item {k}", "price": k * 3, "owner": user,
                                           "note": "lorem ipsum dolor sit amet " * 4} for k in range(12)],
                       "trace": f"{rng.getrandbits(128):032x}"})
    html = "<html><body>" + "<p>Some page content with text and numbers 42.</p>" * 40 + "</body></html>"
    return {
        "startedDateTime": "2023-11-14T22:00:00.000Z", "time": 120.5 + i % 7,
        "request": {"method": "POST" if i % 5 == 0 else "GET",
                    "url": f"https://api.example.com/v1/items/{i}?code={rng.getrandbits(64):x}&page={i % 9}",
                    "httpVersion": "HTTP/2", "headers": [
                        {"name": "authorization", "value": f"Bearer {jwt}"},
                        {"name": "cookie", "value": f"sid={rng.getrandbits(96):x}; theme=dark; _ga=GA1.2.{i}"},
                        {"name": "user-agent", "value": "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0.0.0"},
                        {"name": "accept", "value": "application/json"},
                        {"name": "x-request-id", "value": f"req-{i}"},
                        {"name": "referer", "value": f"https://app.example.com/page/{i % 50}"}],
                    "queryString": [{"name": "code", "value": f"{rng.getrandbits(64):x}"},
                                    {"name": "page", "value": str(i % 9)}],
                    "cookies": [{"name": "sid", "value": f"{rng.getrandbits(96):x}"}],
                    "headersSize": -1, "bodySize": 0,
                    **({"postData": {"mimeType": "application/x-www-form-urlencoded",
                                     "text": f"username={user}&password=pw{i}&remember=1"}} if i % 5 == 0 else {})},
        "response": {"status": 200 if i % 13 else 401, "statusText": "OK", "httpVersion": "HTTP/2",
                     "headers": [{"name": "content-type", "value": "application/json"},
                                 {"name": "set-cookie", "value": f"sid={rng.getrandbits(96):x}; Path=/; HttpOnly"},
                                 {"name": "date", "value": "Tue, 14 Nov 2023 22:00:00 GMT"}],
                     "cookies": [], "redirectURL": "", "headersSize": -1, "bodySize": len(body),
                     "content": ({"size": len(html), "mimeType": "text/html", "text": html} if i % 3 == 0 else
                                 {"size": len(body), "mimeType": "application/json",
                                  "text": base64.b64encode(body.encode()).decode(), "encoding": "base64"}
                                 if i % 3 == 1 else
                                 {"size": len(body), "mimeType": "application/json", "text": body})},
        "cache": {}, "timings": {"send": 0.2, "wait": 100.0 + i % 11, "receive": 3.1},
    }


def make_har(path: str, megabytes: int) -> None:
    rng = random.Random(megabytes)
    entries, size, i = [], 0, 0
    while size < megabytes * 1_000_000:
        e = make_entry(rng, i)
        size += len(json.dumps(e)) + 2
        entries.append(e)
        i += 1
    with open(path, "w") as handle:
        json.dump({"log": {"version": "1.2", "creator": {"name": "bench", "version": "1"}, "entries": entries}},
                  handle, indent=1)


def _child(kind: str, path: str, workers: str) -> None:
    """Runs inside a fresh interpreter; prints seconds and peak RSS in MB."""
    start = time.perf_counter()
    if kind == "json":
        with open(path, encoding="utf-8-sig") as handle:
            obj = json.load(handle)
        with open(os.devnull, "w") as out:
            json.dump(obj, out, indent=1, ensure_ascii=False)
    else:
        from diagkit.redact import engine
        from diagkit.redact.engine import Redactor

        if int(workers) > 1:
            engine.PARALLEL_MIN_BYTES = 0
        with open(path, "rb") as handle:
            data = handle.read()
        redactor = Redactor(b"b" * 32, ner=False, workers=int(workers))
        result = redactor.redact_bytes(data, name=path, fmt="har")
        with open(os.devnull, "wb") as out:
            out.write(result.data)
    elapsed = time.perf_counter() - start
    print(json.dumps({"seconds": round(elapsed, 3), "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024}))


def run_child(kind: str, path: str, workers: int = 1) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", kind, path, str(workers)], check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_har(sizes: list[int], workers: list[int]) -> None:
    print("HAR redaction vs json.load+json.dump (fresh process each; time s / peak RSS MB)")
    with tempfile.TemporaryDirectory() as tmp:
        for mb in sizes:
            path = os.path.join(tmp, f"bench-{mb}.har")
            make_har(path, mb)
            real_mb = os.path.getsize(path) / 1e6
            base = run_child("json", path)
            line = f"  {real_mb:5.1f} MB  json {base['seconds']:6.2f}s {base['rss_mb']:5d}MB"
            for w in workers:
                red = run_child("redact", path, w)
                line += (f" | redact(workers={w}) {red['seconds']:6.2f}s {red['rss_mb']:5d}MB"
                         f" = {red['seconds'] / base['seconds']:.2f}x time {red['rss_mb'] / base['rss_mb']:.2f}x mem"
                         f" {real_mb / red['seconds']:.1f} MB/s")
            print(line, flush=True)


def sample_text(size: int = 1_000_000) -> str:
    rng = random.Random(7)
    lines, total = [], 0
    templates = [
        "2023-11-14T22:{m:02d}:{s:02d}Z INFO request {r} from {ip} user {email} status 200 in {t} ms",
        "2023-11-14T22:{m:02d}:{s:02d}Z WARN login failed for {email}; call back on +1 415 555 {p:04d}",
        "2023-11-14T22:{m:02d}:{s:02d}Z DEBUG GET /api/v1/orders/{r}?page=2 took {t} ms cache=miss",
        "2023-11-14T22:{m:02d}:{s:02d}Z INFO card on file 4111 1111 1111 1111 for order {r}",
        "2023-11-14T22:{m:02d}:{s:02d}Z INFO the quick brown fox jumps over the lazy dog, nothing to see here",
    ]
    while total < size:
        line = rng.choice(templates).format(m=rng.randrange(60), s=rng.randrange(60), r=rng.randrange(10**6),
                                            ip=f"84.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                                            email=f"user{rng.randrange(10**5)}@corp{rng.randrange(99)}.com",
                                            t=rng.randrange(2000), p=rng.randrange(10000))
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)


def bench_presidio() -> None:
    import logging

    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    from diagkit.redact.engine import Redactor

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
    text = sample_text()
    redactor = Redactor(b"p" * 32, ner=False)
    start = time.perf_counter()
    redactor.redact_text(text)
    ours = time.perf_counter() - start
    ours_found = redactor.report.total

    class Blank(SpacyNlpEngine):
        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

    import tldextract

    # The naive engine would fetch the public-suffix list on first use; give it the bundled snapshot.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    nlp = Blank(models=[{"lang_code": "en", "model_name": "blank"}])
    nlp.load()
    registry = RecognizerRegistry()
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp)
    engine = AnalyzerEngine(registry=registry, nlp_engine=nlp)
    lines = text.split("\n")
    sample = lines[: max(1, len(lines) // 20)]  # 1/20 of the lines, extrapolated: the full MB takes minutes
    start = time.perf_counter()
    naive_found = sum(len([r for r in engine.analyze(line, language="en") if r.score >= 0.4
                           and r.entity_type in {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IP_ADDRESS"}])
                      for line in sample)
    naive = (time.perf_counter() - start) * len(lines) / len(sample)
    naive_found = naive_found * len(lines) // len(sample)
    print(f"1 MB text: diagkit {ours:.2f}s ({len(text) / 1e6 / ours:.2f} MB/s, {ours_found} values) | naive presidio "
          f"{naive:.1f}s extrapolated ({naive_found} email/phone/card/ip findings) = {naive / ours:.0f}x throughput")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.path.insert(0, ROOT)
        _child(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,25,50")
    parser.add_argument("--workers", default="1", help="comma list of process-pool sizes to compare, e.g. 1,2")
    parser.add_argument("--skip-presidio", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    bench_har([int(s) for s in args.sizes.split(",")], [int(w) for w in args.workers.split(",")])
    if not args.skip_presidio:
        bench_presidio()


if __name__ == "__main__":
    main()
