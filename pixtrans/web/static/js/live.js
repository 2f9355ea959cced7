// In-page inference with ONNX Runtime Web (WebGPU when the browser gives an adapter and the WebGPU build is installed,
// else WASM; SIMD + threads when the page is cross-origin isolated): load a
// generator exported by pixtrans (pixtrans/infer/web_export.py), build the input its sidecar describes from an id map
// (one-hot channels [+ don't care] [+ instance boundary]; other inputs zeros = neutral style), run it, and turn the
// output into ImageData. Shared by the studio (livedraw.js) and the exported static page (page.js).
// The runtime's files sit in ../ort/ beside this module (installed by `make install`, never from a CDN).

const ORT_BASE = new URL("../ort/", import.meta.url).href;
// each build's ES module: the WebGPU one also runs the WASM provider, but with a larger (asyncify) binary
const BUNDLES = { wasm: "ort.wasm.min.mjs", webgpu: "ort.webgpu.min.mjs" };
const ortPromises = {};

export function threadsWanted() {
  return globalThis.crossOriginIsolated ? Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) : 1;
}

export function loadOrt(kind = "wasm") {
  if (!ortPromises[kind]) {
    const p = import(`${ORT_BASE}${BUNDLES[kind]}`).then((ort) => {
      ort.env.wasm.wasmPaths = ORT_BASE;
      ort.env.wasm.numThreads = threadsWanted();
      ort.env.logLevel = "error";
      return ort;
    });
    ortPromises[kind] = p;
    p.catch(() => { delete ortPromises[kind]; });
  }
  return ortPromises[kind];
}

// The browser's WebGPU adapter, or null (no navigator.gpu: insecure page, disabled GPU, older browser).
export async function webgpuAdapter() {
  if (!globalThis.navigator || !navigator.gpu) return null;
  try { return await navigator.gpu.requestAdapter(); } catch { return null; }
}

const dimOf = (d, h, w) => d === "batch" ? 1 : d === "height" ? h : d === "width" ? w : typeof d === "number" ? d : 1;

export class LiveModel {
  // kind: "webgpu" | "wasm" (the execution provider that runs the graph); note: why WebGPU is not used ("" if it is)
  constructor(ort, session, side, kind = "wasm", note = "", bytes = null) {
    this.ort = ort; this.session = session; this.side = side; this.kind = kind; this.note = note;
    this.bytes = bytes; // the graph, kept until the preview session is made or release() drops it
    this.preview = null; // a second session for reduced-resolution runs (see addPreview)
    this.inputName = side.inputs[0].name;
    this.outputName = session.outputNames[0];
    this.bufs = new Map(); // input length -> Float32Array, one per run size
    this.backend = kind === "webgpu" ? `WebGPU${note ? ` (${note})` : ""}`
      : `WASM${threadsWanted() > 1 ? ` ×${threadsWanted()} threads` : " (1 thread)"}`;
  }

  // backends: those the server installed, preferred first ("webgpu" is tried only when the browser gives an adapter;
  // a WebGPU session that fails to build falls back to WASM, with the reason in .note).
  static async create(modelUrl, side, backends = ["wasm"]) {
    const res = await fetch(modelUrl);
    if (!res.ok) throw new Error(`${modelUrl}: HTTP ${res.status}`);
    const bytes = new Uint8Array(await res.arrayBuffer());
    let note = "";
    if (backends.includes("webgpu")) {
      const adapter = await webgpuAdapter();
      if (adapter) {
        try {
          const ort = await loadOrt("webgpu");
          const session = await ort.InferenceSession.create(bytes, LiveModel.options("webgpu"));
          const info = adapter.info || {};
          return new LiveModel(ort, session, side, "webgpu", info.architecture || info.vendor || "", bytes);
        } catch (err) { note = `WebGPU failed: ${err.message}`; }
      } else note = "no WebGPU adapter";
    }
    const ort = await loadOrt("wasm");
    const session = await ort.InferenceSession.create(bytes, LiveModel.options("wasm"));
    return new LiveModel(ort, session, side, "wasm", note, bytes);
  }

  static options(kind) { return { executionProviders: [kind], graphOptimizationLevel: "all" }; }

  // A second session for the reduced-resolution runs while drawing: a session that switches from small inputs back
  // to the full size plans that size again (measured: the full-resolution run after a stroke took ~2x as long), so
  // the full size keeps its own session. Costs a second copy of the weights.
  async addPreview() {
    if (!this.preview && this.bytes) {
      this.preview = await this.ort.InferenceSession.create(this.bytes, LiveModel.options(this.kind));
    }
    this.release();
  }

