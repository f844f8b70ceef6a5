"""The book of `make book` as a reader sees it: headless Chromium on the built site, served over
HTTP from this machine like any static host.

For the home page and one lesson per day in each edition: no console errors, as many pictures on
the page as the committed notebook stores (figures and widgets' saved pictures), every picture
decoded, every formula typeset by the site's own MathJax (no raw TeX left), and the language switch
leads to the same page in the other edition. Every link of the built site resolves, offline.
Screenshots at a desktop and a phone width go to build/browser/. When the site has no Chinese
edition yet, the switch is tested on a small two-edition build with a stub Chinese edition.
"""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
import time
from pathlib import Path

import pytest
from browser_tools import wait

from common.course import book

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "browser"
WIDTHS = {"desktop": 1280, "phone": 390}


def _lessons():
    """The first lesson of each day (not its exercises)."""
    first = {}
    for path in sorted(ROOT.glob("day*/*.ipynb")):
        if path.name != "exercises.ipynb":
            first.setdefault(path.parent.name, path)
    return [f"{p.parent.name}/{p.stem}" for p in first.values()]


LESSONS = _lessons()


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def serve():
    """serve(folder) -> base URL of a local static server on that folder."""
    servers = []

    def start(folder):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture(scope="module")
def site():
    """build/book as `make book` left it (built here when it is missing)."""
    if not (book.SITE / "en" / "index.html").is_file():
        book.build()
    return book.SITE


@pytest.fixture(scope="module")
def editions(site):
    return sorted(p.parent.name for p in site.glob("*/index.html"))


@pytest.fixture(scope="module")
def browser(chromium):
    return chromium(WIDTHS["desktop"], 900)


PAGE_STATE = """
const article = document.querySelector('article.bd-article');
const maths = article.querySelectorAll('.math');
return {
  images: [...article.querySelectorAll('img')].map(i => i.complete && i.naturalWidth > 0),
  maths: maths.length,
  typeset: article.querySelectorAll('.math mjx-container').length,
  mathErrors: article.querySelectorAll('mjx-merror').length,
  text: (() => {           // prose only: code, outputs and typeset math may hold $ or backslashes
    const prose = article.cloneNode(true);
    prose.querySelectorAll('pre, code, .highlight, .math, mjx-container, script').forEach(e => e.remove());
    return prose.innerText;
  })(),
  lang: document.documentElement.lang,
};
"""


def _open(driver, url):
    driver.get(url)
    wait(lambda: driver.execute_script("return document.readyState") == "complete", 30, url)
    # MathJax typesets after load; every .math element ends up holding an mjx-container.
    return wait(lambda: (s := driver.execute_script(PAGE_STATE)) and s["typeset"] >= s["maths"] and s, 30,
                 f"MathJax to typeset {url}")


