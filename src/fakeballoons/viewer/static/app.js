// fakeballoons viewer: every picture comes from /api/render.png with the current settings.
"use strict";
const $ = (id) => document.getElementById(id);
const state = { view: "single", defaults: null, classes: null };

function hexToHue(hex) {
  const r = parseInt(hex.slice(1, 3), 16) / 255, g = parseInt(hex.slice(3, 5), 16) / 255, b = parseInt(hex.slice(5, 7), 16) / 255;
  const max = Math.max(r, g, b), min = Math.min(r, g, b), d = max - min;
  if (d === 0) return 0;
  let h = max === r ? ((g - b) / d) % 6 : max === g ? (b - r) / d + 2 : (r - g) / d + 4;
  h *= 60;
  return h < 0 ? h + 360 : h;
}

function classTable() {
  return [...document.querySelectorAll("#class-table tbody tr")].map((tr, k) => {
    const v = (name) => parseFloat(tr.querySelector(`[data-field=${name}]`).value);
    return { name: state.classes[k].name, hue: v("hue"), hue_std: v("hue_std"), elongation: v("elongation"),
             elongation_std: v("elongation_std"), noise_scale: v("noise_scale"), noise_scale_std: v("noise_scale_std") };
  });
}

function fillClassTable(classes) {
  state.classes = classes;
  const body = document.querySelector("#class-table tbody");
  body.innerHTML = "";
  classes.forEach((c, k) => {
    const tr = document.createElement("tr");
    const cell = (field, step) => `<td><input type="number" step="${step}" data-field="${field}" value="${c[field]}"></td>`;
    tr.innerHTML = `<td>${k + 1}</td>` + cell("hue", 1) + cell("hue_std", 1) + cell("elongation", 0.01) +
      cell("elongation_std", 0.01) + cell("noise_scale", 0.5) + cell("noise_scale_std", 0.5);
    body.appendChild(tr);
  });
}

function params(output) {
  const apiView = state.view === "full" ? "random" : state.view;
  const p = new URLSearchParams({ view: apiView, noise: $("noise").value, size: $("size").value });
  if (output) p.set("output", output);
  if (apiView === "single") {
    p.set("hue", hexToHue($("colour").value).toFixed(2));
    p.set("elongation", $("elongation").value);
    p.set("noise_scale", $("noise-scale").value);
  } else {
    p.set("seed", $("seed").value || "0");
    p.set("index", $("index").value || "0");
    p.set("classes", JSON.stringify(classTable()));
    if (apiView === "prototypes" && $("random-protos").checked) p.set("random", "true");
    if (state.view === "random") {
      if ($("fix-bg").checked) p.set("background_noise_scale", $("bg-scale").value);
      if ($("fix-count").checked) p.set("num_objects", $("num-objects").value);
    }
  }
  return p;
}

let pending = 0;
const inflight = new Map();  // img -> settle function of its outstanding load
// Load url into img. Resolves true (loaded), false (error, shown) or null (superseded by a newer
// load of the same img, whose onload then never fires: it must still leave the count).
function load(img, url) {
  if (inflight.has(img)) inflight.get(img)(null);
  pending += 1;
  $("loading").hidden = false;
  return new Promise((resolve) => {
    let settled = false;
    const settle = async (ok) => {
      if (settled) return;
      settled = true;
      if (inflight.get(img) === settle) inflight.delete(img);
      pending -= 1;
      if (pending === 0) $("loading").hidden = true;
      if (ok === false) {
        const r = await fetch(url);
        const body = await r.json().catch(() => ({}));
        const detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
        $("error").textContent = `error ${r.status}: ${detail || r.statusText}`;
      } else if (ok === true) {
        $("error").textContent = "";
      }
      resolve(ok);
    };
    inflight.set(img, settle);
    img.onload = () => settle(true);
    img.onerror = () => settle(false);
    img.src = url;
  });
}

async function update() {
  document.querySelectorAll("[class*=for-]").forEach((el) => {
    const views = [...el.classList].filter((c) => c.startsWith("for-")).map((c) => c.slice(4));
    el.hidden = !views.includes(state.view);
  });
  const overlay = state.view === "full" && $("overlay").checked;
  const url = "/api/render.png?" + params(overlay ? "overlay" : "image");
  const jobs = [load($("picture"), url)];
  if (state.view === "full") {
    $("label-picture").hidden = !$("show-label").checked;
    if ($("show-label").checked) jobs.push(load($("label-picture"), "/api/render.png?" + params("label")));
    $("download-image").href = "/api/render.png?" + params("image");
    $("download-label").href = "/api/render.png?" + params("label");
    $("download-image").download = `scene_${$("seed").value}_${$("index").value}.png`;
    $("download-label").download = `scene_${$("seed").value}_${$("index").value}.label.png`;
    const c = params();
    ["view", "seed", "index", "hue", "elongation", "noise_scale", "random"].forEach((k) => c.delete(k));
    $("save-config").href = "/api/config.json?" + c;
  }
  if (state.view === "random") {
    fetch("/api/scene.json?" + params()).then((r) => r.json()).then((d) => {
      const list = $("scene-params");
      list.innerHTML = `<li>seed ${d.scene.seed}, index ${d.scene.index}, background noise scale ${d.scene.background_noise_scale.toFixed(2)}, ${d.scene.objects.length} objects</li>`;
      d.scene.objects.forEach((o, i) => {
        const li = document.createElement("li");
        li.textContent = `#${i + 1} class ${o.class_id}: hue ${o.hue.toFixed(1)}, elong. ${o.elongation.toFixed(3)}, r ${o.noise_scale.toFixed(2)}, s ${o.scale.toFixed(2)}, (${o.x.toFixed(2)}, ${o.y.toFixed(2)}), kd ${o.kd.toFixed(2)}, ks ${o.ks.toFixed(2)}, n ${o.shininess.toFixed(0)}`;
        list.appendChild(li);
      });
    }).catch(() => {});
  }
  const results = await Promise.all(jobs);
  if (results.every((r) => r !== null)) {  // a superseded update leaves the count to the newer one
    document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
  }
}

function setView(view) {
  state.view = view;
  document.querySelectorAll(".tab").forEach((b) => b.classList.toggle("active", b.dataset.view === view));
  update();
}

async function main() {
  const d = await (await fetch("/api/defaults")).json();
  state.defaults = d.config.classes;
  fillClassTable(state.defaults);
  document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => setView(b.dataset.view)));
  for (const [id, out] of [["elongation", "elongation-value"], ["noise-scale", "noise-scale-value"],
                           ["bg-scale", "bg-scale-value"], ["num-objects", "num-objects-value"]]) {
    $(id).addEventListener("input", () => { $(out).textContent = $(id).value; });
  }
  document.querySelectorAll("#controls input, #controls select").forEach((el) => el.addEventListener("change", update));
  $("class-table").addEventListener("change", update);
  $("new-scene").addEventListener("click", () => { $("index").value = Number($("index").value) + 1; update(); });
  $("reset-classes").addEventListener("click", () => { fillClassTable(state.defaults); update(); });
  setView("single");
}
main();
