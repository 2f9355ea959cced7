// Samples tab: a test sample of --data translated by every selected model beside the ground truth.

import { $ } from "./dom.js";
import { api } from "./api.js";
import { toast, setStatus, noteTiming, errorStatus } from "./status.js";
import { S, selectedModels } from "./state.js";
import { stylesFor, styleListeners } from "./styles.js";
import { imageCard, showOutputs } from "./cards.js";
import { onShow, showTab } from "./tabs.js";
import { Draw } from "./draw.js";

export const Samples = {
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
