// Where something is: the phone's GPS (navigator.geolocation, WGS84, accuracy kept), a
// tap on the grid map, or coordinates typed or pasted from a Chinese map app in GCJ-02
// (AMap, Tencent) or BD-09 (Baidu) — sent with their `crs`; the server converts them.
import { el } from "../../static/js/dom.js";
import { t } from "./i18n.js";
import { parseCoords, CRS } from "./pure.js";
import { M } from "./state.js";
import { showMap, onTap, setPick } from "./map.js";

/**
 * One GPS fix.
 *
 * @returns {Promise<{lon: number, lat: number, accuracy_m: number, at: number}>}
 */
export function gpsFix() {
  return new Promise((resolve, reject) => {
    if (!navigator.geolocation) {
      reject(new Error("no geolocation"));
      return;
    }
    navigator.geolocation.getCurrentPosition(
      (p) => resolve({ lon: p.coords.longitude, lat: p.coords.latitude, accuracy_m: p.coords.accuracy, at: p.timestamp }),
      (e) => reject(new Error(e.message || String(e.code))),
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 10000 });
  });
}

const round = (v) => Math.round(v * 1e6) / 1e6;

/**
 * The position picker of a form.
 *
 * @param {string} prefix ids of its elements start with it
 * @param {{map?: boolean}} [opts] map: with the grid map to tap on
 * @returns {{node: HTMLElement, value: () => object|null, clear: () => void, show: () => void}}
 */
export function positionPicker(prefix, opts = {}) {
  let pos = null;
  const text = el("div", { id: `${prefix}-pos`, class: "pos" }, t("no_position"));
  const draw = () => {
    if (!pos) text.textContent = t("no_position");
    else if (pos.source === "gps") text.textContent = t("pos_gps", { lon: round(pos.lon), lat: round(pos.lat), acc: Math.round(pos.accuracy_m) });
    else if (pos.source === "map") text.textContent = t("pos_map", { lon: round(pos.lon), lat: round(pos.lat) });
    else text.textContent = t("pos_typed", { lon: pos.lon, lat: pos.lat, crs: t(`crs_${pos.crs}`) });
    text.classList.remove("err");
  };
  const gps = el("button", { type: "button", class: "btn", id: `${prefix}-gps` }, t("use_gps"));
  gps.addEventListener("click", async () => {
    text.textContent = t("gps_waiting");
    try {
      const f = await gpsFix();
      pos = { lon: f.lon, lat: f.lat, crs: "wgs84", accuracy_m: f.accuracy_m, source: "gps" };
      setPick(f.lon, f.lat);
      draw();
    } catch (e) {
      text.textContent = t("gps_failed", { message: e.message });
      text.classList.add("err");
    }
  });
  const typed = el("input", { id: `${prefix}-coords`, inputmode: "decimal", placeholder: t("typed_ph") });
  const crs = el("select", { id: `${prefix}-crs` }, ...CRS.map((c) => el("option", { value: c }, t(`crs_${c}`))));
  const apply = () => {
    if (!typed.value.trim()) return;
    const p = parseCoords(typed.value);
    if (!p) {
      text.textContent = t("coords_bad");
      text.classList.add("err");
      return;
    }
    pos = { ...p, crs: crs.value, accuracy_m: null, source: "typed" };
    setPick(null);
    draw();
  };
  typed.addEventListener("change", apply);
  crs.addEventListener("change", apply);
  const mapBox = el("div", { class: "mapbox", id: `${prefix}-map` });
  const node = el("fieldset", { class: "field" }, el("legend", {}, t("position")),
    el("div", { class: "row" }, gps, opts.map ? el("span", { class: "hint" }, t("tap_map")) : null),
    opts.map ? mapBox : null,
    el("details", {}, el("summary", {}, t("typed_coords")), el("div", { class: "row" }, typed, crs)),
    text);
  return {
    node,
    value: () => pos,
    set: (p) => { pos = p; draw(); },
    clear: () => { pos = null; typed.value = ""; setPick(null); draw(); },
    show: () => {
      if (!opts.map || !M.config) return;
      showMap(mapBox, M.config.city || {}, M.cache);
      onTap((lon, lat) => {
        pos = { lon, lat, crs: "wgs84", accuracy_m: null, source: "map" };
        setPick(lon, lat);
        draw();
      });
    },
  };
}
