// fakeballoons viewer. Every picture comes from /api/frame (picture, label map, scene and legend of one
// render). While a control moves, frames are drawn at a preview size (PREVIEW pixels at first, then as
// large as keeps the drag live); when it stops, at full size. One request is in flight at a time, and the
// next one is chosen by comparing what is on screen with what the current settings ask for.
"use strict";
const $ = (id) => document.getElementById(id);
const PREVIEW = 128;
const SLOW_MS = 250;  // a full frame slower than this is preceded by a preview after a click
const state = { view: "single", defaults: null, presets: {}, classes: [], lastFullMs: 0, initial: null,
                presetCells: "[]" };

// ------------------------------------------------------------------ colours and class table cells

function hexToHsl(hex) {  // -> [hue degrees, saturation, lightness], the inverse of HSL -> RGB
  const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
  const max = Math.max(r, g, b), min = Math.min(r, g, b), d = max - min, l = (max + min) / 2;
  if (d === 0) return [0, 0, l];
  const s = l <= 0.5 ? d / (max + min) : d / (2 - max - min);
  let h = max === r ? ((g - b) / d) % 6 : max === g ? (b - r) / d + 2 : (r - g) / d + 4;
  h *= 60;
  return [h < 0 ? h + 360 : h, s, l];
}

function formatCell(v) {
  if (v === null || v === undefined) return "";
  if (typeof v !== "object") return String(v);
  if (v.uniform) return `uniform ${v.uniform[0]} ${v.uniform[1]}`;
  if (v.normal) return `normal ${v.normal[0]} ${v.normal[1]}`;
  if (v.choice) return `choice ${v.choice.join(" ")}` + (v.weights ? ` weights ${v.weights.join(" ")}` : "");
  return JSON.stringify(v);
}

function parseCell(text) {  // a number, "uniform a b", "normal m s", "choice a b [weights w1 w2]" or a name
  const t = text.trim();
  const num = (s) => (s !== "" && !Number.isNaN(Number(s)) ? Number(s) : s);
  if (t !== "" && !Number.isNaN(Number(t))) return Number(t);
  const words = t.split(/[\s,]+/).filter((w) => w);
  const kind = (words[0] || "").toLowerCase();
  if ((kind === "uniform" || kind === "normal") && words.length === 3) return { [kind]: words.slice(1).map(num) };
  if (kind === "choice" && words.length > 1) {
    const w = words.indexOf("weights");
    const out = { choice: words.slice(1, w < 0 ? undefined : w).map(num) };
    if (w >= 0) out.weights = words.slice(w + 1).map(num);
    return out;
  }
  return t;  // sent as it is: the server says what is wrong with it
}

const TABLE_HINTS = { weight: "how often the class is drawn, relative to the other classes' weights" };
const TABLE_FIELDS = [["shape", "wide"], ["hue"], ["hue_std"], ["elongation"], ["elongation_std"], ["noise_scale"],
                      ["noise_scale_std"], ["weight"]];

function fillClassTable(classes) {
  state.classes = classes.map((c) => ({ ...c }));
  const body = document.querySelector("#class-table tbody");
  body.innerHTML = "";
  const colours = state.presets[$("preset").value]?.label_colours || [];
  state.classes.forEach((c, k) => {
    const tr = document.createElement("tr");
    const colour = colours[k] ? `rgb(${colours[k].join(",")})` : "transparent";
    tr.innerHTML = `<td><span class="swatch" style="background:${colour}"></span>${k + 1}</td>`;
    for (const [field, cls] of TABLE_FIELDS) {
      const td = document.createElement("td");
      const input = document.createElement("input");
      input.dataset.field = field;
      input.setAttribute("aria-label", `class ${k + 1} ${field}`);
      if (cls) input.className = cls;
      if (field === "shape") input.setAttribute("list", "shape-names");
      if (TABLE_HINTS[field]) input.title = TABLE_HINTS[field];
      const fallback = { shape: "ellipsoid", weight: 1, hue_std: 50, elongation_std: 0.05, noise_scale_std: 5 };
      input.value = formatCell(c[field] ?? fallback[field]);
      td.appendChild(input);
      tr.appendChild(td);
    }
    body.appendChild(tr);
  });
  syncTable();
}

