"""Drives the page of ``seqgen serve`` in a headless Chromium through selenium, panel by panel,
and says what it showed; used by test_page_e2e.py (the test, and the screenshots it can take)."""
from __future__ import annotations

import shutil
import time
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


def drive_page(url: str, photos: list[Path], out: Path | None) -> dict:
    """What the page showed, panel by panel; screenshots go to ``out`` when given."""
    import json
    import urllib.request

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    models = json.load(urllib.request.urlopen(url + "api/models", timeout=30))["models"]
    driver = open_browser()
    wait = WebDriverWait(driver, 60)
    shown = {"models": models}
    try:
        driver.get(url)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, ".panel")) == len(models))
        shown["titles"] = [h.text for h in driver.find_elements(By.CSS_SELECTOR, ".panel h2")]
        panels = {m["task"]: driver.find_element(By.CSS_SELECTOR,
                                                  f'.panel[data-task="{m["task"]}"]')
                  for m in models}
        shown["texts"], shown["inked"] = {}, {}
        for model in models:  # every panel, by what its inputs are
            panel = panels[model["task"]]
            if model["inputs"] == "prompt":
                shown |= prompt_panel(panel, wait)
            elif model["inputs"] == "text":
                texts = text_panel(panel, wait)
                shown["texts"][model["task"]] = texts["texts"]
                shown["inked"][model["task"]] = texts["inked"]
            else:
                shown |= image_panel(panel, wait, photos)
                panels["image"] = panel
        if out is not None:
            time.sleep(0.5)  # lets the last paint land in the pictures; no check depends on it
            out.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(out / "serve-page.png"))
            panels["image"].screenshot(str(out / "serve-caption.png"))
        shown["console"] = [e["message"] for e in driver.get_log("browser")
                            if e["level"] == "SEVERE"]
        return shown
    finally:
        driver.quit()


def open_browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # to catch script errors
    return webdriver.Chrome(service=Service(DRIVER), options=options)


def prompt_panel(panel, wait) -> dict:
    """Types a prompt, presses the button, waits for streamed text."""
    from selenium.webdriver.common.by import By

    box = panel.find_element(By.CSS_SELECTOR, "input[type=text]")
    box.clear()
    box.send_keys("Oil prices ")
    panel.find_element(By.TAG_NAME, "button").click()
    result = panel.find_element(By.CSS_SELECTOR, ".result")
    wait.until(lambda d: len(result.text) > len("Oil prices ") + 5)
    return {"prompt": result.text}


def text_panel(panel, wait) -> dict:
    """Two lines in, their two results and how many pixels of the heatmap are drawn."""
    from selenium.webdriver.common.by import By

    box = panel.find_element(By.TAG_NAME, "textarea")
    box.clear()
    box.send_keys("Ein Mann fährt Fahrrad.\nZwei Hunde spielen im Schnee.")
    panel.find_element(By.TAG_NAME, "button").click()
    wait.until(lambda d: len(panel.find_elements(By.CSS_SELECTOR, ".results li")) == 2)
    return {"texts": [li.text for li in panel.find_elements(By.CSS_SELECTOR, ".results li")],
            "inked": panel.parent.execute_script(INKED, panel.find_element(By.TAG_NAME,
                                                                           "canvas"))}


def image_panel(panel, wait, photos: list[Path]) -> dict:
    """Uploads ``photos``, waits for every card, clicks a word to lay its attention over the
    photo; each card as :func:`card_shown` says, and how many overlay pixels are drawn."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    panel.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(
        "\n".join(str(p) for p in photos))
    wait.until(lambda d: len(panel.find_elements(By.CLASS_NAME, "card")) == len(photos)
               and not panel.find_elements(By.CSS_SELECTOR, ".card .status"))
    shown = {"cards": [card_shown(c, By) for c in panel.find_elements(By.CLASS_NAME, "card")],
             "overlay": 0}
    words = panel.find_elements(By.CSS_SELECTOR, ".words span")
    if words:
        ActionChains(panel.parent).click(words[min(2, len(words) - 1)]).perform()
        shown["overlay"] = panel.parent.execute_script(INKED, panel.find_element(
            By.CSS_SELECTOR, ".card .photo canvas"))
    return shown


def card_shown(card, By) -> dict:
    """A photo's card: its file name, caption words, error, and whether it shows the photo."""
    return {"name": card.find_element(By.CLASS_NAME, "filename").text,
            "caption": " ".join(w.text for w in card.find_elements(By.CSS_SELECTOR, ".words span")),
            "error": " ".join(e.text for e in card.find_elements(By.CLASS_NAME, "error")),
            "thumbnail": bool(card.find_elements(By.TAG_NAME, "img"))}


INKED = """const c = arguments[0];
if (c.hidden || !c.width) return 0;
const data = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
let inked = 0;
for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked++;
return inked;"""
