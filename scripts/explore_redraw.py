"""How long the explore page takes to recompute and redraw after a change, in headless Chromium:
every link given is opened, the lr slider is then moved through 20 stops, and the median and
worst redraw (``document.body.dataset.redrawMs``) are printed with plotly's share of it.

    python scripts/explore_redraw.py lecture '#lr=0.028' '#batch=4&steps=1000' '#steps=10000'

Its results are quoted in docs/explore.md ("How fast"). Needs the dev extras and Chromium.
"""

from __future__ import annotations

import shutil
import statistics
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from lrtrain import explore
from lrtrain.config.schema import load_config

MOVE = """async () => {
  const timed = {}, react = Plotly.react, animate = Plotly.animate;
  const wrap = (name, fn) => function (id, ...rest) {
    const t = performance.now(), out = fn.call(this, id, ...rest);
    timed[name] = (timed[name] || 0) + performance.now() - t;
    return out;
  };
  Plotly.react = wrap("react", react);
  Plotly.animate = wrap("animate", animate);
  const drawn = (n) => new Promise((done) => {
    const check = () => (+document.body.dataset.draws > n ? done() : requestAnimationFrame(check));
    check();
  });
  const slider = document.getElementById("lr-slider"), total = [];
  for (let k = 0; k < 20; k++) {
    const before = +document.body.dataset.draws;
    slider.value = String(+slider.min + ((slider.max - slider.min) * k) / 20);
    slider.dispatchEvent(new Event("input"));
    await drawn(before);
    total.push(+document.body.dataset.redrawMs);
  }
  Plotly.react = react;
  Plotly.animate = animate;
  const calls = Object.values(timed).reduce((a, b) => a + b, 0) / 20;
  return { total, plotly: calls };
}"""


def main(name: str, fragments: list[str]) -> None:
    page = explore(load_config(name, ["device=cpu"]), Path(tempfile.mkdtemp()) / "page.html")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        tab = browser.new_page(viewport={"width": 1300, "height": 1000})
        for fragment in fragments or [""]:
            tab.goto("about:blank")
            tab.goto(page.path.as_uri() + fragment)
            tab.wait_for_function("document.body.dataset.draws === '1'")
            got = tab.evaluate(MOVE)
            times = got["total"]
            print(
                f"{name}{fragment}: median {statistics.median(times):.0f} ms, "
                f"worst {max(times):.0f} ms (plotly's calls {got['plotly']:.0f} ms, before "
                "their frame is drawn)"
            )
        browser.close()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "lecture", sys.argv[2:])
