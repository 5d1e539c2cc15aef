"""Opens a preference-centre page in headless Chromium (Selenium), unticks one group and saves.

    python3 browser_preferences.py URL GROUP

Prints one JSON line: the page's language, whether the group was ticked before, the status text after saving, and
whether it is unticked after the reload. Written against the page's HTML only (ids g-<group>, the save button).
"""
import json
import sys

from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait

from browser_common import chromium

url, group = sys.argv[1], sys.argv[2]
driver = chromium(1000, 800)
try:
    driver.get(url)
    lang = driver.find_element(By.TAG_NAME, "html").get_attribute("lang")
    box = driver.find_element(By.ID, "g-" + group)
    before = box.is_selected()
    label = driver.find_element(By.CSS_SELECTOR, "label[for='g-%s']" % group).text
    if before:
        box.click()
    driver.find_element(By.CSS_SELECTOR, "button[value='save']").click()
    # The POST answers 303 and Chromium loads the page again: wait for the saved page's status line (a click does
    # not wait for the navigation it starts; on a loaded machine the old page was still there).
    status = WebDriverWait(driver, 60).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "[role='status']"))).text
    after = driver.find_element(By.ID, "g-" + group).is_selected()
    print(json.dumps({"lang": lang, "label": label, "before": before, "status": status, "after": after, "url": driver.current_url}))
finally:
    driver.quit()