function syncTable() {
  // A spread (±) acts beside a mean given as a number, and on the class examples only when they are
  // drawn from the priors; a weight (how often a class is drawn) never acts on the class examples.
  const examples = state.view === "prototypes", drawn = !examples || $("random-protos").checked;
  document.querySelectorAll("#class-table tbody tr").forEach((tr) => {
    for (const name of ["hue", "elongation", "noise_scale"]) {
      const mean = tr.querySelector(`[data-field=${name}]`), std = tr.querySelector(`[data-field=${name}_std]`);
      std.disabled = !drawn || typeof parseCell(mean.value) !== "number";
    }
    tr.querySelector("[data-field=weight]").disabled = examples;
  });
}

function classTable() {  // the rows as the preset has them, with the table's cells on top
  return [...document.querySelectorAll("#class-table tbody tr")].map((tr, k) => {
    const row = { ...state.classes[k] };
    tr.querySelectorAll("input").forEach((input) => {
      const value = parseCell(input.value);
      // an inactive cell that is not a number stays as the preset has it
      if (!input.disabled || typeof value === "number") row[input.dataset.field] = value;
    });
    return row;
  });
}

// ------------------------------------------------------------------ what acts where

const preset = () => state.presets[$("preset").value] || {};
// Poses that change nothing: every pose of a sphere (an ellipsoid of elongation 0.5), and a turn about
// the vertical of a shape round about it, unless the texture is solid (fixed to the object).
const ROUND_ABOUT_VERTICAL = ["torus", "cone", "capsule", "cylinder"];
const solid = () => $("texture").value === "solid";
const sphere = () => $("shape").value === "ellipsoid" && Number($("elongation").value) === 0.5;
const conditions = {
  "sphere": () => sphere() && !solid(),
  "pose-acts": () => !(sphere() && !solid()),
  "turn-acts": () => !(sphere() || ROUND_ABOUT_VERTICAL.includes($("shape").value)) || solid(),
  "rotation-acts": () => !(state.view === "random" && $("shared").checked && sphere() && preset().texture !== "solid"),
  "look-acts": () => state.view === "single" || $("shared").checked,
  "thickness-acts": () => ["torus", "capsule"].includes($("shape").value),
  "classes-act": () => !(state.view === "random" && $("shared").checked),
  "has-ground": () => preset().ground,
  "on-ground": () => preset().ground && $("ground").checked,  // the ground hides the background noise
  "shadows-act": () => (preset().ground && $("ground").checked) || !preset().light_at_eye,
  "label-shown": () => $("show-label").checked,
  "labels-shown": () => $("show-label").checked || $("overlay").checked,
};

function syncControls() {
  document.querySelectorAll("[class*=for-], [data-when]").forEach((el) => {
    const views = [...el.classList].filter((c) => c.startsWith("for-")).map((c) => c.slice(4));
    const when = el.dataset.when;
    el.hidden = (views.length > 0 && !views.includes(state.view)) || (when !== undefined && !conditions[when]());
  });
  syncTable();
  $("fix-bg").disabled = conditions["on-ground"]();
  $("fix-bg-label").title = $("fix-bg").disabled ? "the ground plane covers the background noise" : "";
  $("bg-scale").disabled = !$("fix-bg").checked || $("fix-bg").disabled;
  $("num-objects").disabled = !$("fix-count").checked;
  $("look-legend").textContent = state.view === "single" ? "Object" : "Look of every object";
  const generated = preset().class_table;
  $("class-table-wrap").hidden = $("reset-classes").hidden = generated;
  $("generated-classes").hidden = !generated;
  $("generated-classes").textContent = generated ? `This preset generates its ${preset().num_classes} classes ` +
    "from a class table; choose another preset to edit classes." : "";
  const [h, s, l] = hexToHsl($("colour").value);
  $("colour-value").textContent = `HSL ${h.toFixed(0)}°, ${(s * 100).toFixed(0)}%, ${(l * 100).toFixed(0)}%`;
  for (const id of ["elongation", "noise-scale", "thickness", "yaw", "pitch", "roll", "kd", "ks", "shininess",
                    "bg-scale", "num-objects"]) {
    const el = $(id), step = el.step.includes(".") ? el.step.split(".")[1].length : 0;
    $(`${id}-value`).textContent = Number(el.value).toFixed(step);
  }
}

// ------------------------------------------------------------------ the query of the current settings

