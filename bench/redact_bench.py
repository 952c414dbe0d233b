"""Redaction benchmark: prints time and peak memory against a json.load + json.dump round trip, and
throughput against a naive presidio AnalyzerEngine.

    /tmp/venv/bin/python bench/redact_bench.py [--sizes 10,25,50] [--workers 1,2] [--repeat 3]
        [--samples dense,typical] [--naive-fraction N] [--skip-har] [--skip-presidio]

1. HARs of 10/25/50 MB (generated, with cookies, JWTs, emails, form posts, JSON/HTML/base64 bodies):
   redaction with each pool size (and with --report locations) vs Python's own json.load + json.dump of
   the same file. Each figure is the median of --repeat fresh processes; peak memory is the process's
   ru_maxrss plus the private memory of its forked workers.
2. 1 MB text samples (dense: personal data on every line; typical: an application and access log):
   diagkit (fresh processes, cold caches, median) vs a naive presidio AnalyzerEngine (all predefined
   recognizers, blank spaCy pipeline, line by line), with a per-type table of what each found.
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
        from diagkit.redact import engine, parallel
        from diagkit.redact.engine import Redactor

        engine.PARALLEL_MIN_BYTES = 0  # the bench compares pool sizes at every file size
        # as `diagkit redact` runs it: locations are kept only when --report asks for them ("report" kind)
        redactor = Redactor(b"b" * 32, ner=False, workers=int(workers), locations=kind == "report")
        result = redactor.redact_file(path, fmt="har")
        with open(os.devnull, "wb") as out:  # ... and as it writes: streamed to the output file
            result.write_to(out)
    elapsed = time.perf_counter() - start
    rss_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if kind != "json" and parallel.LAST_RUN.workers:
        # Forked workers share the parent's pages until they write to them: ru_maxrss would count those
        # pages once per process. What a worker adds is its private memory (smaps_rollup), at its largest.
        rss_kb += sum(parallel.LAST_RUN.worker_private_kb)
    print(json.dumps({"seconds": round(elapsed, 3), "rss_mb": rss_kb // 1024}))


def run_child(kind: str, path: str, workers: int = 1, repeat: int = 1) -> dict:
    """The median run of `repeat` fresh processes (a shared VM varies by a third from run to run)."""
    runs = []
    for _ in range(repeat):
        out = subprocess.run([sys.executable, __file__, "--child", kind, path, str(workers)], check=True,
                             capture_output=True, text=True, cwd=ROOT)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    runs.sort(key=lambda r: r["seconds"])
    return runs[len(runs) // 2]


def bench_har(sizes: list[int], workers: list[int], repeat: int) -> None:
    print(f"HAR redaction vs json.load+json.dump (fresh process each, median of {repeat}; time s / peak memory MB)")
    with tempfile.TemporaryDirectory() as tmp:
        for mb in sizes:
            path = os.path.join(tmp, f"bench-{mb}.har")
            make_har(path, mb)
            real_mb = os.path.getsize(path) / 1e6
            base = run_child("json", path, repeat=repeat)
            print(f"  {real_mb:5.1f} MB  json.load+dump {base['seconds']:6.2f}s {base['rss_mb']:5d}MB", flush=True)
            runs = [("redact", w) for w in workers] + [("report", max(workers))]
            for kind, w in runs:
                red = run_child(kind, path, w, repeat)
                label = f"workers={w}" + (" --report" if kind == "report" else "")
                print(f"           {label:20s} {red['seconds']:6.2f}s {red['rss_mb']:5d}MB  = "
                      f"{red['seconds'] / base['seconds']:.2f}x time {red['rss_mb'] / base['rss_mb']:.2f}x memory "
                      f"({real_mb / red['seconds']:.1f} MB/s)", flush=True)


# presidio entity -> diagkit report rule, for the types diagkit targets in free text
TARGETED = {"EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone_number", "CREDIT_CARD": "credit_card",
            "US_SSN": "us_ssn", "UK_NINO": "uk_nino", "IBAN_CODE": "iban_code", "IP_ADDRESS": "ip_address",
            "US_ITIN": "us_itin", "UK_NHS": "uk_nhs"}
NOISY = {"US_DRIVER_LICENSE", "US_BANK_NUMBER", "MEDICAL_LICENSE", "US_PASSPORT"}
_IBANS = ["GB82 WEST 1234 5698 7654 32", "DE89 3704 0044 0532 0130 00", "FR14 2004 1010 0505 0001 3M02 606",
          "NL91ABNA0417164300"]
_CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004", "3400 000000 00009", "6011000000000004"]
_PHONES = ["+1 415 555 {p:04d}", "(415) 555-{p:04d}", "+44 20 7946 {p:04d}", "415.555.{p:04d}", "+49 30 9018{p:04d}",
           "020 7946 {p:04d}"]


def _ssn(rng: random.Random) -> str:
    return f"{rng.randrange(100, 665):03d}-{rng.randrange(1, 99):02d}-{rng.randrange(1, 9999):04d}"


def _nino(rng: random.Random) -> str:
    return rng.choice(["AB", "CE", "JP", "SW"]) + f"{rng.randrange(10**6):06d}" + rng.choice("ABCD")


def sample_text(size: int = 1_000_000) -> str:
    """Support-log-like lines: personal data of every targeted type, and the numbers that are not (versions,
    ids, epoch times, durations, hex trace ids), so both precision and recall are exercised."""
    rng = random.Random(7)
    lines, total = [], 0
    templates = [
        "2023-11-14T22:{m:02d}:{s:02d}Z INFO request {r} from {ip} user {email} status 200 in {t} ms",
        "2023-11-14T22:{m:02d}:{s:02d}Z WARN login failed for {email}; call back on {phone}",
        "2023-11-14T22:{m:02d}:{s:02d}Z DEBUG GET /api/v1/orders/{r}?page=2 took {t} ms cache=miss trace={trace}",
        "2023-11-14T22:{m:02d}:{s:02d}Z INFO card on file {card} for order {r}",
        "2023-11-14T22:{m:02d}:{s:02d}Z INFO the quick brown fox jumps over the lazy dog, nothing to see here",
        "2023-11-14T22:{m:02d}:{s:02d}Z INFO client Chrome/120.0.{r4}.{t} build 2.14.3.{r4} epoch {epoch}",
        "2023-11-14T22:{m:02d}:{s:02d}Z INFO payout to IBAN {iban} ssn {ssn} NI number {nino}",
        "2023-11-14T22:{m:02d}:{s:02d}Z DEBUG peer {ip6} connected, session {r} window {t}",
    ]
    while total < size:
        line = rng.choice(templates).format(
            m=rng.randrange(60), s=rng.randrange(60), r=rng.randrange(10**6), r4=rng.randrange(1000, 9999),
            ip=f"84.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            ip6=f"2001:db8:{rng.randrange(65536):x}::{rng.randrange(1, 65536):x}",
            email=f"user{rng.randrange(10**5)}@corp{rng.randrange(99)}.com", t=rng.randrange(2000),
            phone=rng.choice(_PHONES).format(p=rng.randrange(100, 10000)), card=rng.choice(_CARDS),
            iban=rng.choice(_IBANS), ssn=_ssn(rng), nino=_nino(rng), trace=f"{rng.getrandbits(64):016x}",
            epoch=1_700_000_000 + rng.randrange(10**6))
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)


def typical_text(size: int = 1_000_000) -> str:
    """What a customer's application and access log looks like: mostly request lines with paths, ids,
    durations and stack frames; client IPs on access lines; emails, phones and a card now and then."""
    rng = random.Random(11)
    ts = "2023-11-14T22:{m:02d}:{s:02d}.{ms:03d}Z"
    templates = [  # (weight, template)
        (30, ts + " INFO  [req={trace}] GET /api/v1/orders/{r} 200 in {t} ms tenant=acme-{k} region=eu-west-1"),
        (12, ts + " DEBUG [req={trace}] cache hit key=orders:{r} ttl={t}s"),
        (6, ts + " WARN  [req={trace}] slow query on orders ({t} ms) plan=seq_scan rows={r}"),
        (4, ts + " ERROR [req={trace}] upstream billing-service returned 503 after {t} ms (attempt {k}/3)"),
        (8, "    at com.acme.billing.Client.call(Client.java:{t})"),
        (20, '{ip} - - [14/Nov/2023:22:{m:02d}:{s:02d} +0000] "GET /static/app.{hex8}.js HTTP/1.1" 200 {r} "-" '
             '"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0.6099.109 Safari/537.36"'),
        (5, ts + " INFO  [req={trace}] user {email} signed in via SSO (idp=okta, session {r})"),
        (2, ts + " INFO  [req={trace}] support note: customer asked to be called back on {phone}"),
        (1, ts + " ERROR [req={trace}] payment declined: card {card} expired, order {r}"),
        (12, ts + " INFO  [req={trace}] job export-{r} finished: {k} files, {t} ms, version 2.14.{k}"),
    ]
    weights = [w for w, _ in templates]
    lines, total = [], 0
    while total < size:
        line = rng.choices([t for _, t in templates], weights)[0].format(
            m=rng.randrange(60), s=rng.randrange(60), ms=rng.randrange(1000), r=rng.randrange(10**6),
            k=rng.randrange(1, 40), t=rng.randrange(2000), trace=f"{rng.getrandbits(64):016x}",
            hex8=f"{rng.getrandbits(32):08x}", ip=f"84.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
            email=f"user{rng.randrange(10**5)}@corp{rng.randrange(99)}.com",
            phone=rng.choice(_PHONES).format(p=rng.randrange(100, 10000)), card=rng.choice(_CARDS))
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)


SAMPLES = {"dense": sample_text, "typical": typical_text}


def _naive_engine():  # noqa: ANN202
    """What a naive user writes: AnalyzerEngine with every predefined recognizer, blank spaCy (offline)."""
    import logging

    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)

    class Blank(SpacyNlpEngine):
        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

    # The email recognizer would fetch the public-suffix list on first use; give it the bundled snapshot.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    nlp = Blank(models=[{"lang_code": "en", "model_name": "blank"}])
    nlp.load()
    registry = RecognizerRegistry()
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp)
    return AnalyzerEngine(registry=registry, nlp_engine=nlp)


WARM_UP = ("warm-up: +1 212 555 0100 4111 1111 1111 1111 078-05-1120 AB123456C GB82 WEST 1234 5698 7654 32 "
           "912-70-1234 NHS 943 476 5919")


def _text_child(sample: str, workers: int) -> None:
    """Runs inside a fresh interpreter (cold caches, as a real run): diagkit's time for the sample."""
    from diagkit.redact import engine, phones
    from diagkit.redact.engine import Redactor

    text = SAMPLES[sample]()
    start = time.perf_counter()
    Redactor(b"w" * 32, ner=False).redact_text(WARM_UP)  # setup: imports, recognizers,
    phones.prepare()  # the phone metadata of every default region compiled (the naive engine's once a process too)
    if workers > 1:  # and the pool's modules imported: a few lines through the pool
        engine.TEXT_PARALLEL_MIN_BYTES, minimum = 0, engine.TEXT_PARALLEL_MIN_BYTES
        Redactor(b"w" * 32, ner=False, workers=workers).redact_text("\n".join([WARM_UP] * 50))
        engine.TEXT_PARALLEL_MIN_BYTES = minimum
    setup = time.perf_counter() - start
    redactor = Redactor(b"p" * 32, ner=False, workers=workers, locations=False)  # as `diagkit redact` runs
    start = time.perf_counter()
    redactor.redact_text(text)
    print(json.dumps({"seconds": round(time.perf_counter() - start, 3), "setup": round(setup, 3)}))


