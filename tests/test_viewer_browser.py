"""End to end in headless Chromium (Debian's package, driven by Playwright): the four pages as a user
works them. Frames arrive while a slider is dragged, one request at a time, and the last value wins;
Task 1 draws the picked colour (grey included); Task 2 gives every object one look; Task 3 changes its
background with "New scene"; every visible control acts; the page fits 800 px; a bad class table is a
message beside the last good picture; downloads equal the CLI's files byte for byte.

No test waits for a guessed time: each waits for the page to say what it did (``fb-frame`` events,
``data-rendered``, the loading indicator).

Skipped where chromium is missing, except in CI (CI=true), where that is a failure: `make test`
installs it.
"""

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request

import pytest

from fakeballoons.viewer.app import HEADLESS_CHROMIUM_FLAGS, running_server

pytestmark = pytest.mark.slow  # a headless browser per test: about 40 s in all (make test runs it)

CHROMIUM = shutil.which("chromium")

if CHROMIUM is None:
    if os.environ.get("CI"):
        pytest.fail("chromium is missing in CI; `make test` should have installed it", pytrace=False)
    pytest.skip("chromium is not installed (apt-get install chromium)", allow_module_level=True)

# Before the page's own script: count /api/frame requests in flight, and keep every frame shown.
INSTRUMENT = """
window.__frames = []; window.__inflight = 0; window.__maxInflight = 0;
document.addEventListener('fb-frame', (e) => window.__frames.push(e.detail));
const realFetch = window.fetch;
window.fetch = async (url, ...rest) => {
  const counted = String(url).startsWith('/api/frame');
  if (counted) { window.__inflight++; window.__maxInflight = Math.max(window.__maxInflight, window.__inflight); }
  try { return await realFetch(url, ...rest); } finally { if (counted) window.__inflight--; }
};
"""


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


def open_page(browser, server, width=1400, height=900):
    context = browser.new_context(accept_downloads=True, viewport={"width": width, "height": height})
    context.add_init_script(INSTRUMENT)
    page = context.new_page()
    page.goto(server + "/")
    wait_rendered(page, 1)
    return page


@pytest.fixture
def page(browser, server):
    page = open_page(browser, server)
    yield page
    page.context.close()


def rendered(page) -> int:
    return int(page.evaluate("Number(document.body.dataset.rendered || 0)"))


def wait_rendered(page, n):
    page.wait_for_function(f"Number(document.body.dataset.rendered || 0) >= {n}", timeout=60_000)


def wait_idle(page):
    page.wait_for_function("document.getElementById('loading').hidden", timeout=60_000)


def picture(page, selector="#picture") -> bytes:
    """The PNG on screen (the page shows frames as data: URLs)."""
    src = page.get_attribute(selector, "src")
    assert src.startswith("data:image/png;base64,") and page.evaluate(
        f"document.querySelector('{selector}').naturalWidth") > 0
    return base64.b64decode(src.split(",", 1)[1])


def change(page, action) -> bytes:
    """Do something in the page and wait until it has drawn the result at full size; the new picture."""
    n = rendered(page)
    action()
    wait_rendered(page, n + 1)
    wait_idle(page)
    assert page.is_hidden("#error"), page.text_content("#error")
    return picture(page)


def set_value(page, selector, value):
    """Set a control's value as a user does: the change event bubbles."""
    page.eval_on_selector(selector, "(el, v) => { el.value = v; el.dispatchEvent(new Event('change', "
                                    "{bubbles: true})); }", value)


def last_frame(page) -> dict:
    return page.evaluate("window.__frames[window.__frames.length - 1]")


def pixels(page, selector="#picture") -> dict:
    """Of the picture on screen: how many pixels are not grey (r, g, b not all equal), the brightest."""
    return page.evaluate("""(sel) => {
        const img = document.querySelector(sel), c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        let coloured = 0, brightest = 0;
        for (let i = 0; i < d.length; i += 4) {
          if (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2]) coloured++;
          brightest = Math.max(brightest, d[i], d[i + 1], d[i + 2]);
        }
        return {coloured, brightest};
    }""", selector)


