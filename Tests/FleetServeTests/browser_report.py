"""Loads a campaign report page in headless Chromium (Selenium) and takes screenshots of the page and its chart.

    python3 browser_report.py URL OUT.png

Prints one JSON line: the title, the number of bars in the chart, the chart's rendered size, the verdicts, and the
byte size and distinct colours of the chart's screenshot (a blank or unrendered chart has one colour).
"""
import json
import sys
import zlib
import struct

from selenium.webdriver.common.by import By

from browser_common import chromium


def colours(png):
    """Distinct RGB(A) pixels of an 8-bit non-interlaced PNG (what Chromium writes)."""
    pos, idat, width, height, ctype = 8, b"", 0, 0, 0
    while pos < len(png):
        length, kind = struct.unpack(">I4s", png[pos:pos + 8])
        data = png[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, _, ctype = struct.unpack(">IIBB", data[:10])
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    raw = zlib.decompress(idat)
    bpp = 4 if ctype == 6 else 3
    stride = width * bpp
    seen, prev, i = set(), bytearray(stride), 0
    for _ in range(height):
        f, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        for x in range(0, stride, bpp):
            seen.add(bytes(line[x:x + 3]))
        prev = line
    return len(seen)


url, out = sys.argv[1], sys.argv[2]
driver = chromium(1400, 1000)
try:
    driver.get(url)
    chart = driver.find_element(By.ID, "chart")
    bars = driver.find_elements(By.CSS_SELECTOR, "#chart rect.bar")
    verdicts = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#verdicts li")]
    driver.save_screenshot(out)
    shot = chart.screenshot_as_png
    print(json.dumps({"title": driver.title, "bars": len(bars), "width": chart.size["width"], "height": chart.size["height"],
                      "verdicts": verdicts, "chart_png_bytes": len(shot), "chart_colours": colours(shot)}))
finally:
    driver.quit()
