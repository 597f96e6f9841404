"""``phyt2v report``: the HTML page for a run and for a batch folder, checked as HTML and in headless Chromium."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from phyt2v.errors import InputError
from phyt2v.schemas import Mismatch, Refinement, Rules
from phyt2v.store.record import RoundRecord, RoundScores, RunRecord, StepError
from phyt2v.views import metrics, report

EVIL = 'a <script>alert("x")</script> ball & "quoted" falls'
CHROMIUM = os.environ.get("PHYT2V_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("PHYT2V_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
SHOTS = Path(os.environ.get("PHYT2V_TEST_SCREENSHOTS", tempfile.gettempdir())) / "phyt2v-report-shots"


# ---------------------------------------------------------------- inputs

def make_run(run_dir: Path, videos: list[Path], prompt: str = EVIL, *, fail: bool = False) -> RunRecord:
    """A run folder as the loop writes it: run.json + round-<k>/video.mp4 (real H.264 sample videos)."""
    changed = prompt.replace("falls", "drops quickly")
    prompts = [prompt, changed, changed + " onto grass"]
    rounds = []
    for k, p in enumerate(prompts[: 2 if fail else 3], 1):
        (run_dir / f"round-{k}").mkdir(parents=True)
        shutil.copy(videos[(k - 1) % len(videos)], run_dir / f"round-{k}" / "video.mp4")
        scored = not (fail and k == 2)
        rounds.append(RoundRecord(
            index=k, prompt=p, prompt_tokens=12 + k, video=f"round-{k}/video.mp4",
            caption=f"caption {k}: a <b>ball</b> rolls" if scored else None,
            scores=RoundScores(sa=(0.5, 0.7, 0.6)[k - 1], pc=(0.35, 0.5, 0.45)[k - 1], score=(0.42, 0.59, 0.52)[k - 1],
                               extra={"sa_logit_diff": 0.1 * k}) if scored else None,
            mismatch=Mismatch(reasoning="the ball <floats>", mismatches=["no bounce", 'said "falls"'])
            if scored else None,
            refinement=Refinement(principle="gravity pulls down", prompt=prompts[k]) if scored and k < 3 else None,
            refined_prompt=prompts[k] if scored and k < 3 else None,
            timings={"generate_s": 1.5, "caption_s": 0.25}))
    rec = RunRecord(run_id=run_dir.name, prompt=prompt, config_hash="abc123def0",
                    status="failed" if fail else "finished", rules=Rules(objects=["ball"], rules=["gravity"],
                                                                          expected_outcome="it falls"),
                    rounds=rounds, best_round=1 if fail else 2, stop_reason=None if fail else "max_rounds",
                    error=StepError(step="score", kind="VideoError", message="video <broken> & unreadable",
                                    raw="raw <output>") if fail else None,
                    models={"generator": "cogvideox:tiny", "scorer": "videophy2"})
    (run_dir / "run.json").write_text(rec.model_dump_json(indent=2), encoding="utf-8")
    return rec


def make_batch(batch_dir: Path, videos: list[Path]) -> list[dict]:
    """A batch folder per batchdir.py: 3 prompts finished/finished/failed, a 4th not run yet."""
    items = [{"id": f"000{i}-aa{i}", "index": i, "prompt": p, "meta": {"states_of_matter": s, "complexity": i % 2}}
             for i, (p, s) in enumerate([(EVIL, "solid_solid"), ("water pours into a glass", "fluid_fluid"),
                                         ("a bug is squished", "solid_solid"), ("never run", "gas")])]
    batch_dir.mkdir(parents=True)
    (batch_dir / "batch.json").write_text(json.dumps({
        "schema_version": 1, "source": {"name": "videophy-test", "kind": "builtin", "prompts": 4},
        "config_hash": "feedbeef12", "config": {}, "selected": 4, "created": "2026-01-01T00:00:00+00:00",
        "updated": "2026-01-01T00:00:00+00:00"}))
    (batch_dir / "prompts.jsonl").write_text("".join(json.dumps(it) + "\n" for it in items))
    lines = []
    for it in items[:3]:
        run_id = f"{it['id']}-run"
        rec = make_run(batch_dir / "runs" / run_id, videos[it["index"]:] + videos, it["prompt"], fail=it["index"] == 2)
        status = "failed" if rec.error else "finished"
        lines.append({**it, "schema_version": 1, "status": status, "run_id": run_id, "run_dir": f"runs/{run_id}",
                      "best_round": rec.best_round, "stop_reason": rec.stop_reason,
                      "rounds": [{"index": r.index, "prompt": r.prompt, "sa": r.scores and r.scores.sa,
                                  "pc": r.scores and r.scores.pc, "score": r.scores and r.scores.score, "extra": {},
                                  "video": f"runs/{run_id}/{r.video}", "caption": r.caption} for r in rec.rounds],
                      "error": rec.error and {"step": "score", "kind": "VideoError", "message": rec.error.message},
                      "timings": {"wall_s": 3.0}, "config_hash": "feedbeef12", "shard": [0, 1],
                      "finished": f"2026-01-01T00:00:0{it['index']}+00:00"})
    (batch_dir / "results.jsonl").write_text("".join(json.dumps(ln) + "\n" for ln in lines))
    return lines


# A summary as another metrics kind may shape it: a key the report has no label for (rule_ok), groups.
OTHER_SUMMARY = {
    "kind": "videophy2", "n_finished": 2, "n_failed": 1,
    "rounds": {w: {"kind": "videophy2",
                   "overall": {"n": 2, "sa": v, "pc": v / 2, "joint": v / 4, "sa_mean": 3.5, "pc_mean": 3.0,
                               "rule_ok": 0.75},
                   "groups": {"states_of_matter": {"solid_solid": {"n": 1, "sa": v, "pc": v, "joint": v}}}}
               for w, v in (("first", 0.5), ("best", 0.8))},
    "gain": {"overall": {"sa": 0.3, "pc": 0.15, "joint": 0.075},
             "groups": {"states_of_matter": {"solid_solid": {"sa": 0.3, "pc": 0.3, "joint": 0.3}}}},
}


@pytest.fixture
def run_dir(tmp_path, sample_videos):
    d = tmp_path / "runs" / "a-ball-falls-0001"
    make_run(d, sample_videos)
    return d


@pytest.fixture
def batch_dir(tmp_path, sample_videos):
    d = tmp_path / "out" / "videophy-test-feedbeef12"
    make_batch(d, sample_videos)
    return d


# ---------------------------------------------------------------- HTML structure

class Page(HTMLParser):
    def __init__(self, path: Path):
        super().__init__()
        self.tags, self.ids, self.hrefs, self.videos, self.scripts = [], set(), [], [], []
        self._in_script = False
        self.feed(path.read_text(encoding="utf-8"))

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.add(a["id"])
        if a.get("href"):
            self.hrefs.append(a["href"])
        if tag == "video":
            self.videos.append(a)
        self._in_script = tag == "script"

    def handle_data(self, data):
        if self._in_script:
            self.scripts.append(data)

    def handle_endtag(self, tag):
        self._in_script = False


def check_structure(html_path: Path) -> Page:
    pg = Page(html_path)
    text = html_path.read_text(encoding="utf-8")
    assert "<script>alert" not in text and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in text
    assert pg.tags.count("script") == 1 and all("alert" not in s for s in pg.scripts)
    assert "http://" not in text and "https://" not in text  # nothing fetched from the network
    assert "svg" in pg.tags and "circle" in pg.tags and 'class="best-mark"' in text
    assert pg.videos
    for v in pg.videos:
        assert {"controls", "muted", "loop"} <= set(v) and not v["src"].startswith(("/", "file:"))
        assert (html_path.parent / unquote(v["src"])).is_file(), v["src"]
    for h in pg.hrefs:
        if h.startswith("#"):
            assert h[1:] in pg.ids, h
        else:
            assert h.startswith("data:"), h
    return pg


def test_word_diff_marks_changed_words():
    d = report.word_diff("a ball falls down", "a red ball drops down")
    assert d == "a <ins>red</ins> ball <del>falls</del> <ins>drops</ins> down"
    assert report.word_diff(None, "<x>") == "&lt;x&gt;"
    assert report.word_diff("a <b>", "a <i>") == "a <del>&lt;b&gt;</del> <ins>&lt;i&gt;</ins>"


def test_run_page(run_dir):
    page = report.write_report(run_dir)
    assert page == run_dir / "report.html"
    pg = check_structure(page)
    text = page.read_text(encoding="utf-8")
    assert len(pg.videos) == 3 and pg.videos[0]["src"] == "round-1/video.mp4" and pg.tags.count("polyline") == 3
    assert "<ins>drops quickly</ins>" in text and "<del>falls</del>" in text and "<ins>onto grass</ins>" in text
    assert {"run-r1", "run-r2", "run-r3"} <= pg.ids and 'class="card best" id="run-r2"' in text
    assert "caption 1: a &lt;b&gt;ball&lt;/b&gt; rolls" in text and "said &#34;falls&#34;" in text
    assert "max_rounds" in text and "cogvideox:tiny" in text and "generate 1.50 s" in text


def test_run_page_failed_round_and_out_elsewhere(tmp_path, sample_videos):
    d = tmp_path / "runs" / "failed-run"
    make_run(d, sample_videos, fail=True)
    out = tmp_path / "elsewhere" / "deep" / "page.html"  # a missing folder is created
    page = report.write_report(d / "run.json", out)  # run.json itself is accepted too
    assert page == out
    pg = check_structure(page)
    text = page.read_text(encoding="utf-8")
    assert pg.videos[0]["src"] == "../../runs/failed-run/round-1/video.mp4"
    assert 'class="error"' in text and "video &lt;broken&gt; &amp; unreadable" in text and "raw &lt;output&gt;" in text
    assert "not scored" in text and 'class="status-failed"' in text


def test_batch_page(batch_dir):
    page = report.write_report(batch_dir)
    pg = check_structure(page)
    text = page.read_text(encoding="utf-8")
    assert len(pg.videos) == 3 + 3 + 2 and all(v["src"].startswith("runs/") for v in pg.videos)
    assert "videophy-test" in text and "feedbeef12" in text and "2 finished, 1 failed, 4 total" in text
    for pid in ("0000-aa0", "0001-aa1", "0002-aa2"):
        assert f'href="#p-{pid}"' in text and f'id="p-{pid}"' in text
    assert "never run" in text and "not run" in text and 'href="#p-0003-aa3"' not in text
    assert "video &lt;broken&gt; &amp; unreadable" in text and "0.500 → 0.700" in text  # SA first → best
    # the real metrics (videophy: SA/PC = 1 at >= 0.5): round 1 SA 0.5 PC 0.35, best round SA 0.7 PC 0.5
    summary = metrics.summarize_batch(batch_dir)
    assert summary["kind"] == "videophy" and "phyt2v.views.metrics unavailable" not in text
    assert summary["rounds"]["first"]["overall"]["pc"] == 0.0 and summary["rounds"]["best"]["overall"]["pc"] == 1.0
    assert ("<tr><th>overall</th><td class=\"num\">2</td>"
            + "".join(f'<td class="num">{a}</td><td class="num">{b}</td><td class="num">{g}</td>'
                      for a, b, g in (("1.000", "1.000", "+0.000"), ("0.000", "1.000", "+1.000"),
                                      ("0.000", "1.000", "+1.000")))
            + "</tr>") in text  # n, SA, PC, SA & PC
    assert "SA &amp; PC" in text
    assert "states_of_matter = solid_solid" in text and "states_of_matter = fluid_fluid" in text


def test_metrics_table_shows_keys_it_has_no_label_for():
    view = report.metrics_view(OTHER_SUMMARY)
    assert view["heads"] == [("n", 1), ("SA", 3), ("PC", 3), ("SA & PC", 3), ("SA mean", 3), ("PC mean", 3),
                             ("rule_ok", 3)]
    overall, group = view["rows"]
    assert overall[0] == "overall" and overall[1][:4] == ["2", "0.500", "0.800", "+0.300"]
    assert overall[1][-3:] == ["0.750", "0.750", "+0.000"]  # no gain given: best - first
    assert group == ("states_of_matter = solid_solid", ["1", "0.500", "0.800", "+0.300", "0.500", "0.800", "+0.300",
                                                        "0.500", "0.800", "+0.300", "–", "–", "–", "–", "–", "–",
                                                        "–", "–", "–"])


def test_batch_page_when_metrics_fail(batch_dir, monkeypatch):
    def boom(d, **kw):
        raise ValueError("no scorer kind")

    monkeypatch.setattr(metrics, "summarize_batch", boom)
    text = report.write_report(batch_dir).read_text(encoding="utf-8")
    assert "phyt2v.views.metrics unavailable (ValueError: no scorer kind)" in text
    # mean SA of the 2 finished prompts: first rounds 0.5, best rounds (2) 0.7
    assert "<td class=\"num\">0.500</td><td class=\"num\">0.700</td><td class=\"num\">+0.200</td>" in text


def test_batch_run_json_missing_falls_back_to_result_lines(batch_dir):
    (batch_dir / "runs" / "0001-aa1-run" / "run.json").unlink()
    pg = check_structure(report.write_report(batch_dir))
    assert "p-0001-aa1-r2" in pg.ids


def test_not_a_run_or_batch(tmp_path):
    with pytest.raises(InputError, match="neither a run folder .* nor a batch folder"):
        report.write_report(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        report.write_report(tmp_path / "nope")
    (tmp_path / "run.json").write_text("{}")
    with pytest.raises(InputError, match="not a readable run record"):
        report.write_report(tmp_path)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(InputError, match="afile is a file, not a folder"):
        report.write_report(tmp_path, tmp_path / "afile" / "page.html")


def test_cli(run_dir, tmp_path):
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    p = subprocess.run([sys.executable, "-m", "phyt2v", "report", str(run_dir), "--out", str(tmp_path)],
                       capture_output=True, text=True, env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(tmp_path / "report.html") and (tmp_path / "report.html").is_file()
    p = subprocess.run([sys.executable, "-m", "phyt2v", "report", str(tmp_path)], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr and "neither a run folder" in p.stderr


# ---------------------------------------------------------------- headless Chromium

ERRORS_JS = ("window.__errors = [];"
             "window.addEventListener('error', function (e) { window.__errors.push(String(e.message || e)); });"
             "window.addEventListener('unhandledrejection', function (e) { window.__errors.push(String(e.reason)); });")


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")
    for exe in (CHROMIUM, CHROMEDRIVER):
        if not Path(exe).is_file():
            pytest.skip(f"{exe} not found: install Debian's chromium and chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,1000",
                 f"--user-data-dir={tmp_path / 'chrome-profile'}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    except Exception as e:  # a driver that does not match the browser, no display libs, ...
        pytest.skip(f"headless Chromium did not start: {str(e).splitlines()[0]}")
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": ERRORS_JS})
    yield driver
    driver.quit()


def open_page(driver, page: Path, shot: str) -> dict:
    """Load the page from file://, wait for its script and every video's metadata; screenshot it."""
    driver.get(page.resolve().as_uri())
    deadline = time.time() + 20
    state = {}
    while time.time() < deadline:
        state = driver.execute_script(
            "var v = Array.prototype.slice.call(document.querySelectorAll('video'));"
            "return {ready: document.body.dataset.ready, errors: window.__errors,"
            " videos: v.map(function (x) { return [x.readyState, x.error && x.error.code, x.videoWidth]; })};")
        if state["ready"] == "1" and all(rs >= 2 or err for rs, err, _ in state["videos"]):  # a frame to show
            break
        time.sleep(0.2)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(max(height + 150, 800), 4000))
    time.sleep(1.5)  # let the video controls' loading spinner fade after the resize
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / shot))
    logs = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert state["ready"] == "1", "the page's script did not finish"
    assert not state["errors"], f"JS errors: {state['errors']}"
    assert not logs, f"console messages: {logs}"
    assert state["videos"] and all(err is None and rs >= 1 and w > 0 for rs, err, w in state["videos"]), \
        f"videos that did not load (readyState, error code, width): {state['videos']}"
    return state


