// pixtrans studio: one page over the JSON API of pixtrans/web/app.py (no libraries, works offline).
"use strict";

// ------------------------------------------------------------------------------------------------ helpers
const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "style" && typeof v === "object") Object.assign(e.style, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false)
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

const fmtParams = (n) => n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : `${n}`;
const rgb = (c) => c ? `rgb(${c[0]},${c[1]},${c[2]})` : "#000";
const swatch = (c, title) => el("span", { class: "swatch", style: { background: rgb(c) }, title });

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, { json, form, method } = {}) {
  const init = { method: method || (json !== undefined || form ? "POST" : "GET"), headers: {} };
  if (json !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(json); }
  if (form) init.body = form;
  const r = await fetch(path, init);
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try { const j = await r.json(); if (j.detail) msg = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail); }
    catch (e) { /* not JSON */ }
    throw new ApiError(r.status, msg);
  }
  const ct = r.headers.get("content-type") || "";
  return ct.includes("application/json") ? r.json() : r.blob();
}

let toastTimer = null;
function toast(msg, kind = "error") {
  const t = $("#toast");
  t.textContent = msg; t.className = kind; t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, kind === "error" ? 7000 : 3000);
}

let busyCount = 0;
function setStatus(text, busy = null) {
  if (busy === true) busyCount++;
  if (busy === false) busyCount = Math.max(0, busyCount - 1);
  const s = $("#status");
  s.textContent = text;
  s.classList.toggle("busy", busyCount > 0);
}

