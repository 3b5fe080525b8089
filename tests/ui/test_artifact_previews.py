"""Artifact previews in a real browser: only PNG, JPEG, GIF and WebP bytes that prove it are
previewed, and no object URL the sidebar makes runs script in JupyterLab's origin when
opened in a tab (an SVG blob did: it could read notebooks and start kernels as the user)."""

from __future__ import annotations

import re

import pytest

from .ui_support import PANEL, PWN_MARK, RASTERS, open_lab, open_sidebar, screenshot

pytestmark = pytest.mark.slow

# Every object URL the sidebar makes, with the type of its blob; the real function still
# runs. Other extensions in the same JupyterLab (catboost's widget makes a script blob) are
# told apart by the call's stack.
RECORD_OBJECT_URLS = """(() => {
  const made = URL.createObjectURL.bind(URL);
  window.__objectURLs = [];
  URL.createObjectURL = object => {
    const url = made(object);
    if (/\\/extensions\\/jupyter-mlops\\//.test(new Error().stack || '')) {
      window.__objectURLs.push({ url, type: object.type });
    }
    return url;
  };
})()"""
OPAQUE = "application/octet-stream"
ARTIFACTS = [*RASTERS, "script.svg", "svg-labelled.png", "page.html", "polyglot.gif"]


def open_previews_run(page, lab):
    """The run detail of the previews run, once every preview it starts has settled."""
    from playwright.sync_api import expect

    page.context.add_init_script(RECORD_OBJECT_URLS)
    open_lab(page, lab)
    open_sidebar(page)
    panel = page.locator(PANEL)
    panel.locator("select[aria-label='Experiment']").select_option("previews")
    panel.locator(".jp-mlops-run-name", has_text="previews").click()
    detail = panel.locator(".jp-mlops-runs .jp-mlops-detail")
    expect(detail.locator("li.jp-mlops-artifact")).to_have_count(len(ARTIFACTS))
    page.wait_for_function("""() => {
      const items = [...document.querySelectorAll('li.jp-mlops-artifact')];
      return items.every(item => item.dataset.preview !== 'loading')
        && [...document.querySelectorAll('img.jp-mlops-preview')].every(img => img.src);
    }""")
    return detail


def artifact(detail, name: str):
    return detail.locator("li.jp-mlops-artifact").filter(
        has=detail.page.locator("button.jp-mlops-link", has_text=name)).first


def script_ran(page) -> str | None:
    return page.evaluate(f"() => localStorage.getItem('{PWN_MARK}')")


def test_no_object_url_runs_script_when_opened_in_a_tab(page, lab, seeded_store):
    asked: list[str] = []
    page.context.on("request", lambda request: PWN_MARK in request.url
                    and asked.append(request.url))
    detail = open_previews_run(page, lab)
    assert script_ran(page) is None

    # Downloading each artifact makes an object URL too.
    for name in ARTIFACTS:
        before = page.evaluate("() => window.__objectURLs.length")
        with page.expect_download():
            artifact(detail, name).locator("button.jp-mlops-link").click()
        page.wait_for_function(f"() => window.__objectURLs.length > {before}")

    made = page.evaluate("() => window.__objectURLs")
    opened = page.context.new_page()
    for entry in made:
        try:
            opened.goto(entry["url"])
        except Exception as error:  # an opaque blob is downloaded, not shown
            assert "Download is starting" in str(error), error
    opened.close()

    assert script_ran(page) is None
    assert asked == []
    types = {entry["type"] for entry in made}
    assert types <= {"image/png", "image/jpeg", "image/gif", "image/webp", OPAQUE}, types
    assert [entry["type"] for entry in made].count(OPAQUE) == len(ARTIFACTS)
    assert page.errors == []


def test_only_checked_rasters_are_previewed(page, lab, seeded_store):
    from playwright.sync_api import expect

    detail = open_previews_run(page, lab)
    for name in RASTERS:
        item = artifact(detail, name)
        expect(item).to_have_attribute("data-preview", "shown")
        image = item.locator("img.jp-mlops-preview")
        expect(image).to_have_attribute("src", re.compile(r"^blob:"))
        page.wait_for_function("image => image.complete && image.naturalWidth === 24",
                               arg=image.element_handle())
    # A GIF header before HTML passes the check; typed image/gif it does not decode.
    broken = artifact(detail, "polyglot.gif")
    expect(broken).to_have_attribute("data-preview", "broken")
    expect(broken).to_contain_text("No preview")
    # SVG bytes labelled PNG: the magic bytes say otherwise.
    refused = artifact(detail, "svg-labelled.png")
    expect(refused).to_have_attribute("data-preview", "refused")
    expect(refused).to_contain_text("No preview")
    # Not raster types: not even fetched.
    for name in ("script.svg", "page.html"):
        item = artifact(detail, name)
        assert item.get_attribute("data-preview") is None
        expect(item.locator("img")).to_have_count(0)
    expect(detail.locator("img.jp-mlops-preview")).to_have_count(len(RASTERS))
    screenshot(page, "ui-12-artifact-previews")
    made = page.evaluate("() => window.__objectURLs.map(entry => entry.type)")
    assert sorted(made) == sorted(["image/png", "image/jpeg", "image/gif", "image/webp",
                                   "image/gif"])
    assert script_ran(page) is None
    assert page.errors == []


def test_preview_urls_are_revoked_when_the_run_is_left(page, lab, seeded_store):
    detail = open_previews_run(page, lab)
    sources = page.evaluate("() => window.__objectURLs.map(entry => entry.url)")
    assert len(sources) == len(RASTERS) + 1  # and the GIF header before HTML
    readable = "urls => Promise.all(urls.map(url => fetch(url).then(() => true, () => false)))"
    assert page.evaluate(readable, sources) == [True] * len(sources)
    detail.locator("button.jp-mlops-back").click()
    page.wait_for_function(f"async urls => !(await ({readable})(urls)).some(Boolean)",
                           arg=sources)
    assert page.errors == []
