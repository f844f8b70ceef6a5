"""Headless Chromium for the browser tests (Debian's chromium and chromium-driver)."""
from __future__ import annotations

import os
import shutil

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


@pytest.fixture(scope="session")
def chromium(tmp_path_factory):
    """start(width, height) -> a new headless Chromium driver with its console log on; all quit at the end."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = browser_paths()
    drivers = []

    def start(width, height):
        options = webdriver.ChromeOptions()
        options.binary_location = binary
        # The background-networking flags keep Chromium from calling out (no network here).
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--hide-scrollbars", f"--window-size={width},{height}",
                    f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
            options.add_argument(arg)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        drivers.append(webdriver.Chrome(service=Service(driver_path), options=options))
        return drivers[-1]

    yield start
    for driver in drivers:
        driver.quit()
