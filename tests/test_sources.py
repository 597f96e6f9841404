"""Prompt-source loaders: the real benchmark files, user files, malformed rows, offline fetches."""

import hashlib
import http.server
import json
import shutil
import socket
import threading
from collections import Counter

import pytest

from phyt2v.batch import sources
from phyt2v.batch.sources import BENCHMARKS, PromptItem, Source, load_source
from phyt2v.errors import InputError


def _bench(shared_dir, name):
    return shared_dir / "benchmarks" / {
        "videophy": "videophy/videophy_test_prompts.csv",
        "videophy2": "videophy2/videophy2_test.csv",
        "phygenbench": "phygenbench/prompts.json",
    }[name]


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def _error(**kw):
    with pytest.raises(InputError) as info:
        load_source(**kw)
    return str(info.value)


# --- the real benchmark files -------------------------------------------------------------------

def test_videophy_file(shared_dir):
    path = _bench(shared_dir, "videophy")
    src = load_source("videophy", from_file=path)
    assert isinstance(src, Source) and src.name == src.kind == "videophy" and src.path == path
    assert len(src.items) == 344 and src.skipped == []
    assert Counter(i.meta["states_of_matter"] for i in src.items) == {
        "solid_solid": 143, "solid_fluid": 146, "fluid_fluid": 55}
    assert {i.meta["complexity"] for i in src.items} <= {0, 1}
    assert all(type(i.meta["complexity"]) is int for i in src.items)
    first = src.items[0]
    assert isinstance(first, PromptItem)
    assert (first.index, first.line, first.prompt) == (0, 2, "A blender spins, mixing squeezed juice within it.")
    assert first.id == "0000-" + hashlib.sha1(first.prompt.encode()).hexdigest()[:6]
    assert set(first.meta) == {"states_of_matter", "complexity"}
    assert src.digest == hashlib.sha256(path.read_bytes()).hexdigest()
    assert src.options == {"column": "caption", "caption": None}


def test_videophy2_caption_choice(shared_dir):
    path = _bench(shared_dir, "videophy2")
    short = load_source("videophy2", from_file=path)
    long = load_source("videophy2", from_file=path, caption="upsampled")
    alias = load_source("videophy2", from_file=path, caption="upsampled_caption")
    assert len(short.items) == len(long.items) == 590
    assert [i.prompt for i in alias.items] == [i.prompt for i in long.items]
    assert short.options == {"column": "caption", "caption": "caption"}
    assert long.options == {"column": "upsampled_caption", "caption": "upsampled"}
    for s, u in zip(short.items, long.items):
        assert s.meta["upsampled_caption"].split() == u.prompt.split()
        assert u.meta["caption"].split() == s.prompt.split()
        assert s.line == u.line and s.id != u.id
    assert short.items[0].prompt.startswith("A yo-yo is tossed against a brick wall")
    assert short.items[-1].line > 590  # quoted multi-line rows: lines are file lines, not row numbers
    assert len(long.items[0].prompt) > 3 * len(short.items[0].prompt)
    assert short.digest == long.digest


def test_phygenbench_file(shared_dir):
    path = _bench(shared_dir, "phygenbench")
    src = load_source("phygenbench", from_file=path)
    assert src.kind == "phygenbench" and len(src.items) == 160
    assert {i.meta["main_category"] for i in src.items} == {
        "Force", "Light", "Heat", "Physical Properties", "Chemical Properties"}
    assert set(src.items[0].meta) == {"physical_laws", "sub_category", "main_category"}
    lines = path.read_text(encoding="utf-8").split("\n")
    assert src.items[0].line == 2
    for item in src.items:  # each line number points at the '{' opening that item
        assert lines[item.line - 1].strip() == "{"
        assert item.prompt.split()[:3] == lines[item.line].split(":", 1)[1].strip(' "').split()[:3]


def test_ids_unique_and_stable(shared_dir):
    for name in BENCHMARKS:
        a = load_source(name, from_file=_bench(shared_dir, name))
        b = load_source(name.upper(), from_file=str(_bench(shared_dir, name)))
        assert [i.id for i in a.items] == [i.id for i in b.items]
        assert len({i.id for i in a.items}) == len(a.items)
        assert [i.index for i in a.items] == list(range(len(a.items)))


# --- fetching the named sets ---------------------------------------------------------------------

