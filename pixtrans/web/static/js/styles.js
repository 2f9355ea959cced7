// Styles per model: the editor (seed, K-means clusters, reference photo) and the style sent with a request.

import { $$, el, swatch } from "./dom.js";
import { api } from "./api.js";
import { toast } from "./status.js";
import { S } from "./state.js";

export function styleState(id) {
  return S.styles[id] ||= { seed: null, cluster: "", clusters: {}, reference: null, refPreview: null };
}

export function styleFor(id) {
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

export function stylesFor(models) {
  const out = {};
  for (const m of models) { const s = styleFor(m.id); if (Object.keys(s).length) out[m.id] = s; }
  return out;
}

export function keepUsedSeed(out) { // pin a server-drawn seed so the next translation keeps the look
  const st = styleState(out.model), m = S.byId[out.model];
  if (out.ok && out.style && m.style.seed && st.seed === null && Number.isInteger(out.style.seed)) {
    st.seed = out.style.seed;
  }
}

export function useStyle(id, used) {
  const st = styleState(id);
  st.seed = Number.isInteger(used.seed) ? used.seed : null;
  st.cluster = "";
  st.clusters = used.clusters ? Object.fromEntries(Object.entries(used.clusters).map(([c, k]) => [c, String(k)])) : {};
  if (used.reference) st.reference = used.reference;
  refreshStyleEditors();
  toast(`${id}: style set — translate again to reproduce`, "info");
}

export const styleListeners = new Set();
export function styleChanged() { refreshStyleEditors(); for (const f of styleListeners) f(); }

export function refreshStyleEditors() {
  for (const box of $$("[data-style-editor]")) box.replaceWith(styleEditor(box.dataset.styleEditor));
}

export function styleEditor(id) {
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