  // Drop the in-memory copy of the graph (the sessions hold their own): a page with no preview session calls this.
  release() { this.bytes = null; }

  // The size the graph runs at for a w x h map: padded up to the size multiple, or the fixed export size.
  runSize(w, h) {
    const s = this.side, m = s.size_multiple;
    if (!s.dynamic) return s.export_size[0] === w && s.export_size[1] === h ? [w, h] : null;
    return [Math.ceil(w / m) * m, Math.ceil(h / m) * m];
  }

  // The first input: one-hot ids (edge-replicated to W x H), don't-care channel, instance boundary channel.
  buildInput(label, inst, w, h, W, H) {
    const s = this.side, C = s.input_channels, nc = s.label_nc, plane = W * H;
    if (!this.bufs.has(C * plane)) this.bufs.set(C * plane, new Float32Array(C * plane));
    const x = this.bufs.get(C * plane); x.fill(0);
    const ids = new Int32Array(plane), ins = s.instance_boundary ? new Int32Array(plane) : null;
    for (let y = 0; y < H; y++) {
      const sy = Math.min(y, h - 1) * w, row = y * W;
      for (let xx = 0; xx < W; xx++) {
        const i = sy + Math.min(xx, w - 1);
        ids[row + xx] = label[i];
        if (ins) ins[row + xx] = inst ? inst[i] : label[i];
      }
    }
    for (let i = 0; i < plane; i++) {
      const v = ids[i];
      if (v >= 0 && v < nc) x[v * plane + i] = 1;
      else if (v === 255 && s.contain_dontcare) x[nc * plane + i] = 1;
    }
    if (ins) {
      const e = (C - 1) * plane;
      for (let y = 0; y < H; y++) for (let xx = 0; xx < W; xx++) {
        const i = y * W + xx, v = ins[i];
        if ((xx > 0 && ins[i - 1] !== v) || (xx + 1 < W && ins[i + 1] !== v)
          || (y > 0 && ins[i - W] !== v) || (y + 1 < H && ins[i + W] !== v)) x[e + i] = 1;
      }
    }
    return x;
  }

  feeds(label, inst, w, h, W, H) {
    const T = this.ort.Tensor, s = this.side;
    const f = { [this.inputName]: new T("float32", this.buildInput(label, inst, w, h, W, H), [1, s.input_channels, H, W]) };
    for (const spec of s.inputs.slice(1)) {
      const dims = spec.shape.map((d) => dimOf(d, H, W));
      f[spec.name] = new T("float32", new Float32Array(dims.reduce((a, b) => a * b, 1)), dims);
    }
    return f;
  }

  // Translate a w x h id map -> {image: ImageData (w x h), ms, parts: {encode, infer, output} ms}; null when the
  // graph cannot take this size.
  // preview: a reduced-resolution run (on the preview session when there is one).
  async run(label, inst, w, h, preview = false) {
    const size = this.runSize(w, h);
    if (!size) return null;
    const [W, H] = size, t0 = performance.now();
    const feeds = this.feeds(label, inst, w, h, W, H), t1 = performance.now();
    const out = await (preview && this.preview ? this.preview : this.session).run(feeds), t2 = performance.now();
    const y = out[this.outputName];
    const image = toImageData(y.data, y.dims, w, h);
    if (y.dispose) y.dispose();
    const t3 = performance.now();
    return { image, ms: t3 - t0, parts: { encode: t1 - t0, infer: t2 - t1, output: t3 - t2 } };
  }

  // One run on an empty w x h map (the runtime plans each new input shape on its first run) -> its ms.
  async warm(w, h, preview = true) {
    const r = await this.run(new Int32Array(w * h), null, w, h, preview);
    return r ? r.ms : null;
  }
}

// (1, C, H, W) in [-1, 1] -> ImageData of the top-left w x h; Uint8ClampedArray rounds half to even, like torch.
export function toImageData(data, dims, w, h) {
  const [, C, H, W] = dims, plane = H * W, img = new ImageData(w, h), d = img.data;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = y * W + x, p = (y * w + x) * 4;
    for (let c = 0; c < 3; c++) d[p + c] = (data[(C >= 3 ? c : 0) * plane + i] + 1) * 127.5;
    d[p + 3] = 255;
  }
  return img;
}
