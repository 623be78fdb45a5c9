"""report.html in a real headless browser (Debian chromium + chromedriver via selenium): no
console errors, one heat-map cell per recorded (model, hardware), filtering changes the visible
rows, sorting works, a non-blank screenshot lands in the output folder. Also: self-contained (no
external URL) and a 10k-test run stays a compact file that renders lazily."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_history import make_run

from ipfs_accelerate.results import compare as cmp_mod
from ipfs_accelerate.results import history as hist
from ipfs_accelerate.results.report_html import render_html, write_html
from ipfs_accelerate.results.run import TestRecord, summarize

CHROMIUM, DRIVER = shutil.which("chromium") or "/usr/bin/chromium", shutil.which("chromedriver") or "/usr/bin/chromedriver"


def _run(extra_skips: int = 0):  # noqa: ANN202
    rng = np.random.default_rng(1)
    run = make_run("20261203-120000-000-beef", rng, statuses={("vit", "openvino"): "xfailed", ("clip", "cpu"): "failed"})
    extra = [TestRecord(nodeid=f"skills/test_hf_m{i}.py::T::test_init[cpu-real]", file=f"skills/test_hf_m{i}.py", kind="model",
                        model=f"m{i}", hardware="cpu", impl="real", status="skipped",
                        reason=f"no pretrained checkpoint configured for 'm{i}'") for i in range(extra_skips)]
    run.tests += extra
    run.summary = summarize(run.tests)
    return run


def test_html_is_self_contained_and_summarises_skips_once() -> None:
    html = render_html(_run(extra_skips=91))
    assert not re.search(r"""(src|href)=["']https?://""", html), "no CDN or external resource"
    assert "<script src" not in html
    assert "91 × no pretrained checkpoint configured for &#39;&lt;model&gt;&#39;" in html  # 91 skips, one line
    assert html.count("no pretrained checkpoint") == 1 + 91  # the summary line + the table data (JSON), never 91 rows of prose


def test_large_run_is_compact() -> None:
    run = _run()
    base = run.tests[0]
    run.tests = [base.model_copy(update={"nodeid": f"skills/test_hf_x{i}.py::T::test_init[cpu]", "model": f"x{i % 500}",
                                          "case": None}) for i in range(10_000)]
    html = render_html(run)
    size_mb = len(html.encode()) / 1e6
    print(f"10k-test report.html: {size_mb:.2f} MB")
    assert size_mb < 3.5  # JSON rows, short keys; the table shows 200 rows until asked for more


@pytest.fixture
def browser():  # noqa: ANN201
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip(f"chromium/chromedriver not installed ({CHROMIUM}, {DRIVER}); make test installs them")
    webdriver = pytest.importorskip("selenium.webdriver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,1600"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    from selenium.webdriver.chrome.service import Service

    drv = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield drv
    drv.quit()


def test_report_in_headless_chromium(tmp_path: Path, browser) -> None:  # noqa: ANN001
    from selenium.webdriver.common.by import By

    run = _run(extra_skips=30)
    from ipfs_accelerate.results.schema import PrecisionVariant

    ov_bert = next(t.case for t in run.tests if t.model == "bert" and t.hardware == "openvino" and t.case)
    ov_bert.variants = [PrecisionVariant(precision="default", max_abs=0.01, cosine=0.9999, min_cosine=0.99, ok=True),
                        PrecisionVariant(precision="int8", max_abs=0.2, cosine=0.993, min_cosine=0.995, ok=False)]
    base = make_run("base", np.random.default_rng(2))
    cmp = cmp_mod.compare("base", hist.rows_from_run(base), run.run_id, hist.rows_from_run(run))
    path = write_html(run, tmp_path, cmp)
    browser.get(path.as_uri())
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []

    recorded = {(t.model, t.hardware) for t in run.tests if t.impl == "mock" and t.model and t.hardware}
    cells = browser.find_elements(By.CSS_SELECTOR, "#heatmap td.cell")
    assert len(cells) == len(recorded)
    assert {(c.get_attribute("data-model"), c.get_attribute("data-hw")) for c in cells} == recorded
    clip = browser.find_element(By.CSS_SELECTOR, '#heatmap td.cell[data-model="clip"][data-hw="cpu"]')
    assert "failed — boom" in clip.get_attribute("title") and "s-failed" in clip.get_attribute("class")
    variants = browser.find_elements(By.CSS_SELECTOR, "#heatmap td.vcell")  # the precision axis: one cell per variant
    assert {(v.get_attribute("data-model"), v.get_attribute("data-precision")) for v in variants} == {("bert", "default"), ("bert", "int8")}
    int8 = browser.find_element(By.CSS_SELECTOR, '#heatmap td.vcell[data-precision="int8"]')
    assert "int8: beyond — cos 0.99300 (min 0.995)" in int8.get_attribute("title") and "v-beyond" in int8.get_attribute("class")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#coverage tr.cov")) >= 1  # a coverage bar per category

    rows = lambda: browser.find_elements(By.CSS_SELECTOR, "#tests tbody tr")  # noqa: E731
    assert len(rows()) == len(run.tests)
    box = browser.find_element(By.ID, "filter")
    box.send_keys("whisper")
    assert len(rows()) == 2 and all("whisper" in r.text for r in rows())
    box.clear()
    box.send_keys("x")
    box.clear()  # clear() does not fire "input"; one more key event redraws
    browser.execute_script("document.getElementById('filter').dispatchEvent(new Event('input'))")
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, "status")).select_by_value("failed")
    assert [r.text.split()[0] for r in rows()] == ["failed"]
    Select(browser.find_element(By.ID, "status")).select_by_value("")
    browser.find_element(By.CSS_SELECTOR, '#tests th[data-k="d"]').click()
    assert len(rows()) == len(run.tests)
    assert browser.find_elements(By.CSS_SELECTOR, "#changes td")  # the comparison table is drawn
    assert len(browser.find_elements(By.CSS_SELECTOR, "#latency rect")) == len(run.tests) - 30

    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    from PIL import Image

    pixels = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert pixels.std() > 10, "screenshot is blank"
    assert browser.get_log("browser") == []
