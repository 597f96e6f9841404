"""The API key never reaches the terminal either: an endpoint that echoes the key in every reply (the rules, the
mismatch, the refined prompt) is run through `phyt2v refine` (smoke preset's tiny models, the real openai client
on a loopback server); stdout and stderr carry ``***`` where the key was, never the key."""

import json
from pathlib import Path

import pytest
from llm_servers import StepServer
from test_cli import run

KEY = "sk-echoed-SECRET-4b1d9e"
KEY_ENV = "PHYT2V_TEST_ECHO_KEY"
PROMPT = "a rubber ball is dropped onto a wooden floor"


class EchoServer(StepServer):
    """Valid replies for every step, each with the key in it; the refined prompt starts with it (so the rounds
    table's prompt excerpt shows it)."""

    @staticmethod
    def answer(messages):
        text = " ".join(str(m.get("content", "")) for m in messages)
        if "Step 1." in text:
            return json.dumps({"objects": ["ball", f"key {KEY}"], "rules": [f"gravity, says {KEY}"],
                               "expected_outcome": f"it falls ({KEY})"})
        if "Step 2." in text:
            return json.dumps({"reasoning": f"compared with {KEY}", "mismatches": [f"the ball floats ({KEY})"]})
        return json.dumps({"principle": f"gravity {KEY}", "prompt": f"{KEY} a ball falls and bounces"})


def refine(srv, out, *extra):
    return run("refine", PROMPT, "--preset", "smoke", "--out", str(out), "--set", "llm.backend=openai",
               "--set", f"llm.base_url={srv.base_url}", "--set", "llm.model=echo", "--set", f"llm.api_key_env={KEY_ENV}",
               "--set", "llm.max_retries=0", *extra, env={KEY_ENV: KEY}, timeout=300)


@pytest.mark.slow
def test_a_key_echoed_by_the_llm_is_scrubbed_from_everything_the_cli_prints(tmp_path):
    with EchoServer() as srv:
        p = refine(srv, tmp_path)
        assert p.returncode == 0, p.stderr[-3000:]
        assert srv.count >= 3  # rules, mismatch, refine
        assert KEY not in p.stdout + p.stderr
        assert "*** a ball falls" in p.stdout  # the rounds table shows round 2's refined prompt, scrubbed
        j = refine(srv, tmp_path, "--fresh", "--json")  # a fresh run: the record printed is the one in memory
        assert j.returncode == 0, j.stderr[-3000:]
    assert KEY not in j.stdout + j.stderr
    data = json.loads(j.stdout)
    assert data["rounds"][1]["prompt"] == "*** a ball falls and bounces"
    assert data["rules"]["objects"] == ["ball", "key ***"]
    run_dir = Path(data["run_dir"])
    assert run_dir.is_absolute() and (run_dir / "run.json").is_file() and run_dir.parent == tmp_path.resolve()
    best = Path(data["best_video"])
    assert best.is_absolute() and best.is_file()
    assert best == run_dir / data["rounds"][data["best_round"] - 1]["video"]


def test_a_cut_or_a_wrapped_line_never_shows_part_of_a_key(monkeypatch):
    """Scrubbed before the layout: an excerpt cut inside the key, or a line folded inside it, would leave pieces
    that no scrub of the finished output could recognise."""
    import io

    from rich.console import Console

    from phyt2v.cli.options import ScrubbedConsole
    from phyt2v.cli.progress import excerpt

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    cut = excerpt("x" * 50 + KEY, 60)
    assert cut == "x" * 50 + "***" and "sk-echo" not in cut

    def shown(console_cls):
        buf = io.StringIO()
        console_cls(file=buf, width=12, color_system=None).print(f"{KEY} and more")
        return buf.getvalue()

    plain = shown(Console)  # a plain console folds the key over two lines: a scrub of its output misses it
    assert KEY not in plain and KEY in plain.replace("\n", "")
    text = shown(ScrubbedConsole)
    assert "SECRET" not in text and "4b1d9e" not in text and "***" in text


def test_the_cli_streams_scrub_every_write(monkeypatch):
    import io

    from phyt2v.cli.options import ScrubbedStream

    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    buf = io.StringIO()
    s = ScrubbedStream(buf)
    assert s.write(f"echo {KEY}\n") == len(f"echo {KEY}\n")
    s.writelines([f"{KEY}\n", "plain\n"])
    assert buf.getvalue() == "echo ***\n***\nplain\n" and s.getvalue() == buf.getvalue()