function configParams(size) {  // the scene configuration: what "save config" writes
  const v = state.view, p = new URLSearchParams({ noise: $("noise").value, size: String(size) });
  if (v === "single") {
    if ($("texture").value !== "normal") p.set("texture", $("texture").value);
    return p;
  }
  p.set("preset", $("preset").value);
  if ((v === "random" || v === "full") && conditions["rotation-acts"]() && $("rotation").value) {
    p.set("rotation", $("rotation").value);
  }
  if (conditions["has-ground"]() && !$("ground").checked) p.set("ground", "false");
  if (conditions["shadows-act"]()) p.set("shadows", String($("shadows").checked));
  if (conditions["classes-act"]() && !preset().class_table) p.set("classes", JSON.stringify(classTable()));
  if (v === "random" || v === "full") {
    if ($("fix-bg").checked && !$("fix-bg").disabled) p.set("background_noise_scale", $("bg-scale").value);
    if ($("fix-count").checked) p.set("num_objects", $("num-objects").value);
  }
  return p;
}

function lookParams(p) {
  const [h, s, l] = hexToHsl($("colour").value);
  p.set("hue", h.toFixed(4));
  p.set("saturation", s.toFixed(6));
  p.set("lightness", l.toFixed(6));
  p.set("elongation", $("elongation").value);
  p.set("noise_scale", $("noise-scale").value);
  p.set("shape", $("shape").value);
  if (conditions["thickness-acts"]()) p.set("thickness", $("thickness").value);
}

function params(size) {  // every parameter that acts in the current view, and no other
  const v = state.view, p = configParams(size);
  p.set("view", v === "full" ? "random" : v);
  if (v === "single") {
    lookParams(p);
    for (const id of ["kd", "ks", "shininess", "yaw", "pitch", "roll"]) p.set(id, $(id).value);
    return p;
  }
  p.set("seed", $("seed").value || "0");
  p.set("index", $("index").value || "0");
  if (v === "prototypes" && $("random-protos").checked) p.set("random", "true");
  if (v === "random" && $("shared").checked) {
    p.set("shared", "true");
    lookParams(p);
  }
  return p;
}

const fullSize = () => Number($("size").value);

function frameQuery(size) {
  const p = params(size);
  if (state.view === "full") {
    if ($("overlay").checked) p.set("picture", "overlay");
    if ($("show-label").checked) p.set("label", "true");
  }
  return p.toString();
}

// ------------------------------------------------------------------ frames: one request in flight, newest wins
// net.want is what the current settings ask for: their full-size query and their preview query. `screen` is
// what the page shows: the query of the picture on screen and the query whose error is on screen. The next
// request is chosen by comparing the two, never by remembering what was drawn before, so the screen always
// converges on the full frame (or the refusal) of the current settings: a drag that ends where it started, a
// click on the open tab or the preset already chosen, a value typed back all end on the full frame.

const net = { busy: null, want: null, held: false };  // busy: the job in flight; held: a pointer is down
const screen = { picture: null, error: null, retry: false };  // retry: the error may pass if asked again
// Previews grow while they keep a drag live (frame time under FRAME_BUDGET_MS, measured) and shrink when not.
const PREVIEW_SIZES = [64, 128, 256, 512], FRAME_BUDGET_MS = 60;
const preview = { size: PREVIEW, ms: null };

function request(mode) {  // "preview" while a control moves, "full" when it stops, "refine" after a click
  syncControls();
  updateLinks();
  writeUrl();
  const full = frameQuery(fullSize()), small = frameQuery(Math.min(preview.size, fullSize()));
  const live = mode === "preview";
  if (screen.retry) screen.error = null;  // a busy server or a lost connection is asked again
  net.want = { full, preview: small, live,
               previewFirst: small !== full && (live || (mode === "refine" && state.lastFullMs > SLOW_MS)) };
  pump();
}

function nextJob() {  // what to ask for to bring the screen to net.want, or null when it shows it
  const w = net.want;
  if (!w || screen.picture === w.full || screen.error === w.full) return null;
  if (w.previewFirst && screen.picture !== w.preview && screen.error !== w.preview) {
    return { query: w.preview, preview: true, size: Math.min(preview.size, fullSize()) };
  }
  if (w.live && net.held && w.preview !== w.full) return null;  // the drag goes on: full size on release
  return { query: w.full, preview: false, size: fullSize() };
}