def _closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_phygenbench_download_cache_and_offline(shared_dir, tmp_path, monkeypatch):
    body = _bench(shared_dir, "phygenbench").read_bytes()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(sources, "PHYGENBENCH_URL", f"http://127.0.0.1:{server.server_address[1]}/p.json")
        src = load_source("phygenbench", cache_dir=tmp_path / "cache")
    finally:
        server.shutdown()
        server.server_close()
    assert len(src.items) == 160 and src.path.parent == tmp_path / "cache"
    assert src.path.read_bytes() == body and [p.name for p in src.path.parent.iterdir()] == [src.path.name]
    # the cached copy is used without the network
    monkeypatch.setattr(sources, "PHYGENBENCH_URL", f"http://127.0.0.1:{_closed_port()}/p.json")
    again = load_source("phygenbench", cache_dir=tmp_path / "cache")
    assert [i.id for i in again.items] == [i.id for i in src.items]
    # PHYT2V_CACHE is the default cache root; an empty one with no network fails in one line
    monkeypatch.setenv("PHYT2V_CACHE", str(tmp_path / "empty"))
    msg = _error(source="phygenbench")
    assert msg.startswith("could not fetch phygenbench from http://127.0.0.1:")
    assert "pass --from FILE with a local copy" in msg and "\n" not in msg
    assert not (tmp_path / "empty" / "benchmarks" / "phygenbench_prompts.json").exists()


def test_phygenbench_cached_copy_under_phyt2v_cache(shared_dir, tmp_path, monkeypatch):
    dest = tmp_path / "benchmarks" / "phygenbench_prompts.json"
    dest.parent.mkdir()
    shutil.copy(_bench(shared_dir, "phygenbench"), dest)
    monkeypatch.setenv("PHYT2V_CACHE", str(tmp_path))
    monkeypatch.setattr(sources, "PHYGENBENCH_URL", f"http://127.0.0.1:{_closed_port()}/p.json")
    assert load_source("phygenbench").path == dest


@pytest.mark.parametrize("name", ["videophy", "videophy2"])
def test_hf_sets_offline_failure(name, monkeypatch):
    import os

    assert os.environ.get("HF_HUB_OFFLINE") == "1"  # set by conftest before huggingface_hub loads
    repo = f"phyt2v-tests/{name}-not-cached"
    monkeypatch.setitem(sources.HF_SETS, name, (repo, "prompts.csv"))
    msg = _error(source=name)
    assert msg.startswith(f"could not fetch {name} from Hugging Face dataset {repo} (")
    assert msg.endswith("; pass --from FILE with a local copy") and "\n" not in msg


# --- user files ----------------------------------------------------------------------------------

def test_text_file(tmp_path):
    path = _write(tmp_path / "mine.txt", "# my prompts\n\n  a ball   rolls\tdown\r\n#skip\nice melts\n\n")
    src = load_source(str(path))
    assert (src.name, src.kind, src.path) == ("mine", "text", path)
    assert [(i.prompt, i.line, i.meta) for i in src.items] == [("a ball rolls down", 3, {}), ("ice melts", 5, {})]
    assert src.options == {"column": "prompt", "caption": None}


def test_csv_file_quoting_bom_and_column(tmp_path):
    text = ('id,caption,text\n'
            '1,"A ball, red and small, rolls","other, text"\n'
            '2,"A glass\nfalls and breaks",x\n'
            '3,Water boils,y\n')
    path = _write(tmp_path / "p.csv", text, encoding="utf-8-sig")
    src = load_source(path)
    assert src.kind == "csv" and src.options["column"] == "caption"  # first of prompt, caption, text
    assert [i.prompt for i in src.items] == ["A ball, red and small, rolls", "A glass falls and breaks", "Water boils"]
    assert [i.line for i in src.items] == [2, 3, 5]
    assert src.items[0].meta == {"id": "1", "text": "other, text"}
    other = load_source(path, column="text")
    assert [i.prompt for i in other.items] == ["other, text", "x", "y"]
    assert other.items[0].meta == {"id": "1", "caption": "A ball, red and small, rolls"}
    assert other.digest == src.digest and other.options["column"] == "text"


def test_jsonl_file(tmp_path):
    lines = [json.dumps({"prompt": " A  cup falls ", "tag": 1}), "", json.dumps({"prompt": "Smoke rises", "x": [1]})]
    src = load_source(_write(tmp_path / "p.jsonl", "\n".join(lines) + "\n"))
    assert src.kind == "jsonl"
    assert [(i.prompt, i.line, i.meta) for i in src.items] == [
        ("A cup falls", 1, {"tag": 1}), ("Smoke rises", 3, {"x": [1]})]


def test_duplicate_prompts_get_distinct_ids(tmp_path):
    src = load_source(_write(tmp_path / "d.txt", "same prompt\nsame  prompt\n"))
    assert src.items[0].prompt == src.items[1].prompt
    assert src.items[0].id[5:] == src.items[1].id[5:] and src.items[0].id != src.items[1].id


