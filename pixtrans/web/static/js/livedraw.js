// Live drawing: the Draw tab's first model translates continuously while the user paints. In the page (ONNX Runtime
// Web, live.js) when the server has exported the model for the browser and the runtime is installed, else on the
// server (POST api/translate?live=1); one update in flight at a time, so the rate follows what the path achieves.
// The badge #live-path says which path ran (data-path="page" | "server"); window.liveStats is read by the benchmark.

import { $ } from "./dom.js";
import { api, idsToJson } from "./api.js";
import { stylesFor } from "./styles.js";
import { Draw } from "./draw.js";
import { LiveModel } from "./live.js";

const stats = { updates: 0, page: 0, server: 0, editSeq: 0, editAt: 0, shownSeq: -1, shownAt: 0, path: "", ms: 0,
  history: [], why: "" };
window.liveStats = stats;

export const LiveDraw = {
  inFlight: false, pending: false, model: null, engines: {}, // model id -> LiveModel | {why} | Promise

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
      $("#live-meta").textContent = `${Math.round(ms)} ms${fps ? ` · ${fps.toFixed(1)} updates/s` : ""}`
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
    const m = Draw.model, seq = stats.editSeq, w = Draw.w, h = Draw.h;
    const label = Draw.label.slice(), inst = Draw.inst.slice();
    let path = "server", image = null, ms = 0;
    try {
      const e = this.engine(m);
      const r = e ? await e.run(label, m.no_instance ? null : inst, w, h) : null;
      if (r) { path = "page"; image = r.image; ms = r.ms; }
      else {
        const t0 = performance.now();
        const body = { label: idsToJson(label, w, h), models: [m.id], styles: stylesFor([m]), fit: "full" };
        if (!m.no_instance) body.inst = idsToJson(inst, w, h);
        const res = await api("api/translate?live=1", { json: body });
        const out = res.outputs[0];
        if (!out.ok) throw new Error(out.error);
        const img = new Image(); img.src = out.image; await img.decode();
        image = img; ms = performance.now() - t0;
      }
      this.draw(image, w, h);
      stats.updates++; stats[path]++; stats.path = path; stats.ms = ms;
      stats.shownSeq = seq; stats.shownAt = performance.now();
      stats.history.push(stats.shownAt); if (stats.history.length > 200) stats.history.shift();
      this.badge(path, ms);
    } catch (err) {
      stats.why = err.message;
      $("#live-meta").textContent = `live update failed: ${err.message}`;
    }
    this.inFlight = false;
    if (this.pending) { this.pending = false; this.kick(); }
  },

  draw(image, w, h) {
    const cv = $("#live-canvas");
    if (cv.width !== w || cv.height !== h) { cv.width = w; cv.height = h; }
    const ctx = cv.getContext("2d");
    if (image instanceof ImageData) ctx.putImageData(image, 0, 0); else ctx.drawImage(image, 0, 0, w, h);
    const disp = $("#draw-canvas").style;
    cv.style.width = disp.width; cv.style.height = disp.height;
  },
};
