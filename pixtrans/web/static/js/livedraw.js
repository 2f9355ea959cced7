// Live drawing: the Draw tab's first model translates continuously while the user paints. In the page (ONNX Runtime
// Web, live.js) when the server has exported the model for the browser and the runtime is installed, else on the
// server (POST api/translate?live=1); one update in flight at a time, so the rate follows what the path achieves.
// While the pointer is down each update runs at the finest of 1, 1/2, 1/4, 1/8 resolution whose measured update time
// fits the frame budget (budgetMs; unmeasured scales estimated from a measured one by pixel count), scaled up for
// display; the update after the stroke ends is always at full resolution, on whichever path (page or server) has the
// lower median of its recent full-resolution update times (see path()). Once the in-page model is ready, a second
// session for the reduced scales is made (live.js: the full size keeps its own plan) and every reduced scale is run
// once on it (the runtime plans each input shape on its first run) to measure it before drawing.
// The badge #live-path says which path ran (data-path="page" | "server"), data-backend which backend ("webgpu" |
// "wasm" | "server") and data-final which path made the last full-resolution image after drawing; window.liveStats is
// read by the benchmark (per update: time, scale, where the time went; full-resolution times per path).

import { $ } from "./dom.js";
import { api, idsToJson } from "./api.js";
import { stylesFor } from "./styles.js";
import { Draw } from "./draw.js";
import { LiveModel } from "./live.js";

const stats = { updates: 0, page: 0, server: 0, editSeq: 0, editAt: 0, shownSeq: -1, shownAt: 0, path: "", ms: 0,
  history: [], scales: [], parts: [], scale: 1, why: "", backend: "", final: "", full: null };
window.liveStats = stats;

