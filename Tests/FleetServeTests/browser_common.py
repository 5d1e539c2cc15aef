"""Headless Chromium through Selenium with Debian's chromedriver, for the browser tests of `fleet serve`."""
import sys
import tempfile
import time

from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service


def chromium(width, height):
    """A driver on a fresh profile directory. Chromium's start can fail on a loaded machine (its DevTools port file
    not written in time): tried three times, each failure said on stderr."""
    for attempt in range(3):
        options = webdriver.ChromeOptions()
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", f"--window-size={width},{height}",
                    "--user-data-dir=" + tempfile.mkdtemp(prefix="fleet-chromium-")):
            options.add_argument(arg)
        options.binary_location = "/usr/bin/chromium"
        try:
            return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        except WebDriverException as e:
            print(f"chromium start failed (attempt {attempt + 1}): {e.msg}", file=sys.stderr)
            if attempt == 2:
                raise
            time.sleep(1)
