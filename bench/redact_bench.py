"""Redaction benchmark: figures, never a test. Guard rails (issue 14): a 50 MB Chrome HAR within 4x of
json.load+json.dump in time and 3x in peak memory (without NER); 1 MB of support log at least 50x faster
than a naive presidio AnalyzerEngine; at least 10x faster than `har-capture sanitize` when installed.

    python bench/redact_bench.py [--sizes 10,50] [--repeat 3] [--samples typical,dense,jsonl]
        [--naive-fraction 10] [--skip-har] [--skip-text] [--skip-peer]

1. HARs (generated: cookies, JWTs, emails, form posts, JSON/HTML/base64 bodies): diagkit redact vs
   Python's json.load + json.dump of the same file, each the median of --repeat fresh processes; peak
   memory is the process's ru_maxrss. CPU seconds are printed beside wall-clock seconds: on a shared
   machine they move less.
2. 1 MB text samples: diagkit vs a naive presidio AnalyzerEngine (all predefined recognizers, blank
   spaCy pipeline, line by line; on every Nth line, scaled).
3. The peer sanitizer har-capture (PyPI), when installed: its time on the same HAR, and both tools'
   leak counts on the adversarial corpus (tests/redact_corpus.py, searched by tests/leakcheck.py).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import resource
import shutil
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


def jsonl_text(size: int = 1_000_000) -> str:
    """A structured log: one JSON object a line (what most services ship), a user on each."""
    rng = random.Random(12)
    lines, total = [], 0
    while total < size:
        line = json.dumps({"ts": f"2023-11-14T22:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z", "level": "INFO",
                           "msg": "request done", "user": f"user{rng.randrange(10**5)}@corp{rng.randrange(99)}.com",
                           "client_ip": f"84.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                           "path": f"/api/v1/orders/{rng.randrange(10**6)}", "status": 200, "ms": rng.randrange(2000),
                           "trace": f"{rng.getrandbits(64):016x}"})
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)


SAMPLES = {"dense": sample_text, "typical": typical_text, "jsonl": jsonl_text}


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


def peer() -> str | None:
    """The har-capture command, on PATH or beside this interpreter (an unactivated virtualenv)."""
    beside = os.path.join(os.path.dirname(sys.executable), "har-capture")
    return shutil.which("har-capture") or (beside if os.path.exists(beside) else None)


def run_peer(src: str, out: str) -> tuple[float, float]:
    """har-capture's wall-clock and CPU seconds (user + system) on one file."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([peer() or "har-capture", "sanitize", src, "--patterns", "base", "--output", out, "--max-size", "0"],
                   capture_output=True, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - start, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def _child(kind: str, path: str) -> None:
    """Runs inside a fresh interpreter; prints seconds, CPU seconds and peak RSS in MB."""
    start, cpu_start = time.perf_counter(), time.process_time()
    if kind == "json":
        with open(path, encoding="utf-8-sig") as handle:
            obj = json.load(handle)
        with open(os.devnull, "w") as out:
            json.dump(obj, out, indent=1, ensure_ascii=False)
    elif kind == "text":
        from diagkit.redact.engine import Redactor

        text = SAMPLES[path]()
        # imports, as the naive engine is built before its clock starts: a card and an IBAN load presidio's
        # recognizers (the checksums), which alone take about two seconds to import
        Redactor(b"w" * 32, ner=False).redact_text("warm-up +1 212 555 0100 bob@example.com 4111 1111 1111 1111 "
                                                   "GB82 WEST 1234 5698 7654 32 NHS number 943 476 5919")
        start, cpu_start = time.perf_counter(), time.process_time()
        Redactor(b"p" * 32, ner=False, locations=False).redact_bytes(text.encode(), name="x.log")
    else:
        from diagkit.redact.engine import Redactor

        result = Redactor(b"b" * 32, ner=False, locations=False).redact_file(path, fmt="har")
        with open(os.devnull, "wb") as out:
            result.write_to(out)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    workers = resource.getrusage(resource.RUSAGE_CHILDREN)  # worker processes, reaped by now
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(json.dumps({"seconds": round(elapsed, 3), "cpu": round(cpu + workers.ru_utime + workers.ru_stime, 3),
                      "rss_mb": rss_mb}))


