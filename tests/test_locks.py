"""Run-folder locks (a second process gets RunLocked naming the holder; a SIGKILLed holder frees it),
the one JSONL append helper (torn tail cut, lines from several processes never interleave) and
timings that survive a SIGKILL. Fast: test doubles, plus small real subprocesses."""

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from doubles import FakeCaptioner, FakeGenerator, FakeScorer, physics_llm

from phyt2v import Refiner, load_config
from phyt2v.errors import Interrupted, RunLocked
from phyt2v.store.files import append_jsonl
from phyt2v.store.locks import FolderLock
from phyt2v.store.record import RunRecord

PROMPT = "a rubber ball is dropped onto a wooden floor"
ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}


def make(tmp_path, scores, rounds=2, gen=None):
    cfg = load_config(loop={"max_rounds": rounds, "min_rounds": rounds}, out=str(tmp_path))
    parts = dict(llm=physics_llm(), generator=gen or FakeGenerator(), captioner=FakeCaptioner(),
                 scorer=FakeScorer(scores))
    return Refiner(cfg, **parts), parts


def hold_lock(folder: Path) -> subprocess.Popen:
    code = ("import sys, time; from pathlib import Path; from phyt2v.store.locks import FolderLock; "
            "FolderLock(Path(sys.argv[1])).acquire(); print('locked', flush=True); time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(folder)], stdout=subprocess.PIPE, text=True, env=ENV)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_process_on_a_run_folder_is_refused_until_the_holder_dies(tmp_path):
    ref, parts = make(tmp_path, [(0.2, 0.2), (0.3, 0.3)])
    holder = hold_lock(ref.run_dir(PROMPT))
    try:
        with pytest.raises(RunLocked, match=rf"in use by pid {holder.pid} on .*wait for that process") as ei:
            ref.refine(PROMPT)
        assert ei.value.exit_code == 2 and "\n" not in str(ei.value)
        assert parts["generator"].calls == [] and not (ref.run_dir(PROMPT) / "run.json").exists()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    # SIGKILL freed the flock; the stale lock file left behind does not matter
    assert FolderLock(ref.run_dir(PROMPT)).path.is_file()
    assert ref.refine(PROMPT).record.status == "finished" and len(parts["generator"].calls) == 2


def test_fresh_moves_the_earlier_run_away_and_keeps_the_folder_locked(tmp_path):
    ref, parts = make(tmp_path, [(0.2, 0.2), (0.3, 0.3), (0.4, 0.4), (0.5, 0.5)])
    first = ref.refine(PROMPT)
    again = ref.refine(PROMPT, fresh=True)
    (backup,) = tmp_path.glob("*.old-*")
    assert again.run_dir == first.run_dir and len(parts["generator"].calls) == 4  # computed anew
    assert RunRecord.model_validate_json((backup / "run.json").read_text()).rounds[1].scores.sa == 0.3
    assert not (backup / FolderLock.NAME).exists() and (again.run_dir / FolderLock.NAME).is_file()


def test_lock_is_reentrant_in_one_process_and_released_after(tmp_path):
    lock = FolderLock(tmp_path / "run")
    with lock:
        assert FolderLock(tmp_path / "run").try_acquire()  # the batch holds it, refine takes it again
        FolderLock(tmp_path / "run").release()
        probe = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from phyt2v.store.locks "
                                "import FolderLock; print(FolderLock(Path(sys.argv[1])).try_acquire())",
                                str(tmp_path / "run")], capture_output=True, text=True, env=ENV)
        assert probe.stdout.strip() == "False"
    probe = subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from phyt2v.store.locks "
                            "import FolderLock; print(FolderLock(Path(sys.argv[1])).try_acquire())",
                            str(tmp_path / "run")], capture_output=True, text=True, env=ENV)
    assert probe.stdout.strip() == "True"


def test_append_cuts_a_torn_tail_longer_than_one_read_chunk(tmp_path):
    p = tmp_path / "r.jsonl"
    p.write_text('{"id": "a"}\n' + '{"id": "b", "pad": "' + "x" * 200_000)  # torn line spans 4 chunks
    append_jsonl(p, {"id": "c"})
    assert p.read_text() == '{"id": "a"}\n{"id": "c"}\n'
    p.write_text('{"id": "only torn')
    append_jsonl(p, {"id": "d"})
    assert p.read_text() == '{"id": "d"}\n'