# ---------------------------------------------------------------------------------------------- live


def test_frames_arrive_during_a_drag_and_the_release_draws_full_size(page):
    """Mouse down on the elongation slider, move, wait for a preview while the button is still held
    (it never comes if the page draws only on release), release, and the full frame shows the value
    the slider ended on. At most one frame request is ever in flight."""
    box = page.locator("#elongation").bounding_box()
    y, x = box["y"] + box["height"] / 2, box["x"] + box["width"] / 2
    page.evaluate("window.__frames = []; window.__maxInflight = 0")
    page.mouse.move(x, y)
    page.mouse.down()
    for step in (1, 2, 3):
        page.mouse.move(x + 12 * step, y)
        page.wait_for_function(f"window.__frames.filter((f) => f.preview).length >= {step}", timeout=60_000)
        assert page.get_attribute("#picture", "class") == "preview"
    page.mouse.move(x + 60, y)
    n = rendered(page)
    page.mouse.up()
    wait_rendered(page, n + 1)
    wait_idle(page)
    frames = page.evaluate("window.__frames")
    previews = [f for f in frames if f["preview"]]
    assert len(previews) >= 3 and all(re.search(r"[?&]?size=(64|128|256)&", f["query"]) for f in previews)
    assert not frames[-1]["preview"] and "size=512" in frames[-1]["query"]
    assert f"elongation={page.input_value('#elongation')}&" in frames[-1]["query"]
    assert page.evaluate("document.getElementById('picture').naturalWidth") == 512
    assert page.evaluate("window.__maxInflight") == 1


def test_rapid_changes_settle_on_the_last_one(page):
    """Changes faster than renders: the indicator clears, and the picture is the last settings'."""
    page.click("[data-view=full]")
    page.select_option("#size", "256")
    set_value(page, "#seed", "5")
    set_value(page, "#index", "4")
    page.wait_for_function("window.__frames.some((f) => !f.preview && f.query.includes('seed=5&index=4'))",
                           timeout=60_000)
    wait_idle(page)
    query = last_frame(page)["query"]
    assert "seed=5&index=4" in query and "size=256" in query and page.evaluate("window.__maxInflight") == 1
    params = query.replace("&label=true", "")
    with urllib.request.urlopen(f"{page.url.split('#')[0]}api/render.png?{params}") as resp:
        assert picture(page) == resp.read()


def test_loading_indicator_while_rendering(page):
    held = []
    page.route("**/api/frame*", lambda route: held.append(route))
    page.select_option("#noise", "sc")
    page.wait_for_function("!document.getElementById('loading').hidden")
    assert page.is_visible("#loading")
    n = rendered(page)
    for route in held:
        route.continue_()
    page.unroute("**/api/frame*")
    wait_rendered(page, n + 1)
    wait_idle(page)


def wait_full_frame(page):
    """Wait until nothing is in flight and the picture on screen is a full-size frame, not a preview."""
    page.wait_for_function("document.getElementById('loading').hidden && "
                           "!document.getElementById('picture').classList.contains('preview')", timeout=60_000)


def test_a_drag_that_ends_where_it_started_ends_on_the_full_frame(page):
    """Press on the slider (a full frame of that value), then drag away (a preview) and back to the same
    pixel before releasing: the full frame of the value comes back in place of the preview."""
    box = page.locator("#elongation").bounding_box()
    y, x = box["y"] + box["height"] / 2, box["x"] + box["width"] / 3
    page.mouse.click(x, y)
    wait_full_frame(page)
    start, full = page.input_value("#elongation"), picture(page)
    page.evaluate("window.__frames = []")
    page.mouse.down()
    page.mouse.move(x + 30, y)
    page.wait_for_function("window.__frames.some((f) => f.preview)", timeout=60_000)
    page.mouse.move(x, y)
    page.mouse.up()
    wait_full_frame(page)
    assert page.input_value("#elongation") == start and picture(page) == full
    assert page.evaluate("document.getElementById('picture').naturalWidth") == 512