def bench_presidio(sample_name: str, fraction: int, workers: list[int], repeat: int) -> None:
    from collections import Counter

    from diagkit.redact.engine import Redactor
    from diagkit.redact.text import SCORE_THRESHOLD

    text = SAMPLES[sample_name]()
    lines = text.split("\n")
    # Setup (imports, model and recognizer construction) is excluded for both engines, and printed.
    timed = {w: run_child("text", sample_name, w, repeat) for w in workers}
    ours_setup = timed[workers[0]]["setup"]
    redactor = Redactor(b"p" * 32, ner=False, workers=1)
    Redactor(b"w" * 32, ner=False).redact_text(WARM_UP)
    redacted = redactor.redact_text(text)

    start = time.perf_counter()
    engine = _naive_engine()
    naive_setup = time.perf_counter() - start
    sample = lines[::fraction]
    out_lines = redacted.split("\n")[::fraction]
    # Counts compare the very same lines: diagkit again, fresh, over the naive engine's sample.
    counter = Redactor(b"p" * 32, ner=False)
    counter.redact_text("\n".join(sample))
    ours_by: Counter[str] = Counter()
    for rule, n in counter.report.by_rule.items():
        ours_by[rule.removeprefix("gate:")] += n
    start = time.perf_counter()
    naive_results = [engine.analyze(line, language="en", score_threshold=SCORE_THRESHOLD) for line in sample]
    naive = (time.perf_counter() - start) * fraction
    naive_by: Counter[str] = Counter()
    missed: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for line, out, results in zip(sample, out_lines, naive_results, strict=True):
        for r in results:
            naive_by[r.entity_type] += 1
            value = line[r.start:r.end]
            if r.entity_type in TARGETED and value in out:
                missed[r.entity_type] += 1
                examples.setdefault(r.entity_type, []).append(
                    (value, line[max(0, r.start - 1):r.start], line[r.end:r.end + 1]))
    scale = f" (naive on 1/{fraction} of the lines: time x{fraction}, counts on those lines)" if fraction > 1 else ""
    print(f"\n1 MB text, {sample_name} sample ({len(text) / 1e6:.2f} MB, {len(lines)} lines){scale}")
    print(f"  naive presidio       {naive:7.2f}s  {len(text) / 1e6 / naive:6.3f} MB/s  (setup {naive_setup:.1f}s, "
          "excluded)")
    for w, run in timed.items():
        ours = run["seconds"]
        print(f"  diagkit workers={w}    {ours:7.2f}s  {len(text) / 1e6 / ours:6.2f} MB/s  (fresh process, median of "
              f"{repeat}; setup {ours_setup:.1f}s, excluded)  throughput ratio: {naive / ours:.0f}x")
    print(f"  per type (score >= {SCORE_THRESHOLD}; 'redacted' = naive's value is gone from diagkit's output, under "
          "whatever type):")
    print(f"    {'type':18s} {'naive':>6s} {'diagkit':>8s} {'redacted':>9s} {'kept: false positive':>21s} "
          f"{'kept: other':>12s}")
    ok = True
    for entity, rule in TARGETED.items():
        values = examples.get(entity, [])
        false_pos = [v[0] for v in values if _false_positive(entity, *v)]
        other = [v[0] for v in values if not _false_positive(entity, *v)]
        ok = ok and not other
        print(f"    {entity:18s} {naive_by[entity]:6d} {ours_by[rule]:8d} {naive_by[entity] - len(values):9d} "
              f"{len(false_pos):21d} {len(other):12d}")
        if false_pos:
            print(f"      false positives kept, e.g. {sorted(set(false_pos))[:6]}: {EXPLAIN.get(entity, '')}")
        if other:
            print(f"      NOT redacted by diagkit: {len(other)} values (not shown: they are personal data)")
    others = {e: n for e, n in naive_by.items() if e not in TARGETED}
    print(f"  not compared: noisy recognizers off in diagkit {sorted(e for e in others if e in NOISY)}; "
          f"not personal data here {sorted(e for e in others if e not in NOISY)} ({others})")
    print("  diagkit redacts every targeted value naive presidio finds, apart from the false positives above"
          if ok else "  diagkit MISSES values naive presidio finds")