def _console_errors(driver):
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _shoot(driver, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    for label, width in WIDTHS.items():
        driver.set_window_size(width, 900)
        time.sleep(0.3)
        driver.save_screenshot(str(SHOTS / f"book-{name}-{label}.png"))
    driver.set_window_size(WIDTHS["desktop"], 900)


def test_every_link_of_the_built_site_resolves_offline(site):
    assert book.check_site(site) == []


@pytest.mark.parametrize("page", ["index"] + LESSONS)
def test_a_page_as_a_reader_sees_it(site, editions, serve, browser, page):
    base = serve(site)
    for lang in editions:
        state = _open(browser, f"{base}/{lang}/{page}.html")
        where = f"{lang}/{page}"
        assert state["lang"].startswith(lang), f"{where}: html lang {state['lang']!r}"
        if page != "index":
            expected = book.saved_pictures(json.loads((ROOT / f"{page}.ipynb").read_text(encoding="utf-8")))
            shown = len(state["images"])
            assert shown == expected, f"{where}: {shown} pictures on the page, the notebook stores {expected}"
            assert all(state["images"]), f"{where}: a picture did not load"
        assert not state["mathErrors"], f"{where}: MathJax could not typeset a formula"
        leftover = [m for m in book.RAW_TEX.finditer(state["text"])]
        assert not leftover, f"{where}: raw TeX on screen near {state['text'][leftover[0].start() - 20:][:60]!r}"
        assert not (errors := _console_errors(browser)), f"{where}: console errors {errors[:3]}"
        if page in ("index", LESSONS[2]):
            _shoot(browser, f"{lang}-{page.replace('/', '__')}")


def test_search_finds_a_lesson(site, editions, serve, browser):
    base = serve(site)
    words = {"en": "receptive", "zh": "感受野"}
    for lang in editions:
        browser.get(f"{base}/{lang}/search.html?q={words[lang]}")
        hits = wait(lambda: browser.find_elements("css selector", "#search-results ul.search li"), 30,
                     f"search results for {words[lang]} in {lang}")
        assert any("receptive_field" in h.find_element("css selector", "a").get_attribute("href") for h in hits)


@pytest.fixture(scope="module")
def two_editions(site, editions, tmp_path_factory):
    """The built site when it has both editions, else a small one with a stub Chinese edition."""
    if len(editions) > 1:
        return site, LESSONS[1]
    names = [f"{LESSONS[1]}.ipynb", f"{LESSONS[1].split('/')[0]}/exercises.ipynb"]
    tmp = tmp_path_factory.mktemp("two-editions")
    readme = "# {t}\n\nintro\n\n## {h}\n\n| day | notebook | what |\n|---|---|---|\n| 2 | `{n}` | x |\n"
    (tmp / "README.md").write_text(readme.format(t="Course", h="The course map", n=LESSONS[1]))
    (tmp / "README.zh.md").write_text(readme.format(t="课程", h="课程地图", n=LESSONS[1]), encoding="utf-8")

    def stub(out_dir):
        written = []
        for name in names:
            nb = json.loads((ROOT / name).read_text(encoding="utf-8"))
            for cell in nb["cells"]:
                if cell["cell_type"] == "markdown":
                    cell["source"] = "".join(cell["source"]).replace("# ", "# 【中文】", 1)
            (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
            (out_dir / name).write_text(json.dumps(nb, ensure_ascii=False), encoding="utf-8")
            written.append(out_dir / name)
        return written

    editions = [book.Edition("en", "en", "English", tmp / "README.md", lambda out: [ROOT / n for n in names]),
                book.Edition("zh", "zh_CN", "中文", tmp / "README.zh.md", stub)]
    book.build(editions, site=tmp / "site", stage_root=tmp / "src")
    return tmp / "site", LESSONS[1]


def test_the_language_switch_leads_to_the_same_page(two_editions, serve, browser):
    site, page = two_editions
    base = serve(site)
    _open(browser, f"{base}/en/{page}.html")
    title = browser.find_element("css selector", "article h1").text
    browser.find_element("css selector", "a.book-lang-switch[hreflang=zh]").click()
    state = wait(lambda: browser.current_url.endswith(f"/zh/{page}.html") and browser.execute_script(PAGE_STATE),
                  30, "the Chinese page")
    assert state["lang"] == "zh-CN" and "本课概览" in state["text"], "not the Chinese edition's page"
    assert browser.find_element("css selector", "article h1").text != title
    _shoot(browser, f"zh-{page.replace('/', '__')}" + ("" if site == book.SITE else "-stub"))
    browser.find_element("css selector", "a.book-lang-switch[hreflang=en]").click()
    wait(lambda: browser.current_url.endswith(f"/en/{page}.html"), 30, "the English page again")
    # The Chinese edition's search finds Chinese words (jieba splits them; Python 3.10+).
    browser.get(f"{base}/zh/search.html?q=本课")
    wait(lambda: browser.find_elements("css selector", "#search-results ul.search li"), 30, "Chinese search results")
    assert not (errors := _console_errors(browser)), f"console errors {errors[:3]}"
    if site != book.SITE:
        shutil.rmtree(site.parent / "src", ignore_errors=True)
