// Live drawing: the Draw tab's first model translates continuously while the user paints. In the page (ONNX Runtime
// Web, live.js) when the server has exported the model for the browser and the runtime is installed, else on the
// server (POST api/translate?live=1); one update in flight at a time, so the rate follows what the path achieves.
// While the pointer is down an update that takes longer than budgetMs switches to 1/2 (then 1/4) resolution, scaled
// up for display; the update after the stroke ends is always at full resolution.
// The badge #live-path says which path ran (data-path="page" | "server"); window.liveStats is read by the benchmark.

import { $ } from "./dom.js";
import { api, idsToJson } from "./api.js";
import { stylesFor } from "./styles.js";
import { Draw } from "./draw.js";
import { LiveModel } from "./live.js";

const stats = { updates: 0, page: 0, server: 0, editSeq: 0, editAt: 0, shownSeq: -1, shownAt: 0, path: "", ms: 0,
  history: [], scales: [], scale: 1, why: "" };
window.liveStats = stats;


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
  budgetMs: 150, // while the pointer is down, drop to 1/2 or 1/4 resolution when an update takes longer

  // Full resolution unless drawing and the full-resolution updates on this path take longer than budgetMs.
  scale(path) {
    if (!Draw.drawing) return 1;
    let s = 1;
    while (s < 4 && (this.msAt[`${path}:${s}`] || 0) > this.budgetMs) s *= 2;
    return s;
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
          this.engines[m.id] = await LiveModel.create(r.url, r.sidecar);
        } catch (err) {
          this.engines[m.id] = { why: `in-page inference unavailable: ${err.message}` };
        }
        this.badge();
        this.kick();
      })();
      return null;
    }
    return e instanceof LiveModel ? e : null;
  },

  badge(path = stats.path, ms = null) {
    const b = $("#live-path"), e = Draw.model && this.engines[Draw.model.id];
    b.dataset.path = path;
    b.textContent = path === "page" ? `in page · ${e.backend}` : path === "server" ? "server" : "—";
    const why = e && e.why ? e.why : e instanceof LiveModel ? "" : "in-page model loading…";
    b.title = path === "server" && why ? why : "";
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
    const m = Draw.model, seq = stats.editSeq, e = this.engine(m);
    let path = e && e.runSize(Draw.w, Draw.h) ? "page" : "server", image = null, ms = 0;
    const s = this.scale(path);
    const [label, w, h] = subsample(Draw.label.slice(), Draw.w, Draw.h, s);
    const [inst] = subsample(Draw.inst.slice(), Draw.w, Draw.h, s);
    try {
      const r = path === "page" ? await e.run(label, m.no_instance ? null : inst, w, h) : null;
      if (r) { image = r.image; ms = r.ms; }
      else {
        path = "server";
        const t0 = performance.now();
        const body = { label: idsToJson(label, w, h), models: [m.id], styles: stylesFor([m]), fit: "full" };
        if (!m.no_instance) body.inst = idsToJson(inst, w, h);
        const res = await api("api/translate?live=1", { json: body });
        const out = res.outputs[0];
        if (!out.ok) throw new Error(out.error);
        const img = new Image(); img.src = out.image; await img.decode();
        image = img; ms = performance.now() - t0;
      }
      this.draw(image, Draw.w, Draw.h);
      const key = `${path}:${s}`;
      this.msAt[key] = this.msAt[key] ? 0.5 * this.msAt[key] + 0.5 * ms : ms;
      stats.updates++; stats[path]++; stats.path = path; stats.ms = ms; stats.scale = s;
      stats.shownSeq = seq; stats.shownAt = performance.now();
      stats.history.push(stats.shownAt); stats.scales.push(s);
      if (stats.history.length > 400) { stats.history.shift(); stats.scales.shift(); }
      this.badge(path, ms);
    } catch (err) {
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