// The lower median (a first run that includes planning a size does not pull a pair of times up).
const median = (v) => (v.length ? [...v].sort((a, b) => a - b)[(v.length - 1) >> 1] : null);
const secs = (ms) => (ms === Infinity ? "failed" : ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms)} ms`);


// Every s-th pixel of a w x h map (nearest downsampling) -> [ids, w', h'].
function subsample(arr, w, h, s) {
  if (s === 1) return [arr, w, h];
  const W = Math.ceil(w / s), H = Math.ceil(h / s), out = new Int32Array(W * H);
  for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) out[y * W + x] = arr[y * s * w + x * s];
  return [out, W, H];
}

export const LiveDraw = {
  inFlight: false, pending: false, model: null, engines: {}, // model id -> LiveModel | {why} | Promise
  msAt: {}, // "path:scale" -> recent update time (ms)
  budgetMs: 200, // frame budget while the pointer is down (5 updates/s): the finest scale whose updates fit it
  scales: [1, 2, 4, 8], // resolution divisors while drawing
  full: { page: [], server: [] }, // recent full-resolution update times per path (ms), for the choice in path()
  fullKeep: 5, // how many of them the medians use
  fullRuns: 0, // full-resolution updates chosen by time (every probeEvery-th goes to the slower path)
  probeEvery: 10,
  finalPath: "auto", // "auto" | "page" | "server": forces the full-resolution path (benchmark and tests)
  slowMs: { page: 0, server: 0 }, // test hook: extra ms added to a path's full-resolution updates

  // The path for the next update: while drawing the page (when it can run the map); otherwise the path whose median
  // full-resolution time is lower. A path with fewer than 2 such times is tried first (an in-page size's first run
  // includes planning it), and every probeEvery-th update goes to the slower path so that its median stays current.
  path(e) {
    if (!e || !e.runSize(Draw.w, Draw.h)) return "server";
    if (Draw.drawing) return "page";
    if (this.finalPath !== "auto") return this.finalPath;
    const n = (p) => this.full[p].length;
    if (n("page") < 2 || n("server") < 2) return n("server") < n("page") ? "server" : "page";
    const fast = median(this.full.page) <= median(this.full.server) ? "page" : "server";
    this.fullRuns++;
    return this.fullRuns % this.probeEvery === 0 ? (fast === "page" ? "server" : "page") : fast;
  },

  recordFull(path, ms) {
    const v = this.full[path];
    v.push(ms);
    if (v.length > this.fullKeep) v.shift();
    stats.full = { page: median(this.full.page), server: median(this.full.server) };
  },

  // An update's expected ms at divisor s on this path: measured, else from the nearest measured scale by pixel count.
  expectMs(path, s) {
    const known = this.scales.filter((k) => this.msAt[`${path}:${k}`] !== undefined);
    if (!known.length) return null;
    if (known.includes(s)) return this.msAt[`${path}:${s}`];
    const k = known.reduce((a, b) => (Math.abs(Math.log(b / s)) < Math.abs(Math.log(a / s)) ? b : a));
    return this.msAt[`${path}:${k}`] * (k / s) ** 2;
  },

  // Full resolution unless drawing; while drawing the finest scale expected to fit budgetMs (else the coarsest).
  scale(path) {
    if (!Draw.drawing) return 1;
    for (const s of this.scales) {
      const ms = this.expectMs(path, s);
      if (ms === null || ms <= this.budgetMs) return s;
    }
    return this.scales.at(-1);
  },

  // Plan and time each reduced scale once, coarsest first, through the one-update-at-a-time gate.
  async warmUp(e) {
    await e.addPreview();
    for (const s of this.scales.slice(1).reverse()) {
      while (this.inFlight) await new Promise((r) => setTimeout(r, 20));
      if (!this.on() || this.engines[Draw.model.id] !== e) return;
      this.inFlight = true;
      try {
        const size = e.runSize(Math.ceil(Draw.w / s), Math.ceil(Draw.h / s));
        const ms = size ? await e.warm(...size) : null;
        if (ms !== null) this.msAt[`page:${s}`] = ms;
      } catch { /* the next real update reports errors */ }
      this.inFlight = false;
    }
  },

  on() { return $("#live").checked && !!Draw.model; },

  init() {
    Draw.hooks.push(() => this.poke());
    Draw.modelHooks.push(() => this.show());
    $("#live").onchange = () => { this.show(); this.kick(); };
    this.show();
  },

  show() {
    $("#live-card").hidden = !this.on();
    if (this.on()) { $("#live-name").textContent = Draw.model.name; this.engine(Draw.model); }
  },

  // The in-page engine for model m: started once (export on the server, then the session), null until ready.
  engine(m) {
    const e = this.engines[m.id];
    if (e === undefined) {
      this.engines[m.id] = (async () => {
        try {
          const r = await api(`api/models/${encodeURIComponent(m.id)}/web`);
          if (!r.available) throw new Error(r.why);
          this.engines[m.id] = await LiveModel.create(r.url, r.sidecar, r.backends || ["wasm"]);
          this.badge();
          await this.warmUp(this.engines[m.id]);
        } catch (err) {
          this.engines[m.id] = { why: `in-page inference unavailable: ${err.message}` };
        }
        this.badge();
        this.pending = false;
        this.kick();
      })();
      return null;
    }
    return e instanceof LiveModel ? e : null;
  },

  badge(path = stats.path, ms = null) {
    const b = $("#live-path"), e = Draw.model && this.engines[Draw.model.id];
    b.dataset.path = path;
    b.dataset.backend = path === "page" ? e.kind : path;
    b.dataset.final = stats.final;
    b.textContent = path === "page" ? `in page · ${e.backend}` : path === "server" ? "server" : "—";
    const why = e && e.why ? e.why : e instanceof LiveModel ? "" : "in-page model loading…";
    b.title = path === "server" && why ? why : path === "page" && e.note ? e.note : "";
    const { page: pm, server: sm } = stats.full || {};
    if (path === stats.final && stats.scale === 1 && !Draw.drawing && pm != null && sm != null) {
      // which path made this full-resolution image, and the medians it was chosen by
      b.textContent += ` · full res ${secs(path === "page" ? pm : sm)} (${path === "page" ? "server" : "in page"} ${
        secs(path === "page" ? sm : pm)})`;
      if (!b.title) b.title = `full-resolution images go to the faster path: in page ${secs(pm)}, server ${secs(sm)} (median)`;
    }
    if (ms !== null) {
      const recent = stats.history.slice(-10), span = recent.length > 1 ? recent.at(-1) - recent[0] : 0;
      const fps = span > 0 ? (recent.length - 1) * 1000 / span : 0;
      const res = stats.scale > 1 ? ` · 1/${stats.scale} resolution while drawing` : "";
      $("#live-meta").textContent = `${Math.round(ms)} ms${fps ? ` · ${fps.toFixed(1)} updates/s` : ""}${res}`
        + (path === "server" && why ? ` · ${why}` : "");
    }
  },

  poke() { // the map changed
    stats.editSeq++; stats.editAt = performance.now();
    this.kick();
  },

  kick() {
    if (!this.on()) return;
    if (this.inFlight) { this.pending = true; return; }
    this.inFlight = true;
    requestAnimationFrame(() => this.update());
  },

  async update() {
    const m = Draw.model, seq = stats.editSeq, e = this.engine(m), drawing = Draw.drawing;
    let path = this.path(e), image = null, ms = 0, parts = {};
    const s = this.scale(path), t0 = performance.now();
    const slow = () => (s === 1 && this.slowMs[path] ? new Promise((r) => setTimeout(r, this.slowMs[path])) : null);
    const [label, w, h] = subsample(Draw.label.slice(), Draw.w, Draw.h, s);
    const [inst] = subsample(Draw.inst.slice(), Draw.w, Draw.h, s);
    const tSub = performance.now() - t0;
    try {
      const r = path === "page" ? await e.run(label, m.no_instance ? null : inst, w, h, s > 1) : null;
      if (r) {
        const tSlow = performance.now();
        await slow();
        image = r.image; ms = r.ms + tSub + (performance.now() - tSlow);
        parts = { ...r.parts, encode: r.parts.encode + tSub };
      } else {
        path = "server";
        const t0 = performance.now();
        await slow();
        const body = { label: idsToJson(label, w, h), models: [m.id], styles: stylesFor([m]), fit: "full" };
        if (!m.no_instance) body.inst = idsToJson(inst, w, h);
        const res = await api("api/translate?live=1", { json: body });
        const out = res.outputs[0];
        if (!out.ok) throw new Error(out.error);
        const img = new Image(); img.src = out.image; await img.decode();
        image = img; ms = performance.now() - t0;
      }
      const tDraw = performance.now();
      this.draw(image, Draw.w, Draw.h);
      parts.draw = performance.now() - tDraw; ms += parts.draw;
      const key = `${path}:${s}`;
      this.msAt[key] = this.msAt[key] ? 0.5 * this.msAt[key] + 0.5 * ms : ms;
      if (s === 1 && e) this.recordFull(path, ms); // the server's times count once the page is a candidate
      if (s === 1 && !drawing) stats.final = path;
      stats.updates++; stats[path]++; stats.path = path; stats.ms = ms; stats.scale = s;
      stats.backend = path === "page" ? e.kind : path;
      stats.shownSeq = seq; stats.shownAt = performance.now();
      stats.history.push(stats.shownAt); stats.scales.push(s); stats.parts.push(parts);
      if (stats.history.length > 400) { stats.history.shift(); stats.scales.shift(); stats.parts.shift(); }
      this.badge(path, ms);
    } catch (err) {
      if (s === 1 && e && path === "server") { this.recordFull(path, Infinity); this.pending = true; } // page next
      stats.why = err.message;
      $("#live-meta").textContent = `live update failed: ${err.message}`;
    }
    this.inFlight = false;
    if (this.pending) { this.pending = false; this.kick(); }
  },

  draw(image, w, h) { // at the canvas size w x h (a reduced-resolution update is scaled up)
    const cv = $("#live-canvas");
    if (cv.width !== w || cv.height !== h) { cv.width = w; cv.height = h; }
    const ctx = cv.getContext("2d");
    if (image instanceof ImageData && image.width === w && image.height === h) ctx.putImageData(image, 0, 0);
    else {
      let src = image;
      if (image instanceof ImageData) {
        src = new OffscreenCanvas(image.width, image.height);
        src.getContext("2d").putImageData(image, 0, 0);
      }
      ctx.drawImage(src, 0, 0, w, h);
    }
    const disp = $("#draw-canvas").style;
    cv.style.width = disp.width; cv.style.height = disp.height;
  },
};