@pytest.mark.parametrize("again", ["tab", "preset", "noise"])
def test_choosing_what_is_already_chosen_after_a_slow_render_ends_on_the_full_frame(page, again):
    """After a full frame slower than 250 ms a click draws a preview first; clicking the open tab or
    choosing the preset or noise already chosen must still end on the full frame, not on a preview."""
    full = change(page, lambda: page.click("[data-view=prototypes]"))
    page.evaluate("window.fakeballoons.state.lastFullMs = 1000")  # as after a render slower than 250 ms
    if again == "tab":
        page.click("[data-view=prototypes]")
    elif again == "preset":
        page.select_option("#preset", "report")
    else:
        page.select_option("#noise", "perlin")
    wait_full_frame(page)
    assert picture(page) == full and page.is_hidden("#error")


def test_an_error_goes_when_the_last_good_value_is_typed_back(page):
    """A refused class table, then the value it had typed back: the message, the dimmed picture and
    the red cell go, and the picture is that of the good value."""
    good = change(page, lambda: page.click("[data-view=prototypes]"))
    cell = "#class-table tbody tr:nth-child(2) [data-field=elongation]"
    before = page.input_value(cell)
    set_value(page, cell, "3")
    page.wait_for_function("!document.getElementById('error').hidden", timeout=60_000)
    assert page.get_attribute(cell, "aria-invalid") == "true"
    set_value(page, cell, before)
    page.wait_for_function("document.getElementById('error').hidden", timeout=60_000)
    wait_idle(page)
    assert page.get_attribute(cell, "aria-invalid") is None and "stale" not in page.get_attribute("#picture", "class")
    assert picture(page) == good