async function pump() {
  if (net.busy) return;
  const job = nextJob();
  if (!job) {
    idle();
    return;
  }
  net.busy = job;
  document.body.dataset.settled = "false";
  $("loading").hidden = false;
  const t0 = performance.now();
  try {
    const r = await fetch("/api/frame?" + job.query);
    if (r.ok) {
      await show(await r.json(), job);
      measured(job, performance.now() - t0);
    } else {
      showError(job, r.status, await r.json().catch(() => ({})));
    }
  } catch (e) {
    showError(job, 0, { detail: String(e) });
  } finally {
    net.busy = null;
    pump();
  }
}

function idle() {  // nothing to ask for: the screen shows the current settings, or a drag waits for its release
  const w = net.want;
  if (w && screen.picture === w.full && screen.error !== null) clearError();  // a value typed back
  $("loading").hidden = true;
  document.body.dataset.settled = String(Boolean(w) && (screen.picture === w.full || screen.error === w.full));
}

function measured(job, ms) {  // frame times: a slow full frame is preceded by a preview; previews adapt
  if (!job.preview) {
    state.lastFullMs = ms;
    return;
  }
  if (job.size !== preview.size) return;
  preview.ms = preview.ms === null ? ms : (preview.ms + ms) / 2;
  const k = PREVIEW_SIZES.indexOf(preview.size);
  let next = k;
  if (preview.ms > FRAME_BUDGET_MS && k > 0) next = k - 1;
  // four times the pixels: grow only where the bigger frame is expected within the budget
  else if (4 * preview.ms <= FRAME_BUDGET_MS && k + 1 < PREVIEW_SIZES.length && PREVIEW_SIZES[k + 1] <= fullSize()) {
    next = k + 1;
  }
  if (next !== k) {
    preview.size = PREVIEW_SIZES[next];
    preview.ms = null;
  }
  document.body.dataset.previewSize = String(preview.size);
}

async function decoded(b64) {
  const img = new Image();
  img.src = "data:image/png;base64," + b64;
  await img.decode();
  return img.src;
}

async function show(d, job) {
  const [image, label] = await Promise.all([decoded(d.image), d.label ? decoded(d.label) : null]);
  for (const [el, src] of [[$("picture"), image], [$("label-picture"), label]]) {
    if (!src) continue;
    el.src = src;
    el.classList.toggle("preview", job.preview);
  }
  screen.picture = job.query;
  clearError();
  $("picture-caption").textContent = (state.view === "full" && $("overlay").checked ? "image with labels" : "image") +
    (job.preview ? ` (preview, ${d.width} px)` : ` (${d.width} px, rendered in ${d.render_ms} ms)`);
  showScene(d.scene);
  showLegend(d.legend);
  const body = document.body.dataset;
  body.frames = String(Number(body.frames || 0) + 1);
  if (!job.preview) body.rendered = String(Number(body.rendered || 0) + 1);
  document.dispatchEvent(new CustomEvent("fb-frame", { detail: { preview: job.preview, query: job.query } }));
}

function clearError() {
  screen.error = null;
  screen.retry = false;
  $("error").hidden = true;
  $("error").textContent = "";
  $("picture").classList.remove("stale");
  $("label-picture").classList.remove("stale");
  document.querySelectorAll("#class-table input[aria-invalid]").forEach((i) => i.removeAttribute("aria-invalid"));
}

function showError(job, status, body) {
  clearError();
  screen.error = job.query;
  screen.retry = status === 0 || status >= 500;  // not the settings' fault: asked again on the next request
  const detail = Array.isArray(body.detail)
    ? body.detail.map((d) => `${d.loc ? d.loc[d.loc.length - 1] + ": " : ""}${d.msg}`).join("; ") : body.detail;
  $("error").textContent = `Not drawn: ${detail || "error " + status}. The picture shows the last good settings.`;
  $("error").hidden = false;
  $("picture").classList.add("stale");
  $("label-picture").classList.add("stale");
  const m = /^class (\d+) (\w+)/.exec(detail || "");
  if (m) {
    const cell = document.querySelector(`#class-table tbody tr:nth-child(${m[1]}) [data-field=${m[2]}]`);
    if (cell) cell.setAttribute("aria-invalid", "true");
  }
}