function b64FromBytes(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function bytesFromB64(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

function idsFromJson(a) { // IdArray -> Int32Array (little endian on every browser we target)
  const bytes = bytesFromB64(a.data);
  const src = a.dtype === "u8" ? bytes : a.dtype === "u16" ? new Uint16Array(bytes.buffer) : new Int32Array(bytes.buffer);
  return Int32Array.from(src);
}

function idsToJson(arr, w, h) { // Int32Array/Uint8Array of ids -> the smallest IdArray
  let hi = 0, lo = 0;
  for (const v of arr) { if (v > hi) hi = v; if (v < lo) lo = v; }
  let typed, dtype;
  if (lo >= 0 && hi < 256) { typed = Uint8Array.from(arr); dtype = "u8"; }
  else if (lo >= 0 && hi < 65536) { typed = Uint16Array.from(arr); dtype = "u16"; }
  else { typed = Int32Array.from(arr); dtype = "i32"; }
  return { width: w, height: h, dtype, data: b64FromBytes(new Uint8Array(typed.buffer)) };
}

function download(href, name) {
  const a = el("a", { href, download: name });
  document.body.append(a); a.click(); a.remove();
}

async function downloadBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  download(url, name);
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

const whenLoaded = (img) => img.decode ? img.decode().catch(() => {}) : Promise.resolve();

// ------------------------------------------------------------------------------------------------ state
const S = {
  models: [], byId: {}, selected: [], data: null,
  styles: {},      // model id -> editor state {seed, cluster, clusters, reference, refPreview}
  openStyle: {},   // model id -> style editor open in cards
  timing: null,    // last "translate -> image" time in ms (window.studioTiming for tests)
};

function selectedModels() { return S.selected.map((id) => S.byId[id]).filter(Boolean); }

// ------------------------------------------------------------------------------------------------ styles
function styleState(id) {
  return S.styles[id] ||= { seed: null, cluster: "", clusters: {}, reference: null, refPreview: null };
}

function styleFor(id) {
  const m = S.byId[id], st = styleState(id), caps = m.style;
  if (caps.kind === "none") return {};
  const out = {};
  if (st.reference) out.reference = st.reference;
  if (caps.seed && st.seed !== null && st.seed !== "") out.seed = Number(st.seed);
  if (caps.kind === "clusters") {
    if (st.cluster !== "") out.cluster = Number(st.cluster);
    const per = Object.entries(st.clusters).filter(([, k]) => k !== "");
    if (per.length) out.clusters = Object.fromEntries(per.map(([c, k]) => [c, Number(k)]));
  }
  return out;
}

function stylesFor(models) {
  const out = {};
  for (const m of models) { const s = styleFor(m.id); if (Object.keys(s).length) out[m.id] = s; }
  return out;
}

function keepUsedSeed(out) { // pin a server-drawn seed so the next translation keeps the look
  const st = styleState(out.model), m = S.byId[out.model];
  if (out.ok && out.style && m.style.seed && st.seed === null && Number.isInteger(out.style.seed)) {
    st.seed = out.style.seed;
  }
}

function useStyle(id, used) {
  const st = styleState(id);
  st.seed = Number.isInteger(used.seed) ? used.seed : null;
  st.cluster = "";
  st.clusters = used.clusters ? Object.fromEntries(Object.entries(used.clusters).map(([c, k]) => [c, String(k)])) : {};
  if (used.reference) st.reference = used.reference;
  refreshStyleEditors();
  toast(`${id}: style set — translate again to reproduce`, "info");
}

const styleListeners = new Set();
function styleChanged() { refreshStyleEditors(); for (const f of styleListeners) f(); }

function refreshStyleEditors() {
  for (const box of $$("[data-style-editor]")) box.replaceWith(styleEditor(box.dataset.styleEditor));
}

function styleEditor(id) {
  const m = S.byId[id], caps = m.style, st = styleState(id);
  const form = el("div", { class: "style-form", "data-style-editor": id });
  if (caps.kind === "none") {
    form.append(el("span", { class: "hint", text: "deterministic: this model takes no style input" }));
    return form;
  }
  if (caps.seed) {
    const seed = el("input", { type: "number", min: 0, value: st.seed ?? "", placeholder: "auto", "data-role": "seed",
      onchange: (e) => { st.seed = e.target.value === "" ? null : Math.max(0, Math.floor(Number(e.target.value))); styleChanged(); } });
    form.append(el("div", { class: "row" }, "seed", seed,
      el("button", { title: "new random style", onclick: () => { st.seed = Math.floor(Math.random() * 2 ** 31); styleChanged(); } }, "random"),
      el("button", { title: "let the server draw one (then kept)", onclick: () => { st.seed = null; styleChanged(); } }, "auto")));
  }
  if (caps.kind === "clusters") {
    const maxK = Math.max(...Object.values(caps.clusters));
    const all = el("select", { onchange: (e) => { st.cluster = e.target.value; styleChanged(); } },
      el("option", { value: "" }, "per class / seed"),
      ...Array.from({ length: maxK }, (_, k) => el("option", { value: String(k), selected: st.cluster === String(k) }, `cluster ${k}`)));
    form.append(el("div", { class: "row" }, "every class:", all));
    const grid = el("div", { class: "clusters" });
    for (const [c, n] of Object.entries(caps.clusters)) {
      const sel = el("select", { "data-class": c, onchange: (e) => { st.clusters[c] = e.target.value; styleChanged(); } },
        el("option", { value: "" }, "auto"),
        ...Array.from({ length: n }, (_, k) => el("option", { value: String(k), selected: st.clusters[c] === String(k) }, String(k))));
      grid.append(swatch(m.palette[c]), el("span", { text: m.class_names[c] ?? c }), sel);
    }
    form.append(el("details", {}, el("summary", { text: "cluster per class" }), grid));
  }
  if (caps.reference) {
    const file = el("input", { type: "file", accept: "image/png,image/jpeg,image/webp,image/bmp",
      onchange: async (e) => {
        const f = e.target.files[0]; if (!f) return;
        const fd = new FormData(); fd.append("file", f);
        try {
          const r = await api("api/references", { form: fd });
          st.reference = r.reference; st.refPreview = r.preview; styleChanged();
        } catch (err) { toast(err.message); }
      } });
    const sampleIdx = el("input", { type: "number", min: 0, placeholder: "#" });
    form.append(el("div", { class: "row" }, "reference:",
      st.reference ? el("img", { class: "ref", src: st.refPreview || "", alt: st.reference, title: st.reference }) : null,
      st.reference ? el("code", { text: st.reference }) : el("span", { class: "hint", text: "none" }),
      st.reference ? el("button", { onclick: () => { st.reference = null; st.refPreview = null; styleChanged(); } }, "clear") : null));
    form.append(el("div", { class: "row" },
      el("label", { class: "file-btn" }, "photo…", file),
      S.data && S.data.available && S.data.has_target ? el("span", {}, "or sample ", sampleIdx,
        el("button", { onclick: () => {
          if (sampleIdx.value === "") return;
          st.reference = `sample:${Math.floor(Number(sampleIdx.value))}`; st.refPreview = null; styleChanged();
        } }, "use")) : null));
  }
  return form;
}

// ------------------------------------------------------------------------------------------------ output cards
function imageCard(title, src, { cls = "", name = "image.png", badge = null, meta = "" } = {}) {
  const img = el("img", { class: "view", src, alt: title });
  return el("div", { class: `card ${cls}` },
    el("header", {}, el("b", { text: title }), badge ? el("span", { class: "badge", text: badge }) : null),
    img, meta ? el("div", { class: "meta", text: meta }) : null,
    el("div", { class: "actions" }, el("a", { href: src, download: name }, "⬇ PNG")));
}

function outputCard(out, base) {
  const m = S.byId[out.model] || { name: out.model, family: "?", style: { kind: "none" } };
  const card = el("div", { class: "card output-card", "data-model": out.model, "data-ok": String(out.ok) },
    el("header", {}, el("b", { text: m.name, title: m.name }), el("span", { class: `badge ${m.family}`, text: m.family })));
  if (!out.ok) {
    card.append(el("div", { class: "error", text: out.error || "failed" }));
    return card;
  }
  card.append(el("img", { class: "view out", src: out.image, alt: `${m.name} output`, "data-model": out.model }));
  const bits = [`${out.width}×${out.height}`, `${Math.round(out.seconds * 1000)} ms`];
  if (out.psnr !== null && out.psnr !== undefined) bits.push(`PSNR ${out.psnr.toFixed(2)} dB`);
  if (out.ssim !== null && out.ssim !== undefined) bits.push(`SSIM ${out.ssim.toFixed(3)}`);
  if (out.vif !== null && out.vif !== undefined) bits.push(`VIF ${out.vif.toFixed(3)}`);
  card.append(el("div", { class: "meta", text: bits.join(" · ") }));
  if (out.style && Object.keys(out.style).length) {
    const json = JSON.stringify(out.style);
    card.append(el("div", { class: "used" }, el("code", { text: json, title: json, class: "style-json" }),
      el("button", { title: "use this style next time (reproduces this output)", onclick: () => useStyle(out.model, out.style) }, "use")));
  }
  if (m.style.kind !== "none") {
    const det = el("details", { class: "style-edit", open: !!S.openStyle[out.model],
      ontoggle: (e) => { S.openStyle[out.model] = e.target.open; } }, el("summary", { text: "style" }), styleEditor(out.model));
    card.append(det);
  }
  card.append(el("div", { class: "actions" }, el("a", { href: out.image, download: `${base}_${out.model}.png` }, "⬇ PNG")));
  return card;
}

async function showOutputs(container, outputs, base, lead = []) {
  outputs.forEach(keepUsedSeed);
  container.replaceChildren(...lead, ...outputs.map((o) => outputCard(o, base)));
  await Promise.all($$("img", container).map(whenLoaded));
}

function noteTiming(t0, label) {
  const ms = performance.now() - t0;
  S.timing = ms; window.studioTiming = ms;
  setStatus(`${label}: ${Math.round(ms)} ms from request to image`, false);
}

function errorStatus(err) {
  setStatus(err.status === 429 ? "busy — try again" : "error", false);
  toast(err.message);
}

// ------------------------------------------------------------------------------------------------ tabs
const TABS = ["models", "samples", "draw", "upload", "rate"];
const onShow = {};

function showTab(name) {
  if (!TABS.includes(name)) name = "draw";
  for (const t of TABS) $(`#tab-${t}`).hidden = t !== name;
  for (const b of $$("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (onShow[name]) onShow[name]();
}

// ------------------------------------------------------------------------------------------------ models tab
function renderModels() {
  const t = $("#models-table");
  t.replaceChildren(el("tr", {}, ...["use", "model", "family", "input / label set", "resolution", "parameters", "step",
    "style", "metrics"].map((h) => el("th", { text: h }))));
  for (const m of S.models) {
    const box = el("input", { type: "checkbox", checked: S.selected.includes(m.id), "data-model": m.id,
      onchange: (e) => {
        S.selected = S.models.filter((x) => x.id === m.id ? e.target.checked : S.selected.includes(x.id)).map((x) => x.id);
        selectionChanged();
      } });
    const labels = m.kind === "label"
      ? el("span", {}, `${m.label_nc} classes `, ...m.palette.slice(0, 14).map((c, i) => swatch(c, m.class_names[i])),
        m.label_nc > 14 ? "…" : "", m.no_instance ? "" : el("span", { class: "badge", text: "instances" }))
      : el("span", { text: `photo (${m.input_nc} channel${m.input_nc > 1 ? "s" : ""})` });
    const styleText = { none: "—", clusters: `clusters (${Object.keys(m.style.clusters).length} classes) · reference`,
      features: "reference photo", seed: "seed · reference photo" }[m.style.kind];
    const metrics = Object.entries(m.metrics).filter(([, v]) => typeof v === "number")
      .map(([k, v]) => `${k} ${v.toFixed(3)}`).join(" · ");
    t.append(el("tr", {}, el("td", {}, box), el("td", {}, el("b", { text: m.name }), el("div", { class: "hint", text: m.checkpoint })),
      el("td", {}, el("span", { class: `badge ${m.family}`, text: m.family })), el("td", {}, labels),
      el("td", { text: `${m.width}×${m.height} (${m.preprocess})` }), el("td", { class: "num", text: fmtParams(m.params) }),
      el("td", { class: "num", text: m.step }), el("td", { text: styleText }), el("td", { class: "hint", text: metrics || "—" })));
  }
  const d = S.data;
  $("#dataset-line").textContent = d && d.available
    ? `${d.count} test samples (${d.kind === "label" ? `label maps, ${d.label_nc} classes` : "photos"}${d.has_target ? ", with ground truth" : ""}) · usable by: ${d.compatible.join(", ") || "none"}`
    : "No dataset: start with --data DIR for samples and rating.";
  const eds = $("#style-editors");
  eds.replaceChildren(...S.models.filter((m) => m.style.kind !== "none").map((m) =>
    el("div", { class: "style-box" }, el("h3", {}, m.name, el("span", { class: `badge ${m.family}`, text: m.family })), styleEditor(m.id))));
  if (!eds.children.length) eds.append(el("p", { class: "hint", text: "None of the loaded models takes a style." }));
  const legends = $("#legends");
  legends.replaceChildren(el("h2", { text: "Label sets" }));
  const seen = new Set();
  for (const m of S.models) {
    if (m.kind !== "label" || seen.has(m.label_set)) continue;
    seen.add(m.label_set);
    const users = S.models.filter((x) => x.label_set === m.label_set).map((x) => x.name).join(", ");
    legends.append(el("details", {}, el("summary", { text: `${m.label_nc} classes — ${users}` }),
      el("div", { class: "cards", style: { gap: "4px 14px", marginTop: "6px" } }, ...m.class_names.map((n, i) =>
        el("span", {}, swatch(m.palette[i]), ` ${i} ${n}${m.things.includes(i) ? " ◆" : ""}`)))));
  }
}

function selectionChanged() {
  localStorage.setItem("pixtrans.selected", JSON.stringify(S.selected));
  Draw.syncModel();
  renderModels();
}

// ------------------------------------------------------------------------------------------------ samples tab
const Samples = {
  index: 0, loaded: null,
  models() { return selectedModels().filter((m) => S.data.compatible.includes(m.id)); },
  async go(index) {
    if (!S.data || !S.data.available) return;
    const n = S.data.count;
    this.index = ((Math.floor(index) % n) + n) % n;
    $("#sample-index").value = this.index;
    const models = this.models();
    if (!models.length) { toast("None of the selected models can translate these samples (see Models)."); return; }
    const t0 = performance.now();
    setStatus(`translating sample ${this.index}…`, true);
    try {
      const r = await api(`api/samples/${this.index}/translate`, { json: { models: models.map((m) => m.id), styles: stylesFor(models) } });
      this.loaded = r;
      $("#sample-name").textContent = r.name;
      const base = `sample${r.index}`;
      const lead = [imageCard(r.kind === "label" ? "input label map" : "input", r.input, { name: `${base}_input.png` })];
      if (r.target) lead.push(imageCard("ground truth", r.target, { cls: "gt", name: `${base}_target.png` }));
      await showOutputs($("#sample-row"), r.outputs, base, lead);
      noteTiming(t0, `sample ${r.index}`);
    } catch (err) { errorStatus(err); }
  },
  init() {
    $("#sample-random").onclick = () => this.go(Math.floor(Math.random() * S.data.count));
    $("#sample-prev").onclick = () => this.go(this.index - 1);
    $("#sample-next").onclick = () => this.go(this.index + 1);
    $("#sample-go").onclick = () => this.go(Number($("#sample-index").value || 0));
    $("#sample-index").onkeydown = (e) => { if (e.key === "Enter") this.go(Number(e.target.value || 0)); };
    $("#sample-edit").onclick = async () => { showTab("draw"); await Draw.loadSample(this.index); };
    onShow.samples = () => {
      const ok = S.data && S.data.available;
      $("#sample-none").hidden = ok;
      $("#sample-count").textContent = ok ? `of 0…${S.data.count - 1}` : "";
      if (ok && !this.loaded) this.go(0);
    };
    styleListeners.add(() => { if (!$("#tab-samples").hidden && this.loaded) this.go(this.index); });
  },
};

// ------------------------------------------------------------------------------------------------ draw tab
const Draw = {
  model: null, w: 0, h: 0, label: null, inst: null, cls: 0, bg: 0, tool: "brush", size: 6,
  undo: [], redo: [], counters: {}, drawing: false, last: null, strokeInst: 0, strokeCls: 0,
  timer: null, inFlight: false, dirty: false, lut: null, outputs: [],

  models() { // selected label models sharing the palette model's label set
    return this.model ? selectedModels().filter((m) => m.kind === "label" && m.label_set === this.model.label_set) : [];
  },

  syncModel() {
    const first = selectedModels().find((m) => m.kind === "label") || S.models.find((m) => m.kind === "label");
    if (!first) { $("#draw-note").textContent = "No label-map model is loaded: use Upload for photo models."; return; }
    const changed = !this.model || this.model.label_set !== first.label_set;
    this.model = first;
    if (changed) {
      this.buildPalette();
      this.newCanvas(first.width, first.height);
    }
    const others = selectedModels().filter((m) => !this.models().includes(m)).map((m) => m.name);
    $("#draw-note").textContent = others.length ? `Not used here (other input): ${others.join(", ")}.` : "";
  },

  buildPalette() {
    const m = this.model;
    this.lut = new Uint8Array(256 * 256 * 3); // ids up to 65535 -> rgb (unknown = black)
    m.palette.forEach((c, i) => this.lut.set(c, i * 3));
    const ids = m.class_names.map((_, i) => i);
    if (m.contain_dontcare) ids.push(255);
    const name = (i) => i === 255 ? "don't care" : m.class_names[i];
    const pal = $("#palette");
    pal.replaceChildren(...ids.map((i) => el("button", { "data-class": i, role: "option", title: `${i}: ${name(i)}`,
      onclick: () => this.setClass(i) }, swatch(i === 255 ? [0, 0, 0] : m.palette[i]), el("span", { text: name(i) }),
      el("small", { text: `${m.things.includes(i) ? "◆ " : ""}${i}` }))));
    $("#bg-class").replaceChildren(...ids.map((i) => el("option", { value: i, text: `${i} ${name(i)}` })));
    this.bg = 0; $("#bg-class").value = "0";
    this.setClass(ids.length > 1 ? 1 : 0);
  },

  setClass(i) {
    this.cls = i;
    for (const b of $$("#palette button")) b.classList.toggle("active", Number(b.dataset.class) === i);
    if (this.tool === "eraser") this.setTool("brush");
  },

  setTool(t) {
    this.tool = t;
    for (const b of $$(".tool")) b.classList.toggle("active", b.dataset.tool === t);
  },

  setSize(s) {
    this.size = Math.max(1, Math.min(64, Math.round(s)));
    $("#brush-size").value = this.size; $("#brush-size-out").textContent = this.size;
  },

  newCanvas(w, h, label = null, inst = null) {
    this.w = w; this.h = h;
    this.label = label || new Int32Array(w * h).fill(this.bg);
    this.inst = inst || Int32Array.from(this.label);
    this.counters = {};
    for (const v of this.inst) if (v >= 1000) { const c = Math.floor(v / 1000); this.counters[c] = Math.max(this.counters[c] || 0, v % 1000); }
    this.undo = []; this.redo = [];
    const cv = $("#draw-canvas");
    cv.width = w; cv.height = h;
    const scale = Math.max(1, Math.min(8, Math.floor(512 / Math.max(w, h)))) || 1;
    const disp = Math.max(w, h) > 512 ? 512 / Math.max(w, h) : scale;
    cv.style.width = `${Math.round(w * disp)}px`; cv.style.height = `${Math.round(h * disp)}px`;
    $("#canvas-w").value = w; $("#canvas-h").value = h;
    $("#canvas-info").textContent = `${w}×${h} label map`;
    this.render();
    this.updateUndo();
  },

  render() {
    const cv = $("#draw-canvas"), ctx = cv.getContext("2d");
    const img = ctx.createImageData(this.w, this.h), d = img.data, lut = this.lut, lab = this.label, inst = this.inst;
    const borders = $("#show-inst").checked, w = this.w;
    for (let i = 0; i < lab.length; i++) {
      const o = (lab[i] & 0xffff) * 3, p = i * 4;
      let f = 1;
      if (borders) {
        const x = i % w;
        if ((x + 1 < w && inst[i + 1] !== inst[i]) || (i + w < inst.length && inst[i + w] !== inst[i])) f = 0.45;
      }
      d[p] = lut[o] * f; d[p + 1] = lut[o + 1] * f; d[p + 2] = lut[o + 2] * f; d[p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  },

  snapshot() {
    this.undo.push([this.label.slice(), this.inst.slice(), { ...this.counters }]);
    while (this.undo.length > (this.w * this.h > 262144 ? 20 : 60)) this.undo.shift();
    this.redo = [];
    this.updateUndo();
  },

  restore(from, to) {
    const s = from.pop(); if (!s) return;
    to.push([this.label, this.inst, this.counters]);
    [this.label, this.inst, this.counters] = s;
    this.render(); this.updateUndo(); this.changed();
  },

  updateUndo() { $("#undo").disabled = !this.undo.length; $("#redo").disabled = !this.redo.length; },

  isThing(c) { return this.model.things.includes(c); },

  instFor(c) { // instance id of a new stroke of class c
    if (c !== 255 && this.isThing(c) && $("#inst-mode").checked) {
      this.counters[c] = (this.counters[c] || 0) + 1;
      return c * 1000 + this.counters[c];
    }
    return c;
  },

  pos(e) {
    const r = $("#draw-canvas").getBoundingClientRect();
    return [Math.floor((e.clientX - r.left) * this.w / r.width), Math.floor((e.clientY - r.top) * this.h / r.height)];
  },

  stamp(cx, cy) {
    const r = (this.size - 1) / 2, w = this.w, h = this.h;
    const x0 = Math.max(0, Math.floor(cx - r)), x1 = Math.min(w - 1, Math.ceil(cx + r));
    const y0 = Math.max(0, Math.floor(cy - r)), y1 = Math.min(h - 1, Math.ceil(cy + r));
    const r2 = (r + 0.5) * (r + 0.5);
    for (let y = y0; y <= y1; y++) for (let x = x0; x <= x1; x++) {
      if ((x - cx) ** 2 + (y - cy) ** 2 <= r2) { const i = y * w + x; this.label[i] = this.strokeCls; this.inst[i] = this.strokeInst; }
    }
  },

  line(a, b) {
    const n = Math.max(Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1]), 1);
    for (let k = 0; k <= n; k++) this.stamp(a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n);
  },

  fill(x, y) {
    if (x < 0 || y < 0 || x >= this.w || y >= this.h) return;
    const w = this.w, start = y * w + x, L = this.label[start], I = this.inst[start];
    const cls = this.cls, id = this.instFor(cls);
    if (L === cls && I === id) return;
    const stack = [start], seen = new Uint8Array(this.label.length);
    while (stack.length) {
      const i = stack.pop();
      if (seen[i] || this.label[i] !== L || this.inst[i] !== I) continue;
      seen[i] = 1; this.label[i] = cls; this.inst[i] = id;
      const px = i % w;
      if (px > 0) stack.push(i - 1);
      if (px < w - 1) stack.push(i + 1);
      if (i >= w) stack.push(i - w);
      if (i + w < this.label.length) stack.push(i + w);
    }
  },

  cursor(e) {
    const cur = $("#brush-cursor"), cv = $("#draw-canvas");
    if (!e || this.tool === "fill") { cur.style.display = "none"; return; }
    const r = cv.getBoundingClientRect(), k = r.width / this.w, d = this.size * k;
    const [x, y] = this.pos(e);
    Object.assign(cur.style, { display: "block", width: `${d}px`, height: `${d}px`,
      left: `${(x + 0.5) * k - d / 2}px`, top: `${(y + 0.5) * k - d / 2}px` });
  },

  down(e) {
    if (e.button !== 0 || !this.model) return;
    e.preventDefault();
    $("#draw-canvas").setPointerCapture(e.pointerId);
    clearTimeout(this.timer);
    this.snapshot();
    const p = this.pos(e);
    if (this.tool === "fill") { this.fill(...p); this.render(); this.changed(); return; }
    this.strokeCls = this.tool === "eraser" ? this.bg : this.cls;
    this.strokeInst = this.tool === "eraser" ? this.bg : this.instFor(this.strokeCls);
    this.drawing = true; this.last = p;
    this.stamp(...p); this.render();
  },

  move(e) {
    this.cursor(e);
    if (!this.drawing) return;
    const p = this.pos(e);
    this.line(this.last, p); this.last = p; this.render();
  },

  up() {
    if (!this.drawing) return;
    this.drawing = false;
    this.changed();
  },

  changed() {
    clearTimeout(this.timer);
    if ($("#auto-translate").checked) this.timer = setTimeout(() => this.translate(), 700);
  },

  async translate() {
    clearTimeout(this.timer);
    if (this.inFlight) { this.dirty = true; return; }
    const models = this.models();
    if (!models.length) { toast("Select at least one label-map model on the Models tab."); return; }
    this.inFlight = true;
    const t0 = performance.now();
    setStatus("translating…", true);
    try {
      const body = { label: idsToJson(this.label, this.w, this.h), models: models.map((m) => m.id),
        styles: stylesFor(models), fit: $("#draw-fit").value };
      if (models.some((m) => !m.no_instance)) body.inst = idsToJson(this.inst, this.w, this.h);
      const r = await api("api/translate", { json: body });
      this.outputs = r.outputs;
      await showOutputs($("#draw-outputs"), r.outputs, "drawing");
      noteTiming(t0, "drawing");
    } catch (err) { errorStatus(err); }
    this.inFlight = false;
    if (this.dirty) { this.dirty = false; this.translate(); }
  },

  load(label, inst) {
    const L = idsFromJson(label);
    const I = inst ? idsFromJson(inst) : Int32Array.from(L);
    this.newCanvas(label.width, label.height, L, I);
  },

  async loadSample(index) {
    if (!S.data || !S.data.available) { toast("No samples: start the server with --data DIR."); return; }
    try {
      const s = await api(`api/samples/${Math.max(0, Math.floor(index))}?model=${encodeURIComponent(this.model.id)}`);
      if (!s.label) { toast("That sample is a photo, not a label map."); return; }
      this.load(s.label, s.inst);
      $("#draw-sample").value = s.index;
      toast(`loaded sample ${s.index} (${s.name})`, "info");
      this.changed();
    } catch (err) { toast(err.message); }
  },

  async loadFile(file) {
    const fd = new FormData();
    fd.append("file", file); fd.append("models", this.model.id); fd.append("fit", "model"); fd.append("translate", "false");
    try {
      const r = await api("api/upload", { form: fd });
      if (!r.label) { toast("Not a label map for this model."); return; }
      this.load(r.label, r.inst);
      this.changed();
    } catch (err) { toast(err.message); }
  },

  async downloadIds(which, colour = false) {
    const arr = which === "inst" ? this.inst : this.label;
    const q = colour ? `?colour=true&model=${encodeURIComponent(this.model.id)}` : "";
    try {
      const blob = await api(`api/labelmap.png${q}`, { json: idsToJson(arr, this.w, this.h) });
      await downloadBlob(blob, which === "inst" ? "instances.png" : colour ? "label_colour.png" : "label.png");
    } catch (err) { toast(err.message); }
  },

  init() {
    const cv = $("#draw-canvas");
    cv.addEventListener("pointerdown", (e) => this.down(e));
    cv.addEventListener("pointermove", (e) => this.move(e));
    cv.addEventListener("pointerup", () => this.up());
    cv.addEventListener("pointercancel", () => this.up());
    cv.addEventListener("pointerleave", () => this.cursor(null));
    cv.addEventListener("contextmenu", (e) => e.preventDefault());
    for (const b of $$(".tool")) b.onclick = () => this.setTool(b.dataset.tool);
    $("#brush-size").oninput = (e) => this.setSize(Number(e.target.value));
    $("#size-presets").append(...[1, 3, 6, 12, 24].map((s) => el("button", { onclick: () => this.setSize(s) }, `${s}`)));
    $("#undo").onclick = () => this.restore(this.undo, this.redo);
    $("#redo").onclick = () => this.restore(this.redo, this.undo);
    $("#clear").onclick = () => { this.snapshot(); this.label.fill(this.bg); this.inst.fill(this.bg); this.render(); this.changed(); };
    $("#bg-class").onchange = (e) => { this.bg = Number(e.target.value); };
    $("#show-inst").onchange = () => this.render();
    $("#class-filter").oninput = (e) => {
      const q = e.target.value.toLowerCase();
      for (const b of $$("#palette button")) b.hidden = q && !b.textContent.toLowerCase().includes(q);
    };
    $("#translate-btn").onclick = () => this.translate();
    $("#draw-fit").onchange = () => this.changed();
    $("#canvas-resize").onclick = () => {
      const w = Math.max(8, Math.min(2048, Number($("#canvas-w").value) || this.w));
      const h = Math.max(8, Math.min(2048, Number($("#canvas-h").value) || this.h));
      this.newCanvas(w, h);
    };
    $("#draw-load-sample").onclick = () => this.loadSample(Number($("#draw-sample").value || 0));
    $("#draw-upload").onchange = (e) => { if (e.target.files[0]) this.loadFile(e.target.files[0]); e.target.value = ""; };
    $("#dl-label").onclick = () => this.downloadIds("label");
    $("#dl-label-colour").onclick = () => this.downloadIds("label", true);
    $("#dl-inst").onclick = () => this.downloadIds("inst");
    document.addEventListener("keydown", (e) => {
      if ($("#tab-draw").hidden || e.target.matches("input, select, textarea")) return;
      const k = e.key.toLowerCase();
      if ((e.ctrlKey || e.metaKey) && k === "z") { e.preventDefault(); e.shiftKey ? this.restore(this.redo, this.undo) : this.restore(this.undo, this.redo); }
      else if ((e.ctrlKey || e.metaKey) && k === "y") { e.preventDefault(); this.restore(this.redo, this.undo); }
      else if (k === "b") this.setTool("brush");
      else if (k === "f") this.setTool("fill");
      else if (k === "e") this.setTool("eraser");
      else if (k === "[") this.setSize(this.size - 1);
      else if (k === "]") this.setSize(this.size + 1);
    });
    styleListeners.add(() => { if (!$("#tab-draw").hidden && this.outputs.length && $("#auto-translate").checked) this.changed(); });
    this.setTool("brush");
    this.setSize(6);
  },
};

// ------------------------------------------------------------------------------------------------ upload tab
const Upload = {
  file: null, inst: null,
  async go(translate = true) {
    if (!this.file) { toast("Choose a file first."); return; }
    const models = selectedModels();
    if (!models.length) { toast("Select at least one model on the Models tab."); return; }
    const fd = new FormData();
    fd.append("file", this.file);
    if (this.inst) fd.append("instances", this.inst);
    fd.append("models", models.map((m) => m.id).join(","));
    fd.append("styles", JSON.stringify(stylesFor(models)));
    fd.append("fit", $("#up-fit").value);
    fd.append("translate", String(translate));
    const t0 = performance.now();
    setStatus("uploading…", true);
    try {
      const r = await api("api/upload", { form: fd });
      const base = this.file.name.replace(/\.[^.]*$/, "") || "upload";
      const lead = r.input ? [imageCard(`input (${r.kind === "label" ? "label map" : "photo"})`, r.input,
        { name: `${base}_input.png`, meta: `${r.width}×${r.height}` })] : [];
      await showOutputs($("#up-row"), r.outputs, base, lead);
      noteTiming(t0, `upload ${r.width}×${r.height}`);
      return r;
    } catch (err) { errorStatus(err); }
    return null;
  },
  pick(files) {
    this.file = files[0] || null;
    $("#up-names").textContent = [this.file && this.file.name, this.inst && `instances: ${this.inst.name}`].filter(Boolean).join(" · ");
  },
  init() {
    $("#up-file").onchange = (e) => { this.pick(e.target.files); if (this.file) this.go(); };
    $("#up-inst").onchange = (e) => { this.inst = e.target.files[0] || null; this.pick([this.file].filter(Boolean)); };
    $("#up-go").onclick = () => this.go();
    $("#up-edit").onclick = async () => {
      if (!this.file) { toast("Choose a file first."); return; }
      showTab("draw"); await Draw.loadFile(this.file);
    };
    const drop = $("#drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault(); drop.classList.remove("over");
      if (e.dataTransfer.files.length) { this.pick(e.dataTransfer.files); this.go(); }
    });
  },
};

// ------------------------------------------------------------------------------------------------ rate tab
const Rate = {
  item: null,
  async start() {
    const model = $("#rate-model").value || null;
    setStatus("preparing a sample to rate…", true);
    try {
      const it = await api("api/rate/start", { json: { model } });
      this.item = it;
      $("#rate-stage").hidden = false; $("#rate-q1").hidden = false; $("#rate-q2").hidden = true;
      $("#rate-done").textContent = "";
      $("#rate-images").replaceChildren(imageCard("input", it.input, { name: `rate_input_${it.index}.png` }),
        imageCard("translation", it.output, { cls: "output-card", name: `rate_output_${it.index}.png` }));
      this.enable("translation", true); this.enable("difference", false);
      setStatus(`rating sample ${it.index}`, false);
    } catch (err) { errorStatus(err); }
  },
  enable(q, on) { for (const b of $$(`.scores[data-q=${q}] button`)) { b.disabled = !on; b.classList.remove("active"); } },
  async score(q, v, button) {
    if (!this.item) return;
    button.classList.add("active");
    try {
      if (q === "translation") {
        const r = await api(`api/rate/${this.item.token}/translation`, { json: { score: v } });
        this.enable("translation", false); button.classList.add("active");
        const bits = [r.psnr !== null ? `PSNR ${r.psnr.toFixed(2)} dB` : "", r.ssim !== null ? `SSIM ${r.ssim.toFixed(3)}` : ""].filter(Boolean);
        $("#rate-images").append(imageCard("ground truth", r.target, { cls: "gt", name: `rate_target_${this.item.index}.png`, meta: bits.join(" · ") }));
        $("#rate-q2").hidden = false; this.enable("difference", true);
      } else {
        const r = await api(`api/rate/${this.item.token}/difference`, { json: { score: v } });
        this.enable("difference", false); button.classList.add("active");
        $("#rate-done").textContent = `Stored rating #${r.id}: the model was ${this.item.model_name} (sample ${this.item.index}, ${this.item.name}).`;
        this.renderSummary(r.summary);
        this.item = null;
      }
    } catch (err) { toast(err.message); button.classList.remove("active"); }
  },
  renderSummary(rows) {
    const t = $("#rate-summary");
    t.replaceChildren(el("tr", {}, ...["model", "family", "n", "translation (mean ± std)", "difference (mean ± std)", "checkpoint"]
      .map((h) => el("th", { text: h }))));
    if (!rows.length) t.append(el("tr", {}, el("td", { colspan: 6, class: "hint", text: "no ratings yet" })));
    for (const r of rows) t.append(el("tr", { "data-model": r.model }, el("td", { text: r.model }),
      el("td", {}, el("span", { class: `badge ${r.family}`, text: r.family })), el("td", { class: "num", text: r.n }),
      el("td", { class: "num", text: `${r.translation_mean.toFixed(2)} ± ${r.translation_std.toFixed(2)}` }),
      el("td", { class: "num", text: `${r.difference_mean.toFixed(2)} ± ${r.difference_std.toFixed(2)}` }),
      el("td", { class: "hint", text: r.checkpoint })));
  },
  init() {
    for (const box of $$(".scores")) {
      const q = box.dataset.q;
      box.append(...Array.from({ length: 11 }, (_, v) => el("button", { "data-score": v, disabled: true,
        onclick: (e) => this.score(q, v, e.currentTarget) }, String(v))));
    }
    $("#rate-start").onclick = () => this.start();
    onShow.rate = async () => {
      const sel = $("#rate-model");
      if (sel.options.length === 1) for (const id of (S.data && S.data.compatible) || []) sel.append(el("option", { value: id, text: S.byId[id].name }));
      const ok = S.data && S.data.available && S.data.has_target;
      $("#rate-start").disabled = !ok;
      if (!ok) $("#rate-done").textContent = "Rating needs --data with ground-truth photos.";
      try { this.renderSummary(await api("api/ratings/summary")); } catch (err) { toast(err.message); }
    };
  },
};

// ------------------------------------------------------------------------------------------------ start
async function main() {
  for (const b of $$("#tabs button")) b.onclick = () => showTab(b.dataset.tab);
  window.addEventListener("hashchange", () => showTab(location.hash.slice(1)));
  try {
    [S.models, S.data] = await Promise.all([api("api/models"), api("api/samples")]);
  } catch (err) { toast(`cannot reach the server: ${err.message}`); return; }
  S.byId = Object.fromEntries(S.models.map((m) => [m.id, m]));
  let saved = [];
  try { saved = JSON.parse(localStorage.getItem("pixtrans.selected") || "[]"); } catch (e) { saved = []; }
  S.selected = saved.filter((id) => S.byId[id]);
  if (!S.selected.length) S.selected = S.models.map((m) => m.id);
  Samples.init(); Draw.init(); Upload.init(); Rate.init();
  Draw.syncModel();
  renderModels();
  setStatus(`${S.models.length} model${S.models.length > 1 ? "s" : ""} loaded`);
  showTab(location.hash.slice(1) || "draw");
  document.body.dataset.ready = "1";
}

main();
