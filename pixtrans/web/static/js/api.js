// The JSON API: fetch with errors as ApiError(status, detail), and id maps <-> the API's base64 IdArray.

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

export async function api(path, { json, form, method } = {}) {
  const init = { method: method || (json !== undefined || form ? "POST" : "GET"), headers: {} };
  if (json !== undefined) { init.headers["Content-Type"] = "application/json"; init.body = JSON.stringify(json); }
  if (form) init.body = form;
  if (init.method !== "GET") init.headers["X-Pixtrans"] = "1";  // the server refuses other cross-site-capable posts
  const r = await fetch(path, init);
  if (!r.ok) {
    let msg = `${r.status} ${r.statusText}`;
    try { const j = await r.json(); if (j.detail) msg = typeof j.detail === "string" ? j.detail : JSON.stringify(j.detail); }
    catch (e) { /* not JSON */ }
    throw new ApiError(r.status, msg);
  }
  const ct = r.headers.get("content-type") || "";
  return ct.includes("application/json") ? r.json() : r.blob();
}

export function b64FromBytes(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function bytesFromB64(b64) {
  const s = atob(b64), out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function idsFromJson(a) { // IdArray -> Int32Array (little endian on every browser we target)
  const bytes = bytesFromB64(a.data);
  const src = a.dtype === "u8" ? bytes : a.dtype === "u16" ? new Uint16Array(bytes.buffer) : new Int32Array(bytes.buffer);
  return Int32Array.from(src);
}

export function idsToJson(arr, w, h) { // Int32Array/Uint8Array of ids -> the smallest IdArray
  let hi = 0, lo = 0;
  for (const v of arr) { if (v > hi) hi = v; if (v < lo) lo = v; }
  let typed, dtype;
  if (lo >= 0 && hi < 256) { typed = Uint8Array.from(arr); dtype = "u8"; }
  else if (lo >= 0 && hi < 65536) { typed = Uint16Array.from(arr); dtype = "u16"; }
  else { typed = Int32Array.from(arr); dtype = "i32"; }
  return { width: w, height: h, dtype, data: b64FromBytes(new Uint8Array(typed.buffer)) };
}
