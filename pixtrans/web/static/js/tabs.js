// Tab switching (the URL hash names the tab); a tab module registers onShow[name] to refresh when shown.

import { $, $$ } from "./dom.js";

export const TABS = ["models", "samples", "draw", "upload", "rate"];
export const onShow = {};

export function showTab(name) {
  if (!TABS.includes(name)) name = "draw";
  for (const t of TABS) $(`#tab-${t}`).hidden = t !== name;
  for (const b of $$("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  if (location.hash !== `#${name}`) history.replaceState(null, "", `#${name}`);
  if (onShow[name]) onShow[name]();
}
