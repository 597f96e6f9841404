"""The one table reader (phyt2v/tables.py), the score prompts file on top of it, and the cache folder."""

import json

import pytest

from phyt2v import resources
from phyt2v.batch.prompt_files import read_prompts_file
from phyt2v.batch.tables import BadRow, read_rows, read_table
from phyt2v.errors import InputError


def write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def test_csv_bom_quotes_and_start_lines(tmp_path):
    p = write(tmp_path / "t.csv", 'caption,sa\n"a, b",1\n"multi\nline",0\n\nlast,1\n', encoding="utf-8-sig")
    rows = read_rows(p, where="at")
    assert [r["caption"] for r in rows] == ["a, b", "multi\nline", "last"]
    assert [r["at"] for r in rows] == ["t.csv:2", "t.csv:3", "t.csv:6"]
    assert list(rows[0]) == ["caption", "sa", "at"]  # the BOM is not part of the first column's name


def test_json_list_lines_and_jsonl(tmp_path):
    p = write(tmp_path / "r.json", json.dumps([{"a": 1}, {"a": 2}], indent=2))
    assert [r["w"] for r in read_rows(p, where="w")] == ["r.json:2", "r.json:5"]
    t = read_table(write(tmp_path / "r.jsonl", '{"a": 1}\n\n{oops\n[1]\n'))
    assert t.records[0] == (1, {"a": 1})
    assert [(n, type(r)) for n, r in t.records[1:]] == [(3, BadRow), (4, BadRow)]
    with pytest.raises(InputError, match=r"^r.jsonl:3: not valid JSON"):
        read_rows(tmp_path / "r.jsonl")
    with pytest.raises(InputError, match=r"^l.json:2: expected an object, got int"):
        read_rows(write(tmp_path / "l.json", '[\n3\n]'))


@pytest.mark.parametrize("name, content, msg", [
    ("clip.csv", b"\x00\x00\x00\x18ftypmp42\xff\xfe", "clip.csv: not a text file"),
    ("latin.csv", "a,b\nc,caf\xe9\n".encode("latin-1"), r"latin.csv:2: not UTF-8 text \(byte 0xe9\)"),
    ("empty.jsonl", b"\xef\xbb\xbf\n  \n", "is empty"),
    ("head.csv", b"a,b\n", "has no data rows"),
])
def test_bad_files_are_one_input_error(tmp_path, name, content, msg):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(InputError, match=msg):
        read_rows(tmp_path / name)


def test_unreadable_paths(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_rows(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="it is a folder"):
        read_rows(tmp_path)


def test_score_prompts_file(tmp_path):
    p = write(tmp_path / "p.csv", "videopath,caption,rule\nsub/a.mp4,A ball,\n/abs/b.mp4,B ball,R\n")
    assert read_prompts_file(p) == [{"prompt": "A ball", "video": str(tmp_path / "sub/a.mp4"), "rule": None},
                                    {"prompt": "B ball", "video": "/abs/b.mp4", "rule": "R"}]
    lines = read_prompts_file(write(tmp_path / "p.txt", "one\n\ntwo\n"))
    assert [r["prompt"] for r in lines] == ["one", "two"]
    with pytest.raises(InputError, match=r"q.jsonl:2: no prompt; give a 'prompt' or 'caption'"):
        read_prompts_file(write(tmp_path / "q.jsonl", '{"prompt": "x"}\n{"video": "v.mp4"}\n'))


def test_cache_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("PHYT2V_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resources.cache_dir("tiny") == tmp_path / "xdg" / "phyt2v" / "tiny"
    monkeypatch.setenv("PHYT2V_CACHE", str(tmp_path / "mine"))
    assert resources.cache_dir() == tmp_path / "mine"
    from phyt2v.tiny import build as tiny

    assert tiny.cache_root() == tmp_path / "mine" / "tiny"