def test_appends_from_two_processes_never_interleave(tmp_path):
    p = tmp_path / "results.jsonl"
    code = textwrap.dedent("""
        import sys
        from pathlib import Path
        from phyt2v.store.files import append_jsonl
        for i in range(150):
            append_jsonl(Path(sys.argv[1]), {"who": sys.argv[2], "i": i, "pad": "x" * 20000}, lock=True)
    """)
    procs = [subprocess.Popen([sys.executable, "-c", code, str(p), w], env=ENV) for w in "ab"]
    assert [q.wait(120) for q in procs] == [0, 0]
    lines = [json.loads(x) for x in p.read_text().splitlines()]
    assert sorted((x["who"], x["i"]) for x in lines) == sorted((w, i) for w in "ab" for i in range(150))


def test_torn_calls_line_is_cut_when_the_run_resumes(tmp_path):
    gen = FakeGenerator(on_generate=lambda p: os.kill(os.getpid(), signal.SIGINT))
    ref, _ = make(tmp_path, [(0.2, 0.2)], gen=gen)
    with pytest.raises(Interrupted):
        ref.refine(PROMPT)
    calls = next(tmp_path.glob("*/calls.jsonl"))
    with open(calls, "a") as f:
        f.write('{"role": "generator", "step": "gener')  # a kill in the middle of a write
    ref2, _ = make(tmp_path, [(0.2, 0.2), (0.3, 0.3)])
    assert ref2.refine(PROMPT).record.status == "finished"
    entries = [json.loads(x) for x in calls.read_text().splitlines()]  # every line parses
    assert [e["step"] for e in entries if e["role"] == "generator"] == ["generate", "generate"]


@pytest.mark.slow
def test_model_call_time_survives_sigkill(tmp_path):
    script = textwrap.dedent(f"""
        import os, signal, sys
        from doubles import FakeCaptioner, FakeGenerator, FakeScorer, physics_llm
        from phyt2v import Refiner, load_config
        n = []
        def die(prompt):
            n.append(prompt)
            if len(n) == 2:
                os.kill(os.getpid(), signal.SIGKILL)
        cfg = load_config(loop={{"max_rounds": 3, "min_rounds": 3}}, out=sys.argv[1])
        Refiner(cfg, llm=physics_llm(), generator=FakeGenerator(on_generate=die), captioner=FakeCaptioner(),
                scorer=FakeScorer([(0.2, 0.2)] * 3)).refine({PROMPT!r})
    """)
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path)], env=ENV, capture_output=True, text=True)
    assert r.returncode == -signal.SIGKILL, r.stderr[-2000:]
    rec = RunRecord.model_validate_json(next(tmp_path.glob("*/run.json")).read_text())
    calls = [json.loads(x) for x in next(tmp_path.glob("*/calls.jsonl")).read_text().splitlines()]
    assert rec.status == "running" and rec.rounds[0].done[-1] == "refine"  # killed in round 2's generate
    saved = sum(c["duration_s"] for c in calls)  # the killed call never returned, so it is not counted
    assert len(calls) == 6 and saved > 0
    assert rec.timings["model_calls_s"] == pytest.approx(saved, abs=2e-3)


def test_lock_is_held_per_thread_too(tmp_path):
    """Re-entrant within the owning thread only: another thread of the same process is refused (False from
    try_acquire, RunLocked from acquire) until the owner releases its last hold."""
    import threading

    held, release, seen = threading.Event(), threading.Event(), {}

    def owner():
        with FolderLock(tmp_path / "run"):
            seen["reentrant"] = FolderLock(tmp_path / "run").try_acquire()
            FolderLock(tmp_path / "run").release()
            held.set()
            release.wait(10)

    t = threading.Thread(target=owner)
    t.start()
    assert held.wait(10)
    try:
        assert seen["reentrant"] is True
        assert FolderLock(tmp_path / "run").try_acquire() is False
        with pytest.raises(RunLocked, match="another thread of this process"):
            FolderLock(tmp_path / "run").acquire()
    finally:
        release.set()
        t.join(10)
    assert FolderLock(tmp_path / "run").try_acquire() is True  # freed by the owner: this thread gets it
    FolderLock(tmp_path / "run").release()


def test_two_threads_refining_one_prompt_one_is_refused(tmp_path):
    """Two threads of one process refine the same prompt into one folder (the Python API): the second
    gets RunLocked while the first runs; one run.json, written by one run."""
    import threading

    started, go = threading.Event(), threading.Event()

    def slow(prompt):
        started.set()
        go.wait(10)

    ref, parts = make(tmp_path, [(0.2, 0.2), (0.3, 0.3)], gen=FakeGenerator(on_generate=slow))
    first: dict = {}
    t = threading.Thread(target=lambda: first.setdefault("res", ref.refine(PROMPT)))
    t.start()
    try:
        assert started.wait(10)
        other, _ = make(tmp_path, [(0.5, 0.5)])
        with pytest.raises(RunLocked):
            other.refine(PROMPT)
    finally:
        go.set()
        t.join(30)
    assert first["res"].record.status == "finished" and len(parts["generator"].calls) == 2