function showScene(scene) {
  if (state.view === "random" || state.view === "full") {  // the sampled values, where not overridden
    if (!$("fix-bg").checked) $("bg-scale").value = String(Math.round(scene.background_noise_scale * 2) / 2);
    if (!$("fix-count").checked) $("num-objects").value = String(scene.objects.length);
    syncControls();
  }
  if (state.view !== "random") return;
  const list = $("scene-params");
  list.innerHTML = "";
  const head = document.createElement("li");
  head.textContent = `seed ${scene.seed}, index ${scene.index}, background noise scale ` +
    `${scene.background_noise_scale.toFixed(2)}, ${scene.objects.length} objects`;
  list.appendChild(head);
  scene.objects.forEach((o, i) => {
    const li = document.createElement("li");
    const extra = (o.shape ? ` ${o.shape}` : "") + (o.saturation !== undefined ? ` sat ${o.saturation.toFixed(2)}` : "") +
      (o.lightness !== undefined ? ` light ${o.lightness.toFixed(2)}` : "");
    li.textContent = `#${i + 1} class ${o.class_id}: hue ${o.hue.toFixed(1)}, elong. ${o.elongation.toFixed(3)}, ` +
      `r ${o.noise_scale.toFixed(2)}, s ${o.scale.toFixed(2)}, (${o.x.toFixed(2)}, ${o.y.toFixed(2)}, ` +
      `${o.z.toFixed(2)}), kd ${o.kd.toFixed(2)}, ks ${o.ks.toFixed(2)}, n ${o.shininess.toFixed(0)}${extra}`;
    list.appendChild(li);
  });
}

function showLegend(legend) {
  const ul = $("legend");
  ul.innerHTML = "";
  const total = legend.background + legend.ignore.pixels + legend.classes.reduce((a, c) => a + c.pixels, 0);
  const share = (n) => (total ? ` ${(100 * n / total).toFixed(1)}%` : "");
  const item = (colour, text) => {
    const li = document.createElement("li");
    li.innerHTML = `<span class="swatch" style="background:${colour}"></span>`;
    li.appendChild(document.createTextNode(text));
    ul.appendChild(li);
  };
  item("#000", `0 background${share(legend.background)}`);
  const many = legend.classes.length > 12;
  for (const c of legend.classes) {
    if (many && c.pixels === 0) continue;
    item(`rgb(${c.colour.join(",")})`, `${c.label} ${c.name}${share(c.pixels)}`);
  }
  item("#fff", `${legend.ignore.label} ignore: object edges, left out of training${share(legend.ignore.pixels)}`);
  if (many) item("transparent", `(${legend.classes.filter((c) => c.pixels === 0).length} classes not in this scene)`);
}

function updateLinks() {
  if (state.view !== "full") return;
  const p = params(fullSize()), name = `scene_${$("seed").value}_${$("index").value}`;
  $("download-image").href = "/api/render.png?" + p + "&output=image";
  $("download-label").href = "/api/render.png?" + p + "&output=label";
  $("download-image").download = `${name}.png`;
  $("download-label").download = `${name}.label.png`;
  $("save-config").href = "/api/config.json?" + configParams(fullSize());
}

// ------------------------------------------------------------------ the settings in the address
// The address's hash holds the view, every control that differs from its default and the class table
// where it differs from the preset's (#view=full&seed=3&index=2), so a link opens the same view.

const VIEWS = ["single", "random", "prototypes", "full"];

function controlValues() {
  const out = {};
  document.querySelectorAll("#controls input[id], #controls select[id]").forEach((el) => {
    out[el.id] = el.type === "checkbox" ? (el.checked ? "1" : "0") : el.value;
  });
  return out;
}

const tableCells = () => [...document.querySelectorAll("#class-table tbody tr")].map(
  (tr) => [...tr.querySelectorAll("input")].map((input) => input.value));

function writeUrl() {
  if (!state.initial) return;  // the page is still being set up
  const p = new URLSearchParams();
  if (state.view !== "single") p.set("view", state.view);
  for (const [id, value] of Object.entries(controlValues())) {
    if (value !== state.initial[id] && !$(id).disabled) p.set(id, value);
  }
  const cells = JSON.stringify(tableCells());
  if (!preset().class_table && cells !== state.presetCells) p.set("classes", cells);
  const hash = p.toString();
  if (hash !== location.hash.slice(1)) history.replaceState(null, "", hash ? `#${hash}` : location.pathname);
}

