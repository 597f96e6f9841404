"""Files phyt2v writes get the mode a normal file gets (0666 less the umask), not mkstemp's 0600: a run folder, a
batch's results and a report are readable by whoever the user's umask lets read them."""

import os
import stat

import pytest
from doubles import FakeCaptioner, FakeGenerator, FakeScorer, physics_llm

from phyt2v.batch import Batch
from phyt2v.batch.sources import load_source
from phyt2v.config import load_config
from phyt2v.loop import Refiner
from phyt2v.store.files import append_jsonl, atomic_write_bytes, atomic_write_text


@pytest.fixture(params=[0o002, 0o027])
def umask(request):
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_write_helpers_give_a_normal_files_mode(tmp_path, umask):
    want = 0o666 & ~umask
    atomic_write_text(tmp_path / "a.json", "{}")
    atomic_write_bytes(tmp_path / "b.bin", b"x")
    append_jsonl(tmp_path / "c.jsonl", {"id": 1})
    append_jsonl(tmp_path / "d.jsonl", {"id": 1}, lock=True)  # results.jsonl: appended under the writers lock
    assert {p.name: oct(mode(p)) for p in tmp_path.iterdir()} == {n: oct(want) for n in
                                                                  ("a.json", "b.bin", "c.jsonl", "d.jsonl")}
    atomic_write_text(tmp_path / "a.json", "{} ")  # replaced: a new file, the same mode
    assert mode(tmp_path / "a.json") == want
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin", "c.jsonl", "d.jsonl"]  # no temp left


class ConstScorer(FakeScorer):
    def __init__(self):
        super().__init__([])

    def score(self, video, prompt):
        from phyt2v.roles import Scores

        return Scores(sa=0.5, pc=0.5)


def test_a_batch_folder_and_its_report_have_normal_modes(tmp_path, umask):
    from phyt2v.views.report import write_report

    src = tmp_path / "p.txt"
    src.write_text("a ball rolls down a ramp\n")
    cfg = load_config(loop={"max_rounds": 1})
    ref = Refiner(cfg, llm=physics_llm(), generator=FakeGenerator(), captioner=FakeCaptioner(), scorer=ConstScorer())
    b = Batch(load_source(str(src)), cfg, out=tmp_path / "out", refiner=ref, concurrency=1)
    b.run()
    report = write_report(b.dir)
    files = [p for p in b.dir.rglob("*") if p.is_file() and p.name != ".lock" and p.suffix != ".mp4"]
    names = {p.name for p in files}
    assert {"run.json", "config.json", "calls.jsonl", "results.jsonl", "batch.json", "prompts.jsonl"} <= names
    assert report.name == "report.html" and report in files
    assert {p.relative_to(b.dir).as_posix(): oct(mode(p)) for p in files} == \
        {p.relative_to(b.dir).as_posix(): oct(0o666 & ~umask) for p in files}