def _false_positive(entity: str, value: str, before: str = "", after: str = "") -> bool:
    """Naive finds that are not personal data: versions, epoch times, short ids, digits of a file name."""
    import re

    if entity == "UK_NHS":  # a bare 10-digit epoch time that happens to pass the NHS checksum
        return bool(re.fullmatch(r"1[5-7]\d{8}", value))
    if entity != "PHONE_NUMBER":
        return False
    if before == "/" or (before == "." and after in ("/", ".")):  # /orders/498742, app.09224934.js: ids in paths
        return True
    digits = re.sub(r"\D", "", value)
    return bool(re.fullmatch(r"\d+(?:\.\d+){2,}", value) and any(len(g) == 1 for g in value.split(".")) or
                re.fullmatch(r"1[5-7]\d{8}", value) or len(digits) < 7 or re.fullmatch(r"\d+\.\d+\.\d+\.\d+", value))


EXPLAIN = {
    "PHONE_NUMBER": "epoch times, order ids, dotted version strings, ids in URL paths and file names; phonenumbers "
                    "accepts them, diagkit wants a "
                    "separator, a '+' or a phone word before a bare digit run, and no version shape",
    "IP_ADDRESS": "loopback/unspecified addresses are kept on purpose",
    "UK_NHS": "epoch times that pass the NHS checksum; diagkit takes an NHS number only after an NHS context word",
}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.path.insert(0, ROOT)
        if sys.argv[2] == "text":
            _text_child(sys.argv[3], int(sys.argv[4]))
        else:
            _child(sys.argv[2], sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,25,50")
    parser.add_argument("--workers", default="1,2", help="comma list of process-pool sizes to compare, e.g. 1,2")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs per figure; the median is shown")
    parser.add_argument("--skip-presidio", action="store_true")
    parser.add_argument("--samples", default="dense,typical",
                        help="text samples: dense (personal data on every line) and typical (a support log)")
    parser.add_argument("--skip-har", action="store_true")
    parser.add_argument("--naive-fraction", type=int, default=1,
                        help="run the naive engine on every Nth line only and scale (default 1: the whole MB)")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    if not args.skip_har:
        bench_har([int(s) for s in args.sizes.split(",")], [int(w) for w in args.workers.split(",")], args.repeat)
    if not args.skip_presidio:
        for name in args.samples.split(","):
            bench_presidio(name, args.naive_fraction, [int(w) for w in args.workers.split(",")], args.repeat)


if __name__ == "__main__":
    main()