function readUrl() {  // the settings of the address's hash on the controls; the view it names
  const p = new URLSearchParams(location.hash.slice(1));
  if (state.presets[p.get("preset")]) {
    $("preset").value = p.get("preset");
    choosePreset(p.get("preset"));
  }
  for (const [id, value] of p) {
    const el = document.getElementById(id);
    if (!el || id === "preset" || !el.matches("#controls input, #controls select")) continue;
    if (el.type === "checkbox") el.checked = value === "1";
    else if (el.tagName !== "SELECT" || [...el.options].some((o) => o.value === value)) el.value = value;
  }
  let cells = [];
  try {
    cells = JSON.parse(p.get("classes") || "[]");
  } catch {
    cells = [];
  }
  document.querySelectorAll("#class-table tbody tr").forEach((tr, k) => {
    tr.querySelectorAll("input").forEach((input, j) => {
      if (Array.isArray(cells[k]) && typeof cells[k][j] === "string") input.value = cells[k][j];
    });
  });
  return VIEWS.includes(p.get("view")) ? p.get("view") : "single";
}

// ------------------------------------------------------------------ wiring

function setView(view) {
  state.view = view;
  document.querySelectorAll(".tab").forEach((b) => {
    b.classList.toggle("active", b.dataset.view === view);
    b.setAttribute("aria-selected", String(b.dataset.view === view));
  });
  $("pictures").style.setProperty("--picture-size", `${Math.max(fullSize(), 256)}px`);
  request("refine");
}

function choosePreset(name) {
  const p = state.presets[name];
  $("preset-description").textContent = p.description;
  const rotation = $("rotation");
  rotation.options[0].textContent = `as the preset (${p.rotation})`;
  $("ground").checked = true;
  $("shadows").checked = p.shadows;
  fillClassTable(p.classes || []);
  state.presetCells = JSON.stringify(tableCells());
}

const ROTATION_HINTS = { "": "as the scene preset turns its objects", none: "every object as it is made, unturned", uniform: "any orientation, all equally likely",
                         view: "turned about the line of sight", vertical: "turned about the vertical axis" };

async function main() {
  const d = await (await fetch("/api/defaults")).json();
  state.defaults = d;
  state.presets = d.presets;
  $("preset").innerHTML = Object.keys(d.presets).map((n) => `<option value="${n}">${n}</option>`).join("");
  $("preset").value = "report";
  $("rotation").innerHTML = `<option value="" title="${ROTATION_HINTS[""]}">as the preset</option>` +
    d.rotations.map((r) => `<option value="${r}" title="${ROTATION_HINTS[r] || ""}">${r}</option>`).join("");
  $("shape").innerHTML = d.shapes.map((s) => `<option value="${s}">${s}</option>`).join("");
  $("shape-names").innerHTML = d.shapes.map((s) => `<option value="${s}">`).join("");
  choosePreset("report");

  document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => setView(b.dataset.view)));
  $("about-button").addEventListener("click", () => {
    $("about").hidden = !$("about").hidden;
    $("about-button").setAttribute("aria-expanded", String(!$("about").hidden));
  });
  // Sliders and the colour picker draw previews while they move and a full frame when they stop;
  // everything else draws when it changes.
  document.querySelectorAll("#controls input, #controls select").forEach((el) => {
    const live = el.type === "range" || el.type === "color";
    if (live) el.addEventListener("input", () => request("preview"));
    el.addEventListener("change", () => request(live ? "full" : "refine"));
  });
  $("preset").addEventListener("change", () => { choosePreset($("preset").value); request("refine"); }, true);
  $("size").addEventListener("change", () => $("pictures").style.setProperty("--picture-size",
                                                                                `${Math.max(fullSize(), 256)}px`));
  $("class-table").addEventListener("input", syncTable);
  $("class-table").addEventListener("change", () => request("refine"));
  $("new-scene").addEventListener("click", () => { $("index").value = Number($("index").value) + 1; request("refine"); });
  $("reset-classes").addEventListener("click", () => { fillClassTable(preset().classes || []); request("refine"); });
  // A drag's previews end in a full frame on release, whether or not the value changed (no change event then).
  document.addEventListener("pointerdown", () => { net.held = true; }, true);
  const released = () => { net.held = false; pump(); };
  window.addEventListener("pointerup", released, true);
  window.addEventListener("pointercancel", released, true);
  window.addEventListener("blur", released);  // the window's own, not a control's (those do not bubble)
  window.addEventListener("hashchange", () => setView(readUrl()));
  window.fakeballoons = { params, frameQuery, request, state, preview };  // for tests and the benchmark
  state.initial = controlValues();
  setView(readUrl());
}
main();
