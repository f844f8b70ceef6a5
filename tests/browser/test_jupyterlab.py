"""What a student sees: JupyterLab from `make lab`, driven by a real headless Chromium.

The server is started by `make lab` itself (same environment, token on) on a free port, with
its root on a copy of a few notebooks, so autosave never touches the committed files. The first
notebook opens by its address, the next ones in the same page from File > Open from Path…, as a
student opens them. For each notebook the test runs all cells from the Run menu and checks what
is on screen: no error output, every figure rendered as an image, a slider moved with the
keyboard redraws its picture, a progress bar shows, and the browser console stays free of errors. Then an instructor
presents one notebook with RISE (the slideshow of `make lab`) and moves two slides forward.
Screenshots go to build/browser/ (kept when a check fails).

The Chinese edition the same way: `make lab COURSE_LANG=zh` builds it into a temporary folder
and serves it in JupyterLab's Chinese interface; the test clicks the Chinese menus, and checks
that the prose is Chinese and drawn with a CJK font (not boxes) and that the kernel speaks
Chinese (the setup line).
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from browser_tools import wait

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "browser"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# Three days; between them a slider demo (Day 1 metrics), a training run with a tqdm bar
# (Day 1 loop) and figure-heavy operator notebooks (Days 2 and 3).
NOTEBOOKS = {
    "day1_concepts/04_metrics.ipynb": {"slider": True},
    "day1_concepts/03_training_loop.ipynb": {"progress": True},
    "day2_fcn/02_upsampling.ipynb": {},
    "day3_unet_psp/02_receptive_field.ipynb": {"slider": True},
}
# Two notebooks of the Chinese edition: one with a slider, one with progress bars.
NOTEBOOKS_ZH = {
    "day1_concepts/04_metrics.ipynb": {"slider": True},
    "day1_concepts/03_training_loop.ipynb": {"progress": True},
}
RUN_TIMEOUT = 300
# The labels the test clicks, in each interface language (the zh_CN language pack's own words).
LABELS = {
    "en": dict(edit="Edit", clear="Clear Outputs of All Cells", run="Run", run_all="Run All Cells",
               file="File", save="Save Notebook", select="Select", no="No", open_path="Open from Path…"),
    "zh": dict(edit="编辑", clear="清除所有单元格的输出", run="运行", run_all="运行所有单元格",
               file="文件", save="保存 Notebook", select="选择", no="否", open_path="从路径打开…"),
}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _expected_figures(path):
    """Images the committed notebook shows: figure outputs plus one picture per widget demo."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    n = 0
    for cell in nb["cells"]:
        outs = cell.get("outputs", [])
        n += sum("image/png" in o.get("data", {}) for o in outs)
        n += sum(WIDGET_VIEW in o.get("data", {}) for o in outs
                 if "interact" in "".join(cell["source"]))
    return n


