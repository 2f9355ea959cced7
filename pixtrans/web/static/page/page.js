// The exported static page (`pixtrans export RUN --format web`): draw or upload a label map, translated in the page
// by ONNX Runtime Web while drawing (one update in flight at a time), download the output or the label map.
// Needs model.onnx + model.json (the export sidecar: input recipe, palette, class names, size, the backends whose
// runtime files were shipped) beside index.html. The model runs through the studio's live.js: WebGPU when the browser
// gives an adapter and the export shipped the WebGPU build (--webgpu), else WASM; body[data-backend] says which.

import { LiveModel } from "./live.js";

const $ = (s) => document.querySelector(s);
const P = { side: null, model: null, w: 0, h: 0, label: null, cls: 1, size: 12, drawing: false, last: null,
  busy: false, again: false, times: [], updates: 0, seq: 0, shownSeq: -1 };
window.pageState = P;

function status(text) { $("#status").textContent = text; }

function render() {
  const cv = $("#draw"), ctx = cv.getContext("2d"), img = ctx.createImageData(P.w, P.h), pal = P.side.palette;
  for (let i = 0; i < P.label.length; i++) {
    const c = pal[P.label[i]] || [0, 0, 0];
    img.data.set(c, i * 4); img.data[i * 4 + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

function changed() { P.seq++; render(); translate(); }

async function translate() {
  if (!P.model) return;
  if (P.busy) { P.again = true; return; }
  P.busy = true;
  const seq = P.seq;
  try {
    const r = await P.model.run(P.label, null, P.w, P.h);
    $("#out").getContext("2d").putImageData(r.image, 0, 0);
    P.updates++; P.shownSeq = seq;
    P.times.push(performance.now()); if (P.times.length > 10) P.times.shift();
    const span = P.times.length > 1 ? P.times.at(-1) - P.times[0] : 0;
    const fps = span ? ` · ${((P.times.length - 1) * 1000 / span).toFixed(1)} updates/s` : "";
    $("#meta").textContent = `${P.model.backend} · ${Math.round(r.ms)} ms${fps}`;
  } catch (err) { status(`error: ${err.message}`); }
  P.busy = false;
  if (P.again) { P.again = false; translate(); }
}

function pos(e) {
  const r = $("#draw").getBoundingClientRect();
  return [Math.floor((e.clientX - r.left) * P.w / r.width), Math.floor((e.clientY - r.top) * P.h / r.height)];
}

function stamp(cx, cy) {
  const r = (P.size - 1) / 2, r2 = (r + 0.5) ** 2;
  for (let y = Math.max(0, Math.floor(cy - r)); y <= Math.min(P.h - 1, Math.ceil(cy + r)); y++)
    for (let x = Math.max(0, Math.floor(cx - r)); x <= Math.min(P.w - 1, Math.ceil(cx + r)); x++)
      if ((x - cx) ** 2 + (y - cy) ** 2 <= r2) P.label[y * P.w + x] = P.cls;
}

function line(a, b) {
  const n = Math.max(Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1]), 1);
  for (let k = 0; k <= n; k++) stamp(a[0] + (b[0] - a[0]) * k / n, a[1] + (b[1] - a[1]) * k / n);
}

// An uploaded image -> ids at the model's size (nearest): exact palette colours, else grey levels as ids, else the
// nearest palette colour.
async function upload(file) {
  const bmp = await createImageBitmap(file);
  const cv = new OffscreenCanvas(P.w, P.h), ctx = cv.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(bmp, 0, 0, P.w, P.h);
  const d = ctx.getImageData(0, 0, P.w, P.h).data, pal = P.side.palette, nc = P.side.label_nc;
  const exact = new Map(pal.map((c, i) => [(c[0] << 16) | (c[1] << 8) | c[2], i]));
  for (let i = 0; i < P.label.length; i++) {
    const r = d[i * 4], g = d[i * 4 + 1], b = d[i * 4 + 2], key = (r << 16) | (g << 8) | b;
    if (exact.has(key)) P.label[i] = exact.get(key);
    else if (r === g && g === b && r < nc) P.label[i] = r;
    else {
      let best = 0, bd = Infinity;
      pal.forEach((c, k) => { const dd = (c[0] - r) ** 2 + (c[1] - g) ** 2 + (c[2] - b) ** 2; if (dd < bd) { bd = dd; best = k; } });
      P.label[i] = best;
    }
  }
  changed();
}

function download(canvas, name) {
  canvas.toBlob((blob) => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob); a.download = name;
    document.body.append(a); a.click(); a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 5000);
  }, "image/png");
}

function palette() {
  const box = $("#palette"), side = P.side;
  box.replaceChildren(...side.class_names.map((name, i) => {
    const b = document.createElement("button"), sw = document.createElement("span");
    sw.className = "sw"; sw.style.background = `rgb(${side.palette[i].join(",")})`;
    b.dataset.class = i; b.title = `${i}: ${name}`; b.append(sw, name);
    b.onclick = () => { P.cls = i; for (const x of box.children) x.classList.toggle("active", x === b); };
    return b;
  }));
  box.children[Math.min(1, box.children.length - 1)].click();
}

async function main() {
  P.side = await (await fetch("model.json")).json();
  if (P.side.input_kind !== "label") { status("this page draws label maps; the model takes photos"); return; }
  [P.w, P.h] = P.side.export_size;
  P.label = new Int32Array(P.w * P.h);
  $("#model-name").textContent = `${P.side.family} · ${P.side.checkpoint || "model"}`;
  for (const id of ["#draw", "#out"]) { $(id).width = P.w; $(id).height = P.h; }
  palette();
  render();
  const cv = $("#draw");
  cv.addEventListener("pointerdown", (e) => {
    e.preventDefault(); cv.setPointerCapture(e.pointerId);
    P.drawing = true; P.last = pos(e); stamp(...P.last); changed();
  });
  cv.addEventListener("pointermove", (e) => { if (P.drawing) { const p = pos(e); line(P.last, p); P.last = p; changed(); } });
  cv.addEventListener("pointerup", () => { P.drawing = false; });
  $("#size").oninput = (e) => { P.size = Number(e.target.value); $("#size-out").textContent = P.size; };
  $("#clear").onclick = () => { P.label.fill(0); changed(); };
  $("#upload").onchange = (e) => { if (e.target.files[0]) upload(e.target.files[0]); e.target.value = ""; };
  $("#dl-out").onclick = () => download($("#out"), "output.png");
  $("#dl-label").onclick = () => download($("#draw"), "label_colours.png");
  status("loading the model…");
  try {
    P.model = await LiveModel.create("model.onnx", P.side, P.side.backends || ["wasm"]);
    P.model.release(); // one session here: the graph's bytes are not needed again
  } catch (err) { status(`cannot start ONNX Runtime Web: ${err.message}`); return; }
  document.body.dataset.backend = P.model.kind;
  $("#meta").title = P.model.note;
  status(`ready · ${P.model.backend}${crossOriginIsolated ? "" : " (serve with serve.py for threads)"}`);
  await translate();
  document.body.dataset.ready = "1";
}

main();
