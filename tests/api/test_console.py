"""The web console in a real headless Chromium (Debian's `chromium`, driven
by Playwright with its executable path; no browser is downloaded) against a
`--demo` daemon: candles that agree with /market/candles, a book ladder and
an orders table that update live, a halt button that needs the admin key.
Screenshots go to $ENGINE_TEST_ARTIFACTS (default tests/artifacts/console)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.demo import Demo, demo_daemon

BOOK = "binance:spot:BTC/USDT"
ARTIFACTS = Path(os.environ.get("ENGINE_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / "artifacts")) / "console"


def _chromium() -> str:
    found = os.environ.get("ENGINE_CHROMIUM") or shutil.which("chromium") or \
        shutil.which("chromium-browser")
    if not found:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is missing: tools/ci_setup.sh installs Debian's chromium")
        pytest.skip("chromium not installed (apt-get install chromium)")
    return found


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with demo_daemon(tmp_path_factory.mktemp("demo-console")) as d:
        yield d


@pytest.fixture(scope="module")
def browser():  # playwright's types
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright (the test extra) is not installed")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=executable, headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield b
        b.close()


def _open(browser, demo: Demo, width: int, height: int):
    # bypass_csp: the page's own CSP forbids eval, which Playwright's waits use.
    page = browser.new_page(viewport={"width": width, "height": height}, bypass_csp=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(demo.url + "/")
    page.fill("#key", demo.read_key)
    page.click("#key-form button")
    page.wait_for_function("document.querySelector('#stream').textContent === 'stream: live'",
                           timeout=60_000)
    return page, errors


def _candle_pixels(page) -> dict[str, int]:
    """Up (teal) and down (red) candle pixels on the chart's canvas."""
    return page.evaluate("""() => {
      const c = document.querySelector('#candles canvas');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let up = 0, down = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i] === 0x26 && d[i + 1] === 0xa6 && d[i + 2] === 0x9a) up++;
        if (d[i] === 0xef && d[i + 1] === 0x53 && d[i + 2] === 0x50) down++;
      }
      return {up, down};
    }""")


def test_console_candles_book_orders_and_halt(browser, demo: Demo) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = _open(browser, demo, 1280, 800)
    try:
        # Candles: the chart draws what /market/candles says.
        page.wait_for_function("Number(document.querySelector('#candles').dataset.candles) > 0",
                               timeout=60_000)
        drawn = int(page.get_attribute("#candles", "data-candles"))
        last_open_ns = int(page.get_attribute("#candles", "data-last-open-ns"))
        shown_close = float(page.get_attribute("#candles", "data-last-close"))
        api = demo.json(f"/market/candles/{BOOK}", interval="1m")["candles"][-120:]
        traded = [c for c in api if c["open"] is not None]
        same = [c for c in traded if c["open_ns"] == last_open_ns]
        assert same, (last_open_ns, traded[-3:])
        assert len(traded) >= drawn - 1 and drawn >= 1
        if same[0] is not traded[-1]:  # a new minute began between the two reads
            assert traded[-2]["open_ns"] == last_open_ns
        else:
            assert same[0]["close"] == pytest.approx(shown_close) or traded[-1]["trades"] > 0
        pixels = _candle_pixels(page)
        # Rising candles are drawn teal, falling ones red, as the data says (finished
        # candles only: the forming one may have turned since the chart was drawn).
        finished = [c for c in traded if c["open_ns"] < last_open_ns]
        assert pixels["up"] + pixels["down"] > 10, pixels
        if any(c["close"] >= c["open"] for c in finished):
            assert pixels["up"] > 10, (pixels, finished)
        if any(c["close"] < c["open"] for c in finished):
            assert pixels["down"] > 10, (pixels, finished)
        # Grid levels and the summary line name them.
        assert "grid levels" in page.inner_text("#candle-summary")
        # The book ladder updates live (the ladder's version moves) with asks above bids.
        page.wait_for_selector("#ladder tbody tr.bid", timeout=30_000)
        first = page.get_attribute("#ladder tbody", "data-version")
        page.wait_for_function(
            f"document.querySelector('#ladder tbody').dataset.version !== '{first}'",
            timeout=30_000)
        ladder = page.evaluate("""() => {  // one read: the ladder is redrawn every push
          const px = (sel) => [...document.querySelectorAll(sel)]
            .map(td => Number(td.textContent.replaceAll(',', '')));
          return {asks: px('#ladder tr.ask td:first-child'), bids: px('#ladder tr.bid td:first-child')};
        }""")
        asks, bids = ladder["asks"], ladder["bids"]
        assert asks and bids
        assert asks == sorted(asks, reverse=True) and bids == sorted(bids, reverse=True)
        assert asks[-1] > bids[0]  # best ask above best bid, asks drawn above the bids
        # The orders table shows the grid's open orders as /orders does.
        rows = page.locator("#orders tbody tr")
        assert rows.count() >= 2
        shown = set(rows.evaluate_all("rs => rs.map(r => r.dataset.id)"))
        api_ids = {o["client_order_id"] for o in demo.json("/orders")["orders"]}
        assert shown & api_ids
        page.screenshot(path=str(ARTIFACTS / "console-1280x800.png"), full_page=True)

        # Halt: the button asks for the admin key; a read key is refused.
        page.click("#halt")
        page.fill("#admin-key", demo.read_key)
        page.click("#halt-confirm")
        page.wait_for_function("document.querySelector('#halt-error').textContent.includes('403')")
        assert demo.json("/strategies")["halted"] is False
        page.fill("#admin-key", demo.admin_key)
        page.click("#halt-confirm")
        page.wait_for_function("document.querySelector('#message').textContent.startsWith('Halted')",
                               timeout=30_000)
        assert demo.json("/strategies")["halted"] is True
        # The orders table empties live as the cancels land (pushed over /ws).
        page.wait_for_function("document.querySelectorAll('#orders tbody tr').length === 0",
                               timeout=60_000)
        page.wait_for_function("document.querySelector('#health').textContent.includes('degraded')",
                               timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "console-halted.png"), full_page=True)
        assert not errors, errors
    finally:
        page.close()


def test_console_usable_at_phone_width(browser, demo: Demo) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page, errors = _open(browser, demo, 390, 844)
    try:
        page.wait_for_selector("#ladder tbody tr.bid", timeout=30_000)
        page.wait_for_function("Number(document.querySelector('#candles').dataset.candles) > 0",
                               timeout=60_000)
        page.screenshot(path=str(ARTIFACTS / "console-390x844.png"), full_page=True)
        # One column, nothing wider than the screen.
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
          .filter(e => e.getBoundingClientRect().right > 391)
          .slice(0, 5).map(e => e.tagName + '#' + e.id + '.' + e.className)""")
        overflow = page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 390, (overflow, wide)
        box = page.locator("#candles canvas").bounding_box()
        assert box is not None and box["width"] <= 390 and box["width"] > 250
        assert page.locator("#halt").is_visible()
        assert not errors, errors
    finally:
        page.close()
