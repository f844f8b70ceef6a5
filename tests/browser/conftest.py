"""Headless Chromium for the browser tests (Debian's chromium and chromium-driver)."""
from __future__ import annotations

import pytest
from browser_tools import browser_paths


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