def _serve(root, make_args=()):
    """`make lab` (with ``make_args``) serving ``root``; yields (base_url, token, root)."""
    port, token = _free_port(), secrets.token_hex(16)
    env = dict(os.environ, SEGCOURSE_FAST="1")
    # Its own workspaces folder: the user's saved layout (~/.jupyter/lab/workspaces) would
    # reopen notebooks this copy does not have, and the browser would log their 404s.
    flags = (f"--no-browser --ServerApp.port={port} --ServerApp.port_retries=0 "
             f"--IdentityProvider.token={token} --LabApp.workspaces_dir={root / 'workspaces'}")
    log = open(root / "lab.log", "w")
    proc = subprocess.Popen(["make", "-s", "--no-print-directory", "lab", *make_args, f"LAB_ROOT={root}",
                             f"LAB_FLAGS={flags}"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail("JupyterLab did not start:\n" + (root / "lab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield base, token, root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory, chromium):
    """`make lab` serving a copy of the chosen notebooks; yields (base_url, token, root).
    (Asks for Chromium first: without it the test skips before starting a server.)"""
    root = tmp_path_factory.mktemp("course")
    for rel in NOTEBOOKS:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, root / rel)
    yield from _serve(root)


@pytest.fixture(scope="module")
def lab_zh(tmp_path_factory, chromium):
    """`make lab COURSE_LANG=zh`: the Chinese edition built into a temporary folder and served in
    the Chinese interface; yields (base_url, token, root)."""
    if not subprocess.run(["fc-list", ":lang=zh"], capture_output=True, text=True).stdout.strip():
        message = "no CJK font (Debian: apt-get install fonts-noto-cjk; `make browser-deps` does it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    root = tmp_path_factory.mktemp("edition-zh")
    yield from _serve(root, ["COURSE_LANG=zh", f"EDITION_DIR={root}"])


@pytest.fixture(scope="module")
def browser(chromium):
    driver = chromium(1400, 1000)
    driver.set_script_timeout(30)
    return driver


def _click_menu(driver, menu, item):
    """Click ``item`` of the main menu ``menu`` (labels as the interface shows them)."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.XPATH, f"//li[contains(@class,'lm-MenuBar-item')]"
                                  f"[.//div[normalize-space()='{menu}']]").click()
    wait(lambda: driver.find_elements(
        By.XPATH, f"//li[contains(@class,'lm-Menu-item')][.//div[normalize-space()='{item}']]"),
        10, f"menu item {item}")[0].click()


CURRENT = ".jp-NotebookPanel:not(.lm-mod-hidden)"   # the notebook tab in front
PROMPTS = """
const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
if (!nb) return null;
return [...nb.querySelectorAll('.jp-CodeCell .jp-InputPrompt')].map(p => p.textContent.trim());
"""
IMAGES = """
const nb = document.querySelector('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook');
// Cells off screen are skipped by the browser's layout (content-visibility), so their
// pictures are counted as elements holding PNG data, not as decoded images.
return [...nb.querySelectorAll('.jp-OutputArea-output img')]
    .filter(img => img.src.startsWith('data:image/png')).length;
"""


def _kernel_idle(base, token, rel):
    with urllib.request.urlopen(f"{base}/api/sessions?token={token}", timeout=5) as r:
        sessions = json.load(r)
    return any(s["path"] == rel and s["kernel"]["execution_state"] == "idle" for s in sessions)


def _dismiss(driver, labels=LABELS["en"]):
    """Answer what JupyterLab may ask on a first visit: the kernel choice (keep Python 3)
    and the news notification (no)."""
    from selenium.webdriver.common.by import By

    for xpath in (f"//dialog[contains(@class,'jp-Dialog')]//button[.//div[normalize-space()='{labels['select']}']]",
                  f"//div[contains(@class,'Toastify')]//button[normalize-space()='{labels['no']}']"):
        for button in driver.find_elements(By.XPATH, xpath):
            if button.is_displayed():
                button.click()


def _open(driver, base, token, rel, labels=LABELS["en"]):
    """Open ``rel``: the first notebook by its address, the next ones as a student does, from the
    File menu of the page already open (a fresh JupyterLab page costs Chromium 4-6 CPU s)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    if not driver.current_url.startswith(f"{base}/lab"):
        driver.get(f"{base}/lab/tree/{rel}?token={token}")
        return
    _click_menu(driver, labels["file"], labels["open_path"])
    field = wait(lambda: [f for f in driver.find_elements(By.XPATH, "//dialog[contains(@class,'jp-Dialog')]//input")
                          if f.is_displayed()], 10, "the Open from Path dialog")[0]
    field.send_keys(rel, Keys.ENTER)
    front = ("const t = document.querySelector('.lm-DockPanel-tabBar .lm-TabBar-tab.lm-mod-current');"
             "return t ? t.title : '';")
    wait(lambda: rel.split("/")[-1] in driver.execute_script(front), 60, f"{rel} to open in front")


def _run_all(driver, base, token, rel, labels=LABELS["en"]):
    _open(driver, base, token, rel, labels)
    wait(lambda: driver.execute_script(PROMPTS), 60, f"{rel} to open")
    # The kernel must be up before Run All, or the first cells queue behind its start.
    wait(lambda: _dismiss(driver, labels) or _kernel_idle(base, token, rel), 120,
          f"{rel}'s kernel to be idle")
    _dismiss(driver, labels)
    # Clear the committed outputs first, so that every prompt and picture checked below
    # comes from this run.
    _click_menu(driver, labels["edit"], labels["clear"])
    wait(lambda: not any(p.strip("[]: ") for p in driver.execute_script(PROMPTS)), 20,
          "the outputs to clear")
    _click_menu(driver, labels["run"], labels["run_all"])

    def done():
        prompts = driver.execute_script(PROMPTS)
        return prompts and all(x.strip("[]: ").isdigit() for x in prompts)

    wait(done, RUN_TIMEOUT, f"all cells of {rel} to run")
    wait(lambda: _kernel_idle(base, token, rel), 60, f"{rel}'s kernel to finish")
    _click_menu(driver, labels["file"], labels["save"])
    wait(lambda: not driver.find_elements(
        "css selector", ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-mod-dirty, "
                        ".lm-TabBar-tab.jp-mod-current.jp-mod-dirty"), 30, f"{rel} to be saved")


def _console_errors(driver):
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _student_sees(browser, lab, rel, options, labels=LABELS["en"], prefix="", extra=None):
    """Run ``rel`` from the menus and check what is on screen (see the module docstring);
    ``extra(browser, saved_notebook)`` adds checks of an edition."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, token, root = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / (prefix + rel.replace("/", "__").replace(".ipynb", ".png"))
    start = time.time()
    try:
        _run_all(browser, base, token, rel, labels)
        saved = json.loads((root / rel).read_text(encoding="utf-8"))
        errors = [o for c in saved["cells"] for o in c.get("outputs", [])
                  if o["output_type"] == "error"]
        assert not errors, f"{rel}: {errors[0]['ename']}: {errors[0]['evalue']}"

        expected = _expected_figures(ROOT / rel)
        deadline = time.time() + 30
        while (shown := browser.execute_script(IMAGES)) < expected and time.time() < deadline:
            time.sleep(0.5)
        assert shown == expected, f"{rel}: {shown} figures on screen, {expected} committed"

        if options.get("slider"):
            handle = browser.find_element(By.CSS_SELECTOR, f"{CURRENT} .widget-interact .widget-slider .noUi-handle")

            def picture():
                return browser.execute_script(
                    f"const i = document.querySelector('{CURRENT} .widget-interact .jp-OutputArea-output img');"
                    "return i && i.complete && i.naturalWidth > 0 ? i.src : null;")

            before = wait(picture, 30, "the widget's picture")
            browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", handle)
            browser.execute_script("arguments[0].focus();", handle)
            ActionChains(browser).send_keys(Keys.ARROW_RIGHT).perform()
            wait(lambda: (picture() or before) != before, 30,
                  "the widget's picture to change after the slider moved")

        if options.get("progress"):
            bars = browser.execute_script(
                f"return [...document.querySelectorAll('{CURRENT} .widget-hprogress .progress-bar')]"
                ".map(b => b.style.width);")
            assert bars and all(w == "100%" for w in bars), f"{rel}: tqdm bars {bars}, none full"

        if extra is not None:
            extra(browser, saved)
        errors = _console_errors(browser)
        assert not errors, f"{rel}: JavaScript console errors: {errors[:3]}"
        print(f"{prefix}{rel}: {shown} figures, ran in {time.time() - start:.0f} s")
    finally:
        # the top of the notebook in the picture (the run leaves it scrolled to the end)
        browser.execute_script(f"const n = document.querySelector('{CURRENT} .jp-WindowedPanel-outer');"
                               "if (n) n.scrollTop = 0;")
        time.sleep(0.5)
        browser.save_screenshot(str(shot))


@pytest.mark.parametrize("rel", list(NOTEBOOKS))
def test_notebook_as_a_student_sees_it(lab, browser, rel):
    _student_sees(browser, lab, rel, NOTEBOOKS[rel])


# How a glyph is drawn in the font of the rendered prose: a character the fonts lack is drawn as
# the same empty box as a code point no font has (U+10FFFD), so its pixels equal that box's.
GLYPHS = r"""
const font = getComputedStyle(document.querySelector(arguments[0])).fontFamily;
const ink = ch => { const c = document.createElement('canvas'); c.width = c.height = 64;
  const x = c.getContext('2d'); x.font = '48px ' + font; x.fillText(ch, 4, 52);
  return Array.from(x.getImageData(0, 0, 64, 64).data).join(','); };
const box = ink('\u{10FFFD}');
return [font, ...Array.from(arguments[1]).map(ch => ink(ch) !== box && /[^0,]/.test(ink(ch)))];
"""


@pytest.mark.parametrize("rel", list(NOTEBOOKS_ZH))
def test_chinese_notebook_as_a_student_sees_it(lab_zh, browser, rel):
    """The Chinese edition in the Chinese interface: menus clicked by their Chinese names, the
    prose Chinese and drawn with a CJK font, the kernel's own line Chinese."""
    from selenium.webdriver.common.by import By

    def chinese(browser, saved):
        menus = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item")]
        assert menus[:4] == ["文件", "编辑", "查看", "运行"], f"interface not Chinese: {menus}"
        title = browser.find_element(By.CSS_SELECTOR, f"{CURRENT} .jp-RenderedMarkdown h1").text
        assert title.startswith("第 1 天 ·"), title
        assert saved["metadata"]["segcourse"]["edition"] == "zh"
        first_code = next(c for c in saved["cells"] if c["cell_type"] == "code")    # setup() prints the banner
        banner = "".join(first_code["outputs"][0]["text"])
        assert "设备 CPU" in banner and "预算 FAST" in banner, banner
        font, *drawn = browser.execute_script(GLYPHS, f"{CURRENT} .jp-RenderedMarkdown p", "语义分割混淆矩阵")
        assert all(drawn), f"CJK characters drawn as boxes in {font}: {drawn}"
        # a second picture, of the widget or the progress bars with the Chinese prose around them
        part = ".widget-interact" if NOTEBOOKS_ZH[rel].get("slider") else ".widget-hprogress"
        browser.execute_script(f"document.querySelector('{CURRENT} {part}').scrollIntoView({{block: 'center'}});")
        time.sleep(1)
        browser.save_screenshot(str(SHOTS / ("zh__" + rel.replace("/", "__").replace(".ipynb", "__widget.png"))))

    _student_sees(browser, lab_zh, rel, NOTEBOOKS_ZH[rel], LABELS["zh"], "zh__", chinese)


SLIDESHOW = "day2_fcn/02_upsampling.ipynb"


def test_an_instructor_presents_a_notebook_as_slides(lab, browser):
    """RISE's slideshow (View > Render as slideshow, or its /rise/ page): the slides follow the
    notebook's headings (metadata.slideshow, common.course.slides), the right arrow moves on, and
    nothing is fetched from another host (the slide theme is set to one without web fonts)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base, token, _ = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    nb = json.loads((ROOT / SLIDESHOW).read_text(encoding="utf-8"))
    kinds = [c["metadata"]["slideshow"]["slide_type"] for c in nb["cells"]]
    headings = ["".join(c["source"]).split("\n", 1)[0].lstrip("# ") for c, k in zip(nb["cells"], kinds) if k == "slide"]
    try:
        browser.get(f"{base}/rise/{SLIDESHOW}?token={token}")

        def at():
            url = browser.current_url
            return url.split("#/slide-", 1)[1] if "#/slide-" in url else None

        wait(lambda: at() == "0-0" and browser.find_elements(By.CSS_SELECTOR, ".reveal .slides section"),
              120, "the slideshow to start")
        assert len(browser.find_elements(By.CSS_SELECTOR, ".reveal .slides > section")) == kinds.count("slide")
        for step in (1, 2):
            ActionChains(browser).send_keys(Keys.ARROW_RIGHT).perform()
            wait(lambda step=step: at() == f"{step}-0", 20, f"slide {step}")
        heading = headings[2].split(" (")[0].upper()       # the theme writes headings in capitals

        def showing():
            present = browser.find_elements(By.CSS_SELECTOR, ".reveal .slides > section.present")
            return present[0].text.upper() if present else ""

        wait(lambda: heading in showing(), 20, f"slide 2 to show {headings[2]!r}")
        remote = browser.execute_script(
            "return performance.getEntriesByType('resource').map(e => e.name).filter(u => !u.startsWith(arguments[0]))",
            base)
        assert not remote, f"the slideshow fetched from another host: {remote[:3]}"
    finally:
        browser.save_screenshot(str(SHOTS / "rise-slideshow.png"))
