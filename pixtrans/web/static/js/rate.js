// Rate tab: the two-score rating flow (translation, then difference after the ground truth) and the summary.

import { $, $$, el } from "./dom.js";
import { api } from "./api.js";
import { toast, setStatus, errorStatus } from "./status.js";
import { S } from "./state.js";
import { imageCard } from "./cards.js";
import { onShow } from "./tabs.js";

export const Rate = {
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
