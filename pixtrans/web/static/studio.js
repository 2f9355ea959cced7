// pixtrans studio: one page over the JSON API of pixtrans/web/app.py (no libraries, no build step, works offline).
//
// This is the entry module (index.html loads it with <script type="module">); the rest is in js/, one module each:
//   dom.js     query shortcuts, element builder, swatches, downloads
//   api.js     fetch helper (ApiError) and id maps <-> the API's base64 IdArray
//   status.js  status line, toasts, request -> image timing
//   state.js   the shared state S (models, selection, dataset, styles) and the selected models
//   styles.js  style editor per model and the styles sent with a request
//   cards.js   input / ground-truth / output cards
//   tabs.js    tab switching by URL hash; onShow hooks
//   models.js, samples.js, draw.js, upload.js, rate.js   one per tab
//   live.js    ONNX Runtime Web session + input recipe (shared with the exported page); livedraw.js live drawing
// Boot: wire the tabs, load the models and the dataset summary, restore the selection, start every tab, show the
// tab in the URL hash, then mark <body data-ready="1"> (what the browser tests wait for).

import { $$ } from "./js/dom.js";
import { api } from "./js/api.js";
import { toast, setStatus } from "./js/status.js";
import { S } from "./js/state.js";
import { showTab } from "./js/tabs.js";
import { renderModels } from "./js/models.js";
import { Samples } from "./js/samples.js";
import { Draw } from "./js/draw.js";
import { Upload } from "./js/upload.js";
import { Rate } from "./js/rate.js";
import { LiveDraw } from "./js/livedraw.js";

window.Draw = Draw; // the canvas state, for the browser tests and the console (modules declare no globals)
window.LiveDraw = LiveDraw; // live drawing (benchmarks/browser_live.py switches its path)

async function main() {
  for (const b of $$("#tabs button")) b.onclick = () => showTab(b.dataset.tab);
  window.addEventListener("hashchange", () => showTab(location.hash.slice(1)));
  try {
    [S.models, S.data] = await Promise.all([api("api/models"), api("api/samples")]);
  } catch (err) { toast(`cannot reach the server: ${err.message}`); return; }
  S.byId = Object.fromEntries(S.models.map((m) => [m.id, m]));
  let saved = [];
  try { saved = JSON.parse(localStorage.getItem("pixtrans.selected") || "[]"); } catch (e) { saved = []; }
  S.selected = saved.filter((id) => S.byId[id]);
  if (!S.selected.length) S.selected = S.models.map((m) => m.id);
  Samples.init(); Draw.init(); Upload.init(); Rate.init(); LiveDraw.init();
  Draw.syncModel();
  renderModels();
  setStatus(`${S.models.length} model${S.models.length > 1 ? "s" : ""} loaded`);
  showTab(location.hash.slice(1) || "draw");
  document.body.dataset.ready = "1";
}

main();