def test_run_page_in_chromium(browser, run_dir):
    open_page(browser, report.write_report(run_dir), "run.png")
    by = pytest.importorskip("selenium.webdriver.common.by").By
    assert browser.find_element(by.CSS_SELECTOR, "h1.run-prompt").text == EVIL
    assert len(browser.find_elements(by.CSS_SELECTOR, ".rounds .card")) == 3
    assert len(browser.find_elements(by.CSS_SELECTOR, "svg.chart circle")) == 9
    assert browser.find_element(by.CSS_SELECTOR, ".card ins").text == "drops quickly"
    button = browser.find_element(by.CSS_SELECTOR, "button.play-all")
    button.click()  # plays every (muted) video of the row; a rejected play() would show up as an error
    time.sleep(1.0)
    assert button.text == "pause all videos"
    assert browser.execute_script("return Array.prototype.every.call(document.querySelectorAll('video'),"
                                  " function (v) { return !v.paused && !v.error; })")
    assert not browser.execute_script("return window.__errors")


def test_batch_page_in_chromium(browser, batch_dir):
    open_page(browser, report.write_report(batch_dir), "batch.png")
    by = pytest.importorskip("selenium.webdriver.common.by").By
    rows = browser.find_elements(by.CSS_SELECTOR, "table.prompts tbody tr")
    assert len(rows) == 4
    head = browser.find_element(by.CSS_SELECTOR, "table.prompts th:first-child")
    head.click()
    head.click()  # the second click sorts by id descending
    ids = [r.find_element(by.CSS_SELECTOR, "td").text for r in
           browser.find_elements(by.CSS_SELECTOR, "table.prompts tbody tr")]
    assert ids == ["0003-aa3", "0002-aa2", "0001-aa1", "0000-aa0"]
    browser.find_element(by.LINK_TEXT, "0002-aa2").click()
    assert browser.execute_script("return location.hash") == "#p-0002-aa2"
    assert browser.find_element(by.CSS_SELECTOR, "#p-0002-aa2 .error").is_displayed()
    assert not browser.execute_script("return window.__errors")


