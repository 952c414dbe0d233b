"""The probe plugin system: a third-party probe installed beside diagkit shows up and runs like a built-in."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.plugin_install import installed

TOY = textwrap.dedent('''
    """A toy third-party probe: checks that a word is lower case."""
    import threading

    from diagkit.probe import Option, Probe

    RELEASE = threading.Event()  # "hang" waits on it: a test releases the thread once it has its answer


    def run(ctx, report, target, shout=False, repeat=1):
        report.facts["length"] = len(target) * repeat
        if target == "crash":
            raise RuntimeError("boom with password=hunter2 in it")
        if target == "hang":
            RELEASE.wait(60)
        if target.islower() and not shout:
            report.add("toy.word.lowercase", f"{target!r} is lower case")
        else:
            report.add("toy.word.shouting")


    probe = Probe(name="toy", summary="Toy third-party probe.", target="WORD", run=run,
                  options=(Option("shout", "Pretend to shout.", is_flag=True),
                           Option("repeat", "Repeat count.", type=int, default=1)),
                  default_timeout=0.2, max_calls=1, example="diagkit probe toy hello",
                  findings={
                      "toy.word.lowercase": {"severity": "pass", "title": "The word is lower case",
                                             "meaning": "", "remediation": ""},
                      "toy.word.shouting": {"severity": "warn", "title": "The word shouts",
                                            "meaning": "Upper case letters.", "remediation": "Speak softly."},
                  })
''')


@pytest.fixture
def toy_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A toy distribution with a working probe and one whose import fails."""
    modules = {"toy_probe": TOY, "toy_broken": "raise ImportError('missing dependency xyz')\n"}
    with installed(tmp_path, monkeypatch, "toy-probe", modules,
                   {"toy": "toy_probe:probe", "broken": "toy_broken:probe"}) as folder:
        yield folder


def test_third_party_probe_is_listed(invoke, toy_dist):
    result = invoke("probe", "--list", "--json")
    rows = {row["name"]: row for row in json.loads(result.stdout)["probes"]}
    assert rows["toy"]["loaded"] and rows["toy"]["distribution"] == "toy-probe 1.0"
    assert rows["tls"]["loaded"]  # built-ins come through the same entry-point group
    assert rows["broken"]["loaded"] is False and "missing dependency xyz" in rows["broken"]["error"]


def test_third_party_probe_options_become_cli_options(invoke, toy_dist):
    result = invoke("probe", "toy", "--help")
    assert result.exit_code == 0
    assert "--shout" in result.stdout and "--repeat" in result.stdout and "diagkit probe toy hello" in result.stdout


def test_third_party_probe_runs(invoke, toy_dist):
    ok = invoke("probe", "toy", "hello", "--repeat", "3", "--json")
    assert ok.exit_code == 0
    data = json.loads(ok.stdout)
    assert data["probe"] == "toy" and data["facts"] == {"length": 15}
    assert [f["id"] for f in data["findings"]] == ["toy.word.lowercase"]
    assert invoke("probe", "toy", "hello", "--shout").exit_code == 4


def test_a_probe_that_raises_is_an_error_finding_without_the_secret(invoke, toy_dist):
    result = invoke("probe", "toy", "crash", "--json")
    assert result.exit_code == 5
    finding = json.loads(result.stdout)["findings"][-1]
    assert finding["id"] == "probe.run.crashed" and finding["severity"] == "error"
    assert "hunter2" not in result.stdout + result.stderr
    assert "probe.run.crashed" in result.stderr  # a check that could not run is said on stderr too


def test_a_probe_that_hangs_is_stopped_by_the_runner(invoke, toy_dist):
    import threading

    import toy_probe

    try:
        result = invoke("probe", "toy", "hang", "--json")
        # The runner gave up while the probe's thread was still inside run(): it is released only now.
        hung = [t for t in threading.enumerate() if t.name == "probe-toy"]
        assert len(hung) == 1 and hung[0].is_alive()
    finally:
        toy_probe.RELEASE.set()
    hung[0].join(10)
    assert not hung[0].is_alive()  # nothing left running behind the next test
    assert result.exit_code == 5
    finding = json.loads(result.stdout)["findings"][-1]
    # The deadline is the probe's own timeout (0.2 s, one call) plus the runner's 2 s grace.
    assert finding["id"] == "probe.run.timeout" and finding["evidence"] == {"deadline_s": 2}


def test_third_party_findings_join_the_catalogue(invoke, toy_dist):
    rows = {f["id"]: f for f in json.loads(invoke("findings", "list", "--json").stdout)["findings"]}
    assert rows["toy.word.shouting"]["remediation"] == "Speak softly."
    assert "tls.connect.failed" in rows


def test_broken_plugin_is_a_clean_error(invoke, toy_dist):
    result = invoke("probe", "broken", "x")
    assert result.exit_code == 1
    assert "missing dependency xyz" in result.stderr and "Traceback" not in result.stderr


def test_third_party_probe_in_a_real_process(toy_dist):
    env = dict(os.environ, PYTHONPATH=str(toy_dist) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    out = subprocess.run([sys.executable, "-m", "diagkit", "probe", "toy", "Hello", "--json"],
                         capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 4, out.stderr
    assert json.loads(out.stdout)["findings"][0]["severity"] == "warn"
