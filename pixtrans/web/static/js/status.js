// The status line, toasts, and the request -> image timing (window.studioTiming, read by the browser tests).

import { $ } from "./dom.js";
import { S } from "./state.js";

let toastTimer = null;
export function toast(msg, kind = "error") {
  const t = $("#toast");
  t.textContent = msg; t.className = kind; t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, kind === "error" ? 7000 : 3000);
}

let busyCount = 0;
export function setStatus(text, busy = null) {
  if (busy === true) busyCount++;
  if (busy === false) busyCount = Math.max(0, busyCount - 1);
  const s = $("#status");
  s.textContent = text;
  s.classList.toggle("busy", busyCount > 0);
}

export function noteTiming(t0, label) {
  const ms = performance.now() - t0;
  S.timing = ms; window.studioTiming = ms;
  setStatus(`${label}: ${Math.round(ms)} ms from request to image`, false);
}

export function errorStatus(err) {
  setStatus(err.status === 429 ? "busy — try again" : "error", false);
  toast(err.message);
}
