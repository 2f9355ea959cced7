// Upload tab: a label map or photo file of any size, resized, full or tiled.

import { $ } from "./dom.js";
import { api } from "./api.js";
import { toast, setStatus, noteTiming, errorStatus } from "./status.js";
import { selectedModels } from "./state.js";
import { stylesFor } from "./styles.js";
import { imageCard, showOutputs } from "./cards.js";
import { showTab } from "./tabs.js";
import { Draw } from "./draw.js";

export const Upload = {
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