# The README's prompt: SmolLM2 answers it parseably in the smoke preset (escaping of user text is tested
# on the constructed runs above; an arbitrary prompt can make the tiny LLM fail a step).
PROMPT_OK = "a rubber ball is dropped onto a wooden floor"


@pytest.mark.slow
def test_real_smoke_run_report(tmp_path, request):
    """The real loop (smoke preset: tiny models, real mp4s) then ``phyt2v report`` on its folder, in Chromium."""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    env.pop("PHYT2V_DEBUG", None)
    p = subprocess.run([sys.executable, "-m", "phyt2v", "refine", PROMPT_OK, "--preset", "smoke",
                        "--rounds", "2", "--out", str(tmp_path / "runs")], capture_output=True, text=True, env=env,
                       timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    (run_dir,) = (tmp_path / "runs").iterdir()
    p = subprocess.run([sys.executable, "-m", "phyt2v", "report", str(run_dir)], capture_output=True, text=True,
                       env=env, timeout=120)
    assert p.returncode == 0, p.stderr
    page = Path(p.stdout.strip())
    assert page == run_dir / "report.html"
    pg = Page(page)
    assert len(pg.videos) == 2 and all((run_dir / v["src"]).is_file() for v in pg.videos)
    assert PROMPT_OK in page.read_text(encoding="utf-8")
    open_page(request.getfixturevalue("browser"), page, "smoke-run.png")  # skips here when there is no browser