def test_per_video_table_is_deduplicated(tmp_path):
    text = ("video_url,caption,upsampled_caption,model_name,sa,pc,action,is_hard\n"
            "u1,Ball bounces,Long ball,m1,5,4,bounce,0\n"
            "u2,Ball bounces,Long ball,m2,3,2,bounce,1\n"
            "u3,Cup spills,Long cup,m1,4,4,spill,0\n")
    src = load_source("videophy2", from_file=_write(tmp_path / "videophy2_test.csv", text))
    assert [(i.prompt, i.line) for i in src.items] == [("Ball bounces", 2), ("Cup spills", 4)]
    assert src.items[0].meta == {"upsampled_caption": "Long ball", "action": "bounce", "is_hard": "1"}
    vp = ("caption,video_url,states_of_matter,complexity,majority_sa\n"
          "A,u1,solid_solid,1,1\nA,u2,solid_solid,1,0\nB,u3,fluid_fluid,0,1\n")
    src = load_source("videophy", from_file=_write(tmp_path / "videophy_test_public.csv", vp))
    assert [(i.prompt, i.meta) for i in src.items] == [
        ("A", {"states_of_matter": "solid_solid", "complexity": 1}),
        ("B", {"states_of_matter": "fluid_fluid", "complexity": 0})]


# --- malformed rows ------------------------------------------------------------------------------

def test_csv_malformed_rows(tmp_path):
    text = ("caption,states_of_matter,complexity\n"
            "Good one,solid_solid,1\n"
            ",solid_fluid,0\n"
            "Unquoted, comma,fluid_fluid,1\n"
            "Bad complexity,solid_solid,high\n"
            '"  ",solid_solid,1\n'
            "Good two,fluid_fluid,0\n")
    path = _write(tmp_path / "videophy_test_prompts.csv", text)
    assert _error(source="videophy", from_file=path) == (
        "videophy_test_prompts.csv:3: empty caption; fix the row or pass --skip-bad")
    src = load_source("videophy", from_file=path, skip_bad=True)
    assert [(i.prompt, i.line, i.index) for i in src.items] == [("Good one", 2, 0), ("Good two", 7, 1)]
    assert src.skipped == [
        "videophy_test_prompts.csv:3: empty caption",
        "videophy_test_prompts.csv:4: 4 fields but the header has 3 (quote text that contains commas)",
        "videophy_test_prompts.csv:5: complexity 'high' is not an integer",
        "videophy_test_prompts.csv:6: empty caption",
    ]


def test_csv_missing_value_and_header(tmp_path):
    path = _write(tmp_path / "u.csv", "id,prompt\n1,ok\n2\n")
    assert _error(source=str(path)) == "u.csv:3: missing prompt; fix the row or pass --skip-bad"
    assert load_source(path, skip_bad=True).skipped == ["u.csv:3: missing prompt"]
    bad = _write(tmp_path / "h.csv", "id,description\n1,a ball\n")
    msg = _error(source=str(bad))
    assert msg.startswith("h.csv:1: no prompt column (prompt, caption, text)")
    assert "'id', 'description'" in msg and "--column" in msg
    assert [i.prompt for i in load_source(bad, column="description").items] == ["a ball"]
    msg = _error(source=str(bad), column="nope")
    assert msg.startswith("h.csv:1: no 'nope' column") and "--column" in msg
    wrong = _write(tmp_path / "videophy.csv", "prompt,x\na,b\n")
    assert "no 'caption' column" in _error(source="videophy", from_file=wrong, skip_bad=True)


def test_jsonl_malformed_rows(tmp_path):
    lines = ['{"prompt": "fine"}', "{not json", "[1, 2]", '{"other": 1}', '{"prompt": "   "}',
             '{"prompt": 7}', '{"prompt": "also fine"}']
    path = _write(tmp_path / "b.jsonl", "\n".join(lines))
    assert _error(source=str(path)).startswith("b.jsonl:2: not valid JSON (")
    src = load_source(path, skip_bad=True)
    assert [(i.prompt, i.line) for i in src.items] == [("fine", 1), ("also fine", 7)]
    assert src.skipped[0].startswith("b.jsonl:2: not valid JSON (")
    assert src.skipped[1:] == ["b.jsonl:3: not a JSON object (got list)", "b.jsonl:4: missing prompt",
                               "b.jsonl:5: empty prompt", "b.jsonl:6: prompt is not text (got int)"]
    path = _write(tmp_path / "c.jsonl", '{"id": 1}\n[3]\n{"id": 2, "prompt": "x"}\n')
    assert _error(source=str(path)) == "c.jsonl:1: missing prompt; fix the row or pass --skip-bad"
    nofield = _write(tmp_path / "n.jsonl", '\n{"id": 1}\n')
    msg = _error(source=str(nofield), skip_bad=True)
    assert msg.startswith("n.jsonl:2: no prompt field") and "'id'" in msg and "--column" in msg


