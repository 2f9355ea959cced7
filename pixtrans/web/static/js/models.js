// Models tab: the table of loaded models (tick to select), dataset line, style editors, label set legends.

import { $, el, fmtParams, swatch } from "./dom.js";
import { S } from "./state.js";
import { styleEditor } from "./styles.js";
import { Draw } from "./draw.js";

export function renderModels() {
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

export function selectionChanged() {
  localStorage.setItem("pixtrans.selected", JSON.stringify(S.selected));
  Draw.syncModel();
  renderModels();
}
