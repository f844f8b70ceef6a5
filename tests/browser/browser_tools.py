"""What the browser tests share: where Chromium is, and waiting for the page."""
from __future__ import annotations

import os
import shutil
import time

import pytest


def browser_paths():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    message = ("no Chromium/ChromeDriver on this machine (Debian/Ubuntu: apt-get install chromium "
               "chromium-driver); the browser test cannot run here")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def wait(predicate, timeout, what):
    """Poll ``predicate`` until it returns something true (returned), or fail naming ``what``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
