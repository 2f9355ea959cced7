// Draw tab: paint a label map (brush, fill, eraser, instances, undo) and translate it, after a pause or on demand.

import { $, $$, el, swatch, downloadBlob } from "./dom.js";
import { api, idsFromJson, idsToJson } from "./api.js";
import { toast, setStatus, noteTiming, errorStatus } from "./status.js";
import { S, selectedModels } from "./state.js";
import { stylesFor, styleListeners } from "./styles.js";
import { showOutputs } from "./cards.js";

export const Draw = {
  model: null, w: 0, h: 0, label: null, inst: null, cls: 0, bg: 0, tool: "brush", size: 6,
  undo: [], redo: [], counters: {}, drawing: false, last: null, strokeInst: 0, strokeCls: 0,
  timer: null, inFlight: false, dirty: false, lut: null, outputs: [],
  hooks: [], modelHooks: [], // called after every change of the map / of the palette model (live drawing)

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
    for (const f of this.modelHooks) f();
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
    for (const f of this.hooks) f();
  },

  move(e) {
    this.cursor(e);
    if (!this.drawing) return;
    const p = this.pos(e);
    this.line(this.last, p); this.last = p; this.render();
    for (const f of this.hooks) f();
  },

  up() {
    if (!this.drawing) return;
    this.drawing = false;
    this.changed();
  },

  changed() {
    for (const f of this.hooks) f();
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
