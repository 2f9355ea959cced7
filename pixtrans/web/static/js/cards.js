// Image cards: an input/ground-truth card, and an output card per model (metrics, style used, editor).

import { $$, el, whenLoaded } from "./dom.js";
import { S } from "./state.js";
import { keepUsedSeed, useStyle, styleEditor } from "./styles.js";

export function imageCard(title, src, { cls = "", name = "image.png", badge = null, meta = "" } = {}) {
  const img = el("img", { class: "view", src, alt: title });
  return el("div", { class: `card ${cls}` },
    el("header", {}, el("b", { text: title }), badge ? el("span", { class: "badge", text: badge }) : null),
    img, meta ? el("div", { class: "meta", text: meta }) : null,
    el("div", { class: "actions" }, el("a", { href: src, download: name }, "⬇ PNG")));
}

export function outputCard(out, base) {
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

export async function showOutputs(container, outputs, base, lead = []) {
  outputs.forEach(keepUsedSeed);
  container.replaceChildren(...lead, ...outputs.map((o) => outputCard(o, base)));
  await Promise.all($$("img", container).map(whenLoaded));
}