def _pss_kb(pid: int) -> int:
    """Proportional set size of a process and its descendants, in kB (Linux): a page shared by a
    forked worker and its parent is counted once, split between them, as ru_maxrss cannot."""
    total = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as handle:
            total += sum(int(line.split()[1]) for line in handle if line.startswith("Pss:"))
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                total += sum(_pss_kb(int(child)) for child in handle.read().split())
    except (OSError, ValueError):
        pass  # the process ended between two reads
    return total


def _run_once(kind: str, arg: str, sample: bool) -> dict:
    proc = subprocess.Popen([sys.executable, __file__, "--child", kind, arg], stdout=subprocess.PIPE, text=True,
                            cwd=ROOT)
    peak = 0
    while sample and proc.poll() is None:
        peak = max(peak, _pss_kb(proc.pid))
        time.sleep(0.1)
    out, _ = proc.communicate()
    if proc.returncode:
        raise SystemExit(f"bench child {kind} failed with status {proc.returncode}")
    return {**json.loads(out.strip().splitlines()[-1]), "pss_mb": peak // 1024}


def _median(values: list[float]) -> float:
    return sorted(values)[len(values) // 2]


def paired(arg: str, repeat: int) -> tuple[dict, dict, float, float]:
    """json and redact runs in turn (json, redact, json, redact ...), each a fresh process: the medians of
    each, and the medians of the redact/json ratios of wall and CPU time taken pair by pair, which a shared
    machine changing speed during the bench moves less than a ratio of two separate medians. Then one more
    run of each gives the peak of its process tree's summed PSS, read every 100 ms (reading it costs CPU,
    so the timed runs are not sampled)."""
    pairs = [(_run_once("json", arg, False), _run_once("redact", arg, False)) for _ in range(repeat)]
    base = {k: _median([b[k] for b, _ in pairs]) for k in ("seconds", "cpu", "rss_mb")}
    red = {k: _median([r[k] for _, r in pairs]) for k in ("seconds", "cpu", "rss_mb")}
    base["pss_mb"] = _run_once("json", arg, True)["pss_mb"]
    red["pss_mb"] = _run_once("redact", arg, True)["pss_mb"]
    return (base, red, _median([r["seconds"] / b["seconds"] for b, r in pairs]),
            _median([r["cpu"] / b["cpu"] for b, r in pairs]))


def run_child(kind: str, arg: str, repeat: int = 1) -> dict:
    """The median run of `repeat` fresh processes (a shared machine varies from run to run)."""
    runs = sorted((_run_once(kind, arg, False) for _ in range(repeat)), key=lambda r: r["seconds"])
    return runs[len(runs) // 2]


def bench_har(sizes: list[int], repeat: int, with_peer: bool) -> None:
    print(f"HAR redaction vs json.load+json.dump (fresh process each, {repeat} pairs run in turn: medians, and the "
          f"median of the pairs' ratios)")
    with tempfile.TemporaryDirectory() as tmp:
        for mb in sizes:
            path = os.path.join(tmp, f"bench-{mb}.har")
            make_har(path, mb)
            base, red, wall_ratio, cpu_ratio = paired(path, repeat)
            print(f"  {os.path.getsize(path) / 1e6:5.1f} MB  json.load+dump {base['seconds']:6.2f}s {base['rss_mb']:5d}MB"
                  f"  diagkit {red['seconds']:6.2f}s {red['rss_mb']:5d}MB  time x{wall_ratio:.2f}"
                  f"  memory x{red['rss_mb'] / base['rss_mb']:.2f}", flush=True)
            print(f"         CPU seconds (workers included): json.load+dump {base['cpu']:6.2f}s  diagkit {red['cpu']:6.2f}s  "
                  f"x{cpu_ratio:.2f}", flush=True)
            print(f"         peak PSS of the process and its workers: json.load+dump {base['pss_mb']:5d}MB  diagkit "
                  f"{red['pss_mb']:5d}MB  x{red['pss_mb'] / max(base['pss_mb'], 1):.2f}", flush=True)
            if with_peer and peer():
                theirs, theirs_cpu = run_peer(path, os.path.join(tmp, "peer.har"))
                print(f"         har-capture sanitize {theirs:6.2f}s  (diagkit x{theirs / red['seconds']:.1f} faster); "
                      f"CPU {theirs_cpu:6.2f}s (x{theirs_cpu / red['cpu']:.1f})", flush=True)


def bench_text(sample: str, fraction: int, repeat: int) -> None:
    text = SAMPLES[sample]()
    ours = run_child("text", sample, repeat)
    engine = _naive_engine()
    lines = text.split("\n")[::fraction]
    start, cpu_start = time.perf_counter(), time.process_time()
    for line in lines:
        engine.analyze(line, language="en", score_threshold=0.4)
    naive, naive_cpu = (time.perf_counter() - start) * fraction, (time.process_time() - cpu_start) * fraction
    print(f"1 MB text, {sample}: naive presidio {naive:7.2f}s (on 1/{fraction} of the lines, scaled)  "
          f"diagkit {ours['seconds']:6.2f}s  -> x{naive / ours['seconds']:.0f};  CPU seconds {naive_cpu:7.2f}s vs "
          f"{ours['cpu']:6.2f}s -> x{naive_cpu / ours['cpu']:.0f}", flush=True)


def corpus_leaks(with_peer: bool) -> None:
    """Leaks and losses on the adversarial corpus: diagkit, and har-capture when installed."""
    from diagkit.redact.engine import Redactor
    from tests import leakcheck, redact_corpus

    tools = ["diagkit"] + (["har-capture"] if with_peer and peer() else [])
    cases = redact_corpus.corpus()
    for tool in tools:
        leaked = lost = planted = kept = 0
        with tempfile.TemporaryDirectory() as tmp:
            for case in cases:
                if tool == "diagkit":
                    out = Redactor(ner=None).redact_bytes(case.data, name=case.name).data.decode()
                elif case.name.endswith(".har"):
                    src = os.path.join(tmp, case.name)
                    with open(src, "wb") as handle:
                        handle.write(case.data)
                    target = os.path.join(tmp, "peer-" + case.name)
                    run_peer(src, target)
                    with open(target if os.path.exists(target) else src, encoding="utf-8") as handle:
                        out = handle.read()
                else:
                    continue
                leaked += len(leakcheck.leaks(out, case.secrets))
                lost += len(leakcheck.lost(out, case.keep))
                planted, kept = planted + len(case.secrets), kept + len(case.keep)
        print(f"corpus: {tool:12s} leaks {leaked}/{planted}  lost {lost}/{kept}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        sys.path.insert(0, ROOT)
        _child(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,50")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-process runs per figure; the median is shown")
    parser.add_argument("--samples", default="typical,dense,jsonl")
    parser.add_argument("--naive-fraction", type=int, default=10)
    parser.add_argument("--skip-har", action="store_true")
    parser.add_argument("--skip-text", action="store_true")
    parser.add_argument("--skip-peer", action="store_true")
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    if not args.skip_har:
        bench_har([int(s) for s in args.sizes.split(",")], args.repeat, not args.skip_peer)
    if not args.skip_text:
        for name in args.samples.split(","):
            bench_text(name, args.naive_fraction, args.repeat)
    corpus_leaks(not args.skip_peer)


if __name__ == "__main__":
    main()
