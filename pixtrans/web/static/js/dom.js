// DOM helpers: query shortcuts, an element builder, colour swatches, downloads.

export const $ = (sel, root = document) => root.querySelector(sel);
export const $$ = (sel, root = document) => [...root.querySelectorAll(sel)];

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "style" && typeof v === "object") Object.assign(e.style, v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false)
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

export const fmtParams = (n) => n >= 1e6 ? `${(n / 1e6).toFixed(2)} M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k` : `${n}`;
export const rgb = (c) => c ? `rgb(${c[0]},${c[1]},${c[2]})` : "#000";
export const swatch = (c, title) => el("span", { class: "swatch", style: { background: rgb(c) }, title });

export function download(href, name) {
  const a = el("a", { href, download: name });
  document.body.append(a); a.click(); a.remove();
}

export async function downloadBlob(blob, name) {
  const url = URL.createObjectURL(blob);
  download(url, name);
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

export const whenLoaded = (img) => img.decode ? img.decode().catch(() => {}) : Promise.resolve();
