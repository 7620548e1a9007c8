"""End to end in headless Chromium (Debian's package, driven by Playwright): each view loads, its
controls change the picture, and downloads equal the CLI's files byte for byte.

Skipped where chromium is missing, except in CI (CI=true), where that is a failure: `make test`
installs it.
"""

import os
import shutil
import subprocess
import sys

import pytest

from fakeballoons.viewer.app import HEADLESS_CHROMIUM_FLAGS, running_server

CHROMIUM = shutil.which("chromium")

if CHROMIUM is None:
    if os.environ.get("CI"):
        pytest.fail("chromium is missing in CI; `make test` should have installed it", pytrace=False)
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)


@pytest.fixture(scope="module")
def server():
    with running_server() as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:  # launch() gives every browser a fresh temporary profile directory
        b = p.chromium.launch(executable_path=CHROMIUM, args=list(HEADLESS_CHROMIUM_FLAGS))
        yield b
        b.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(accept_downloads=True, viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.goto(server + "/")
    wait_rendered(page, 1)
    yield page
    context.close()


def rendered(page) -> int:
    return int(page.evaluate("Number(document.body.dataset.rendered || 0)"))


def wait_rendered(page, n):
    page.wait_for_function(f"Number(document.body.dataset.rendered || 0) >= {n}", timeout=60_000)


def picture(page, selector="#picture") -> bytes:
    assert page.evaluate(f"document.querySelector('{selector}').naturalWidth") > 0
    return page.locator(selector).screenshot()


def change(page, action):
    """Do something in the page and wait until it has re-rendered; return the new picture."""
    n = rendered(page)
    action()
    wait_rendered(page, n + 1)
    # An action of two changes starts two loads; the first may count as rendered while the second
    # is still loading (naturalWidth 0). The indicator hides once no load is outstanding.
    page.wait_for_function("document.getElementById('loading').hidden", timeout=60_000)
    assert page.text_content("#error") == ""
    return picture(page)


def set_value(page, selector, value):
    page.eval_on_selector(selector, "(el, v) => { el.value = v; el.dispatchEvent(new Event('change')); }", value)


def test_single_object_view(page):
    assert page.locator("[data-view=single]").get_attribute("class").endswith("active")
    first = picture(page)
    assert page.evaluate("document.getElementById('picture').naturalWidth") == 512
    after_elongation = change(page, lambda: set_value(page, "#elongation", "0.85"))
    after_colour = change(page, lambda: set_value(page, "#colour", "#ff0000"))
    after_noise = change(page, lambda: set_value(page, "#noise-scale", "3"))
    after_sc = change(page, lambda: page.select_option("#noise", "sc"))
    assert len({first, after_elongation, after_colour, after_noise, after_sc}) == 5


def test_random_scene_view(page):
    first = change(page, lambda: page.click("[data-view=random]"))
    page.wait_for_function("document.querySelectorAll('#scene-params li').length > 1")
    newer = change(page, lambda: page.click("#new-scene"))
    assert page.input_value("#index") == "1" and newer != first

    def fix_count():
        page.check("#fix-count")
        set_value(page, "#num-objects", "3")

    change(page, fix_count)
    page.wait_for_function("document.querySelectorAll('#scene-params li').length === 4")  # summary + 3 objects
    bg = change(page, lambda: (page.check("#fix-bg"), set_value(page, "#bg-scale", "2")))
    reseeded = change(page, lambda: set_value(page, "#seed", "77"))
    assert bg != reseeded


def test_class_examples_view(page):
    means = change(page, lambda: page.click("[data-view=prototypes]"))
    drawn = change(page, lambda: page.check("#random-protos"))
    edited = change(page, lambda: set_value(page, "#class-table tbody tr:nth-child(1) [data-field=hue]", "60"))
    assert len({means, drawn, edited}) == 3
    back = change(page, lambda: page.click("#reset-classes"))
    assert page.input_value("#class-table tbody tr:nth-child(1) [data-field=hue]") == "150"
    assert back != edited


def test_full_scene_view_and_downloads_equal_the_cli(page, tmp_path):
    change(page, lambda: page.click("[data-view=full]"))
    assert page.is_visible("#label-picture")
    change(page, lambda: page.select_option("#size", "256"))
    change(page, lambda: set_value(page, "#seed", "3"))
    change(page, lambda: set_value(page, "#index", "2"))
    files = {}
    for link in ("#download-image", "#download-label", "#save-config"):
        with page.expect_download() as info:
            page.click(link)
        path = tmp_path / info.value.suggested_filename
        info.value.save_as(path)
        files[link] = path
    exe = os.path.join(os.path.dirname(sys.executable), "fakeballoons")
    subprocess.run([exe, "render", str(tmp_path / "cli.png"), "--seed", "3", "--index", "2", "--size", "256",
                    "--label-out", str(tmp_path / "cli.label.png")], check=True)
    assert files["#download-image"].read_bytes() == (tmp_path / "cli.png").read_bytes()
    assert files["#download-label"].read_bytes() == (tmp_path / "cli.label.png").read_bytes()
    # the saved config drives the CLI to the same picture
    subprocess.run([exe, "render", str(tmp_path / "cfg.png"), "--seed", "3", "--index", "2", "--scene",
                    str(files["#save-config"])], check=True)
    assert (tmp_path / "cfg.png").read_bytes() == (tmp_path / "cli.png").read_bytes()
    over = change(page, lambda: page.check("#overlay"))
    plain = change(page, lambda: page.uncheck("#overlay"))
    assert over != plain
    change(page, lambda: page.uncheck("#show-label"))
    assert not page.is_visible("#label-picture")


def test_loading_indicator_while_rendering(page):
    held = []
    page.route("**/api/render.png*", lambda route: held.append(route))
    page.select_option("#noise", "sc")
    page.wait_for_function("!document.getElementById('loading').hidden")
    assert page.is_visible("#loading")
    n = rendered(page)
    for route in held:
        route.continue_()
    page.unroute("**/api/render.png*")
    wait_rendered(page, n + 1)
    assert page.is_hidden("#loading")


def test_bad_input_shows_an_error_not_a_broken_page(page):
    change(page, lambda: page.click("[data-view=prototypes]"))
    n = rendered(page)
    set_value(page, "#class-table tbody tr:nth-child(2) [data-field=elongation]", "3")
    wait_rendered(page, n + 1)
    assert "classes[1].elongation" in page.text_content("#error")


def test_rapid_changes_settle_on_the_last_one(page):
    """Changes faster than renders: the indicator must still clear, and the last settings win."""
    page.click("[data-view=full]")
    page.select_option("#size", "256")
    set_value(page, "#seed", "5")
    set_value(page, "#index", "4")
    page.wait_for_function("document.getElementById('loading').hidden && "
                           "document.getElementById('picture').src.includes('index=4')", timeout=60_000)
    import urllib.request

    src = page.evaluate("document.getElementById('picture').src")
    assert "seed=5" in src and "size=256" in src
    with urllib.request.urlopen(src) as resp:
        expected = resp.read()
    shown = page.evaluate("""async () => {
        const img = document.getElementById('picture');
        const r = await fetch(img.src); return Array.from(new Uint8Array(await r.arrayBuffer()));
    }""")
    assert bytes(shown) == expected