def test_phygenbench_malformed(tmp_path):
    items = [{"caption": "ok", "main_category": "Force"}, {"physical_laws": "x", "main_category": "Heat"},
             "just text", {"caption": "", "main_category": "Light"}]
    path = _write(tmp_path / "prompts.json", json.dumps(items, indent=4))
    assert _error(source="phygenbench", from_file=path) == (
        "prompts.json:6: missing caption; fix the row or pass --skip-bad")
    src = load_source("phygenbench", from_file=path, skip_bad=True)
    assert [(i.prompt, i.line, i.meta) for i in src.items] == [("ok", 2, {"main_category": "Force"})]
    assert src.skipped == ["prompts.json:6: missing caption",
                           "prompts.json:10: expected an object with a 'caption', got str",
                           "prompts.json:11: empty caption"]
    obj = _write(tmp_path / "o.json", '{"caption": "x"}')
    assert _error(source="phygenbench", from_file=obj).startswith("o.json: expected a JSON list")
    broken = _write(tmp_path / "broken.json", '[\n {"caption": "a"},\n {"caption": }\n]')
    assert _error(source="phygenbench", from_file=broken, skip_bad=True).startswith("broken.json:3: not valid JSON")


def test_unreadable_and_empty_files(tmp_path):
    assert "cannot read" in _error(source="videophy", from_file=tmp_path / "missing.csv")
    assert "cannot read" in _error(source="phygenbench", from_file=tmp_path)  # a folder
    latin = tmp_path / "latin.txt"
    latin.write_bytes("first\ncaf\xe9 au lait\n".encode("latin-1"))
    assert _error(source=str(latin)) == "latin.txt:2: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    assert "no prompts found" in _error(source=str(_write(tmp_path / "c.txt", "# only a comment\n\n")))
    assert "no prompts found" in _error(source=str(_write(tmp_path / "h.csv", "prompt,x\n")))
    assert "no header row" in _error(source=str(_write(tmp_path / "e.csv", "")))
    msg = _error(source=str(_write(tmp_path / "all.csv", "prompt,x\n,1\n \n")), skip_bad=True)
    assert msg.startswith("all.csv: no prompts found (1 malformed rows skipped)")
    assert "no prompts found" in _error(source="phygenbench", from_file=_write(tmp_path / "z.json", "[]"))


# --- naming the source ---------------------------------------------------------------------------

def test_unknown_source_did_you_mean(tmp_path):
    msg = _error(source="phygenbnch")
    assert msg.startswith("unknown prompt source 'phygenbnch' (did you mean 'phygenbench'?)")
    assert ".txt, .csv or .jsonl" in msg
    assert "did you mean 'videophy'" in _error(source="videopy")
    assert "did you mean" not in _error(source=str(tmp_path / "nothing-here.txt"))
    msg = _error(source=str(_write(tmp_path / "notes.md", "a prompt\n")))
    assert msg.startswith("notes.md: unsupported file type '.md'") and ".jsonl" in msg
    msg = _error(source="mine", from_file=tmp_path / "x.csv")
    assert "not one" in msg and "videophy2" in msg


def test_caption_option_checks(tmp_path):
    path = _write(tmp_path / "p.txt", "a\n")
    assert "only to videophy2" in _error(source=str(path), caption="upsampled")
    assert "only to videophy2" in _error(source="videophy", from_file=path, caption="upsampled")
    assert "unknown caption choice 'long'" in _error(source="videophy2", from_file=path, caption="long")
    plain = _write(tmp_path / "v2.csv", "caption\nA ball\n")
    assert "no 'upsampled_caption' column" in _error(source="videophy2", from_file=plain, caption="upsampled")
    assert load_source("videophy2", from_file=plain).items[0].meta == {}


def test_parquet_copy(tmp_path):
    path = tmp_path / "videophy2_test.parquet"
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        path.write_bytes(b"PAR1 not really parquet PAR1")
        msg = _error(source="videophy2", from_file=path)
        assert "pip install pyarrow" in msg and "--from FILE" in msg
        return
    pq.write_table(pa.table({"caption": ["A", "B"], "upsampled_caption": ["Long A", "Long B"]}), path)
    src = load_source("videophy2", from_file=path, caption="upsampled")
    assert [(i.prompt, i.meta, i.line) for i in src.items] == [("Long A", {"caption": "A"}, None),
                                                               ("Long B", {"caption": "B"}, None)]
