// The app's shared state: the city's config, the cached data of the worker, the device.
import { el, byId } from "../../static/js/dom.js";
import { lang } from "./i18n.js";

export const M = {
  /** GET /config (the city, its categories, patrol sampling) */
  config: null,
  /** the /sync bundle kept for offline use: grids, buildings, tasks, notifications, … */
  cache: {},
  /** the enrolled device {terminal_id, token, account, enrolled_at} or null */
  device: null,
};

/** The city's time zone. */
export function cityTz() {
  return (M.config && M.config.city && M.config.city.timezone) || "Asia/Shanghai";
}

/** A date-time shown in the city's zone. */
export function localTime(iso) {
  if (!iso) return "";
  return new Intl.DateTimeFormat(lang() === "zh" ? "zh-CN" : "en-GB", {
    timeZone: cityTz(), month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit",
  }).format(new Date(iso));
}

/** The name of a category code in the current language. */
export function categoryName(code) {
  const c = (M.cache.categories || []).find((x) => x.code === code)
    || ((M.config && M.config.categories) || []).find((x) => x.code === code);
  if (!c) return code || "";
  return lang() === "zh" ? c.name_zh : c.name_en || c.name_zh;
}

/** Show a short message at the bottom of the screen. */
export function toast(text, error = false) {
  const box = byId("toast");
  box.replaceChildren(el("span", { class: error ? "err" : "" }, text));
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 4000);
}

/** The buildings of the cache as {id, name} (reg_building or building features). */
export function buildingOptions() {
  const fc = M.cache.buildings;
  return ((fc && fc.features) || []).map((f) => ({
    id: f.id ?? f.properties.id,
    name: f.properties.name || f.properties.address || f.properties.ref || `#${f.id ?? f.properties.id}`,
    lon: f.geometry && f.geometry.coordinates[0],
    lat: f.geometry && f.geometry.coordinates[1],
  })).filter((b) => b.id !== undefined && b.id !== null);
}
