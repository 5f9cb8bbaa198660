"""Loads pages of the daemon's status page in headless Chromium (Debian's `chromium`, driven
by Playwright from PyPI) and reports, as one JSON line: each page's HTTP status, console
errors and uncaught exceptions, its visible text, how the first timeline rendered, and the
serious or critical violations axe-core (from npm) finds. Optionally saves a screenshot.

  python3 check_page.py AXE_JS SCREENSHOT|- URL...
"""

import json
import shutil
import sys

from playwright.sync_api import sync_playwright


def main():
    axe_path, screenshot, urls = sys.argv[1], sys.argv[2], sys.argv[3:]
    axe = open(axe_path, encoding="utf-8").read()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    report = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox"]
        )
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        errors = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        for i, url in enumerate(urls):
            errors.clear()
            response = page.goto(url, wait_until="load")
            svg = page.locator("svg").first
            box = svg.bounding_box() if svg.count() else None
            # axe-core is evaluated by the browser's debugger, not loaded by the page (whose
            # policy loads no script).
            page.evaluate(axe)
            violations = page.evaluate(
                """async () => (await axe.run(document)).violations
                    .filter(v => v.impact === 'serious' || v.impact === 'critical')
                    .map(v => ({id: v.id, impact: v.impact, help: v.help,
                                nodes: v.nodes.map(n => n.html).slice(0, 3)}))"""
            )
            if i == 0 and screenshot != "-":
                page.screenshot(path=screenshot, full_page=False)
            report.append(
                {
                    "url": url,
                    "status": response.status if response else None,
                    "errors": list(errors),
                    "text": page.inner_text("body"),
                    "svg": {
                        "width": box["width"] if box else 0,
                        "height": box["height"] if box else 0,
                        "marks": page.locator("svg circle").count(),
                    },
                    "violations": violations,
                }
            )
        browser.close()
    print(json.dumps(report))


main()