def test_a_link_with_settings_restores_the_view(browser, server):
    """The address holds the view's settings: a page opened from it shows the same controls and asks
    for the same frame; a change made there is in its address at once."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.add_init_script(INSTRUMENT)
    page = context.new_page()
    table = json.dumps([["ellipsoid", "60", "50", "0.5", "0.05", "5", "5", "1"]])
    page.goto(f"{server}/#view=full&noise=sc&size=256&seed=3&index=2&fix-bg=1&bg-scale=4.5&overlay=1"
              f"&classes={urllib.parse.quote(table)}")
    wait_rendered(page, 1)
    wait_idle(page)
    assert page.evaluate("document.querySelector('.tab.active').dataset.view") == "full"
    assert (page.input_value("#noise"), page.input_value("#size"), page.input_value("#seed")) == ("sc", "256", "3")
    assert page.is_checked("#fix-bg") and page.input_value("#bg-scale") == "4.5" and page.is_checked("#overlay")
    assert page.input_value("#class-table tbody tr:nth-child(1) [data-field=hue]") == "60"
    query = last_frame(page)["query"]
    for part in ("noise=sc", "size=256", "seed=3", "index=2", "background_noise_scale=4.5", "picture=overlay"):
        assert part in query.split("&"), (part, query)
    change(page, lambda: set_value(page, "#index", "7"))
    shared = page.url
    assert "index=7" in shared and "seed=3" in shared
    again = context.new_page()
    again.goto(shared)
    wait_rendered(again, 1)
    wait_idle(again)
    assert last_frame(again)["query"] == last_frame(page)["query"] and picture(again) == picture(page)
    context.close()


# ---------------------------------------------------------------------------------- the 2022 pages


def test_task1_picks_any_colour_grey_included(page):
    red = pixels(page)
    assert red["coloured"] > 1000
    grey = change(page, lambda: set_value(page, "#colour", "#808080"))
    seen = pixels(page)
    assert seen["coloured"] == 0 and seen["brightest"] > 60  # lit grey, not black and not the pure hue
    obj = last_frame(page)
    assert "saturation=0.000000" in obj["query"] and "kd=0.8&ks=0.3" in obj["query"]
    dark = change(page, lambda: set_value(page, "#colour", "#402020"))
    assert len({grey, dark}) == 2 and pixels(page)["coloured"] > 1000


def test_single_object_controls_change_the_picture(page):
    first = picture(page)
    after = [change(page, lambda: set_value(page, "#elongation", "0.85")),
             change(page, lambda: set_value(page, "#noise-scale", "3")),
             change(page, lambda: page.select_option("#noise", "sc")),
             change(page, lambda: page.select_option("#shape", "torus")),
             change(page, lambda: set_value(page, "#thickness", "0.6")),
             change(page, lambda: set_value(page, "#pitch", "40")),  # a torus is round about the vertical
             change(page, lambda: set_value(page, "#kd", "0.3"))]
    assert len({first, *after}) == 1 + len(after)


def test_task2_one_look_for_every_object(page):
    change(page, lambda: page.click("[data-view=random]"))
    assert page.is_checked("#shared")
    change(page, lambda: set_value(page, "#colour", "#808080"))
    assert pixels(page)["coloured"] == 0  # the background noise is grey, and every object is grey
    page.wait_for_function("document.querySelectorAll('#scene-params li').length > 2")
    objects = page.evaluate("[...document.querySelectorAll('#scene-params li')].slice(1).map((li) => li.textContent)")
    assert all("sat 0.00" in text for text in objects)
    own = change(page, lambda: page.uncheck("#shared"))
    assert page.is_visible("#class-panel") and page.is_hidden("#look-legend")
    newer = change(page, lambda: page.click("#new-scene"))
    assert page.input_value("#index") == "1" and newer != own


def test_task3_new_scene_changes_the_background(page):
    first = change(page, lambda: page.click("[data-view=prototypes]"))
    scale = last_frame(page)
    newer = change(page, lambda: page.click("#new-scene"))
    assert newer != first and last_frame(page)["query"] != scale["query"]
    drawn = change(page, lambda: page.check("#random-protos"))
    edited = change(page, lambda: set_value(page, "#class-table tbody tr:nth-child(1) [data-field=hue]", "60"))
    assert len({newer, drawn, edited}) == 3
    back = change(page, lambda: page.click("#reset-classes"))
    assert page.input_value("#class-table tbody tr:nth-child(1) [data-field=hue]") == "150" and back != edited


def test_presets_shapes_ground_and_shadows(page):
    change(page, lambda: page.click("[data-view=full]"))
    assert page.is_hidden("#ground") and page.is_hidden("#shadows")  # the report: no ground, light at the eye
    ground = change(page, lambda: page.select_option("#preset", "ground"))
    assert page.is_visible("#ground") and page.is_visible("#shadows") and page.is_checked("#shadows")
    no_shadows = change(page, lambda: page.uncheck("#shadows"))
    no_ground = change(page, lambda: page.uncheck("#ground"))
    shapes = change(page, lambda: page.select_option("#preset", "shapes"))
    posed = change(page, lambda: page.select_option("#rotation", "vertical"))  # the preset's is uniform
    assert len({ground, no_shadows, no_ground, shapes, posed}) == 5
    change(page, lambda: page.select_option("#preset", "many-classes"))
    assert page.is_hidden("#class-table-wrap") and page.is_visible("#generated-classes")
    assert page.locator("#legend li").count() >= 3


# ------------------------------------------------------------------------------- what is on screen


# Of each view: a control that must show, and controls that must not (they would do nothing).
SHOWN = {"single": ("#colour", "#kd", "#shininess", "#texture"),
         "random": ("#shared", "#colour", "#seed", "#new-scene", "#fix-bg"),
         "prototypes": ("#random-protos", "#seed", "#new-scene", "#class-table", "#preset"),
         "full": ("#show-label", "#overlay", "#download-label", "#legend", "#label-picture", "#fix-count")}
HIDDEN = {"single": ("#random-protos", "#seed", "#preset", "#class-panel", "#fix-bg", "#show-label", "#legend",
                     "#thickness", "#yaw", "#pitch", "#roll"),
          "random": ("#random-protos", "#kd", "#yaw", "#class-panel", "#show-label", "#shadows", "#ground",
                     "#rotation"),  # every object is the one look, a sphere: a pose changes nothing
          "prototypes": ("#shared", "#colour", "#fix-bg", "#fix-count", "#show-label", "#rotation", "#kd"),
          "full": ("#random-protos", "#shared", "#colour", "#kd", "#scene-params")}

# Each visible, enabled control of a view is given other values in turn; for one of them at least the
# frame it asks for must show something else (picture or label map), or the control does nothing
# where it is shown. A value the server refuses does not count as a change.
EVERY_CONTROL_ACTS = """async () => {
  const fb = window.fakeballoons;
  const frame = async () => {
    const r = await fetch('/api/frame?' + fb.frameQuery(64));
    if (!r.ok) return null;
    const d = await r.json(); return d.image + '|' + d.label;
  };
  const visible = (el) => el.offsetParent !== null && !el.disabled;
  const controls = [...document.querySelectorAll('#controls input, #controls select, #class-table input')]
    .filter(visible).filter((el) => el.id !== 'size');
  const candidates = (el) => {
    const v = el.value, x = Number(v), span = Number(el.max) - Number(el.min);
    if (el.type === 'checkbox') return [!el.checked];
    if (el.tagName === 'SELECT') return [...el.options].map((o) => o.value).filter((o) => o !== v);
    if (el.type === 'color') return ['#00ff00', '#3050a0'];
    if (el.type === 'range') return [0.37, 0.63, 0, 1].map((f) => String(Number(el.min) + f * span));
    if (el.type === 'number') return [String(x + 1), String(x + 7)];
    if (v !== '' && !Number.isNaN(x)) return [x * 0.5, x * 0.1, x * 2, x + 1].map(String);
    return ['box', 'cone', 'torus'];
  };
  const before = await frame(), idle = [];
  for (const el of controls) {
    const saved = el.type === 'checkbox' ? el.checked : el.value;
    let acts = false;
    for (const value of candidates(el)) {
      if (el.type === 'checkbox') el.checked = value; else el.value = value;
      const after = await frame();
      if (after !== null && after !== before) { acts = true; break; }
    }
    if (!acts) idle.push(el.id || `${el.closest('tr').rowIndex}:${el.dataset.field}`);
    if (el.type === 'checkbox') el.checked = saved; else el.value = saved;
  }
  return {idle, count: controls.length};
}"""


@pytest.mark.parametrize("view", ["single", "random", "prototypes", "full"])
def test_controls_show_only_where_they_act(page, view):
    if view != "single":
        change(page, lambda: page.click(f"[data-view={view}]"))
    for selector in SHOWN[view]:
        assert page.is_visible(selector), selector
    for selector in HIDDEN[view]:
        assert page.is_hidden(selector), selector
    result = page.evaluate(EVERY_CONTROL_ACTS)
    assert result["idle"] == [] and result["count"] >= 5, result
    if view == "single":  # the report's object is a sphere; poses act once it is not
        change(page, lambda: set_value(page, "#elongation", "0.8"))
        assert page.is_visible("#yaw") and page.is_visible("#roll")
        change(page, lambda: page.select_option("#shape", "torus"))
        assert page.is_hidden("#yaw") and page.is_visible("#pitch") and page.is_visible("#thickness")
        result = page.evaluate(EVERY_CONTROL_ACTS)
        assert result["idle"] == [], result
    if view == "random":  # an elongated look turns
        change(page, lambda: set_value(page, "#elongation", "0.8"))
        assert page.is_visible("#rotation")
        change(page, lambda: page.uncheck("#shared"))
        assert page.is_visible("#rotation") and page.is_visible("#class-panel") and page.is_hidden("#colour")
        result = page.evaluate(EVERY_CONTROL_ACTS)
        assert result["idle"] == [], result
    if view in ("random", "full"):  # an override's slider moves only while its box is ticked
        assert page.is_disabled("#bg-scale") and page.is_disabled("#num-objects")
        page.check("#fix-bg")
        assert page.is_enabled("#bg-scale")


@pytest.mark.parametrize("view", ["single", "random", "prototypes", "full"])
def test_800_pixels_wide_has_no_horizontal_scroll(browser, server, view):
    page = open_page(browser, server, width=800, height=900)
    if view != "single":
        change(page, lambda: page.click(f"[data-view={view}]"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 800
    box = page.locator("#picture").bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 800
    page.context.close()


def test_wide_screen_shows_image_and_label_map_side_by_side_above_the_fold(browser, server):
    page = open_page(browser, server, width=1400, height=1000)
    change(page, lambda: page.click("[data-view=full]"))
    image, label = page.locator("#picture").bounding_box(), page.locator("#label-picture").bounding_box()
    assert label["x"] >= image["x"] + image["width"] and abs(label["y"] - image["y"]) < 1
    assert label["y"] + label["height"] <= 1000 and label["x"] + label["width"] <= 1400
    page.context.close()


def test_legend_names_the_classes_and_the_ignore_band(page):
    change(page, lambda: page.click("[data-view=full]"))
    items = page.evaluate("[...document.querySelectorAll('#legend li')].map((li) => li.textContent)")
    assert items[0].startswith("0 background") and items[-1].startswith("255 ignore")
    assert [i.split()[0] for i in items[1:-1]] == ["1", "2", "3"]
    assert page.evaluate("getComputedStyle(document.querySelector('#legend li:last-child .swatch')).backgroundColor") \
        == "rgb(255, 255, 255)"


def test_a_bad_class_table_is_a_message_beside_the_last_picture(page):
    good = change(page, lambda: page.click("[data-view=prototypes]"))
    n = page.evaluate("window.__frames.length")
    set_value(page, "#class-table tbody tr:nth-child(2) [data-field=elongation]", "3")
    page.wait_for_function("!document.getElementById('error').hidden", timeout=60_000)
    wait_idle(page)
    assert page.text_content("#error").startswith("Not drawn: class 2 elongation: must be <= 1")
    assert page.get_attribute("#class-table tbody tr:nth-child(2) [data-field=elongation]", "aria-invalid") == "true"
    assert picture(page) == good and "stale" in page.get_attribute("#picture", "class")
    assert page.evaluate("window.__frames.length") == n
    error, image = page.locator("#error").bounding_box(), page.locator("#picture").bounding_box()
    assert error["y"] + error["height"] <= image["y"] + 1 and page.is_visible("#picture")  # in view, above it
    fixed = change(page, lambda: set_value(page, "#class-table tbody tr:nth-child(2) [data-field=elongation]", "0.4"))
    assert fixed != good and "stale" not in page.get_attribute("#picture", "class")


def test_controls_that_need_a_word_have_one(page):
    """Hints (title) on the pose options, the solid texture, the weight column and the object list;
    tabs are tabs with their selection; the override sliders have names; a ground hides the background
    noise, so its override is off there; a 512-px picture shown smaller is scaled smoothly."""
    assert page.get_attribute("#texture option[value=solid]", "title")
    assert page.evaluate("document.querySelector('.tab.active').getAttribute('aria-selected')") == "true"
    assert page.evaluate("[...document.querySelectorAll('.tab')].map((b) => b.getAttribute('role'))") == ["tab"] * 4
    change(page, lambda: page.click("[data-view=random]"))
    assert page.evaluate("[...document.querySelectorAll('.tab')].map((b) => b.getAttribute('aria-selected'))") \
        == ["false", "true", "false", "false"]
    assert page.get_attribute("#scene-params", "title")
    assert page.get_attribute("#bg-scale", "aria-label") and page.get_attribute("#num-objects", "aria-label")
    change(page, lambda: page.click("[data-view=full]"))
    assert all(page.evaluate("[...document.querySelectorAll('#rotation option')].map((o) => o.title)"))
    assert page.get_attribute("#class-table tbody tr:nth-child(1) [data-field=weight]", "title")
    assert page.is_enabled("#fix-bg")
    change(page, lambda: page.select_option("#preset", "ground"))
    assert page.is_disabled("#fix-bg") and page.is_disabled("#bg-scale")
    change(page, lambda: page.uncheck("#ground"))
    assert page.is_enabled("#fix-bg")
    page.set_viewport_size({"width": 700, "height": 900})
    assert page.evaluate("document.getElementById('picture').getBoundingClientRect().width") < 512
    assert page.evaluate("getComputedStyle(document.getElementById('picture')).imageRendering") == "auto"


def test_tab_visits_the_controls_before_the_class_table(page):
    change(page, lambda: page.click("[data-view=prototypes]"))
    page.focus("#about-button")  # the last button of the header
    order = []
    for _ in range(40):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.dataset.field || ''"))
    assert "new-scene" in order and "hue" in order and order.index("new-scene") < order.index("hue"), order
    assert order[0] == "noise", order


def test_about_says_how_this_differs_from_the_2022_pages(page):
    page.click("#about-button")
    text = page.text_content("#about")
    assert "Differences from the 2022 pages" in text and "float32" in text and "Highlights" in text


# --------------------------------------------------------------------------------------- downloads


def test_full_scene_downloads_equal_the_cli(page, tmp_path):
    change(page, lambda: page.click("[data-view=full]"))
    assert page.is_visible("#label-picture")
    change(page, lambda: page.select_option("#size", "256"))
    change(page, lambda: set_value(page, "#seed", "3"))
    shown = change(page, lambda: set_value(page, "#index", "2"))
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
    assert files["#download-image"].read_bytes() == (tmp_path / "cli.png").read_bytes() == shown
    assert files["#download-label"].read_bytes() == (tmp_path / "cli.label.png").read_bytes() \
        == picture(page, "#label-picture")
    # the saved config drives the CLI to the same picture
    assert json.loads(files["#save-config"].read_text())["height"] == 256
    subprocess.run([exe, "render", str(tmp_path / "cfg.png"), "--seed", "3", "--index", "2", "--scene",
                    str(files["#save-config"])], check=True)
    assert (tmp_path / "cfg.png").read_bytes() == (tmp_path / "cli.png").read_bytes()
    over = change(page, lambda: page.check("#overlay"))
    plain = change(page, lambda: page.uncheck("#overlay"))
    assert over != plain
    change(page, lambda: page.uncheck("#show-label"))
    assert page.is_hidden("#label-picture")


def test_bench_view_measures_a_drag():
    """`fakeballoons bench view` in its smallest form: one warm-up drag and one timed (numbers only
    reported, never asserted on). A subprocess: Playwright's sync API runs one instance per thread."""
    exe = os.path.join(os.path.dirname(sys.executable), "fakeballoons")
    proc = subprocess.run([exe, "bench", "view", "--view", "single", "--noise", "perlin", "--size", "256",
                           "--scenes", "1", "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    [row] = json.loads(proc.stdout)["results"]
    assert (row["view"], row["noise"], row["size"], row["drags"]) == ("single", "perlin", 256, 1)
    assert row["drag_to_first_frame_ms"] > 0 and row["release_to_full_frame_ms"] > 0
    assert row["preview_px_median"] in (64, 128, 256, 512) and row["preview_px_last"] in (64, 128, 256, 512)
