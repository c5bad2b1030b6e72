// Patrols: start, record GPS fixes with watchPosition while the page is open (kept when
// accurate enough and one sampling interval apart: GET /config's `patrol` {interval_s,
// max_accuracy_m}, else PATROL_DEFAULTS), check in at places (a building, a shop), stop.
// The running patrol is saved in IndexedDB at every fix (a reload continues it); on stop
// it becomes one outbox action: POST /patrols {started_at, ended_at, crs, points:
// [[lon, lat, epoch_ms, accuracy_m], …], checkins: [{lon, lat, at, building_id?, place?}]}.
import { el } from "../../static/js/dom.js";
import { t } from "./i18n.js";
import { M, toast, buildingOptions } from "./state.js";
import { submit } from "./sync.js";
import { keepFix, PATROL_DEFAULTS } from "./pure.js";
import { showMap, setTrack, onTap } from "./map.js";
import * as store from "./store.js";

let current = null; // {started_at, points, checkins}
let watchId = null;
let lastFix = null;
let rootEl = null;

function sampling() {
  const p = (M.config && M.config.patrol) || {};
  return {
    interval_s: Number(p.interval_s ?? p.sample_interval_s ?? PATROL_DEFAULTS.interval_s),
    max_accuracy_m: Number(p.max_accuracy_m ?? p.accuracy_max_m ?? PATROL_DEFAULTS.max_accuracy_m),
  };
}

function lengthKm(points) {
  let m = 0;
  for (let i = 1; i < points.length; i++) {
    const [x0, y0] = points[i - 1];
    const [x1, y1] = points[i];
    const k = Math.cos(((y0 + y1) / 2) * Math.PI / 180);
    m += Math.hypot((x1 - x0) * 111_320 * k, (y1 - y0) * 110_574);
  }
  return (m / 1000).toFixed(2);
}

function onFix(p) {
  const fix = { lon: p.coords.longitude, lat: p.coords.latitude, at: p.timestamp || Date.now(), accuracy: p.coords.accuracy };
  lastFix = fix;
  if (!current) return;
  const last = current.points[current.points.length - 1] || null;
  if (!keepFix(last, fix, sampling())) return;
  current.points.push([fix.lon, fix.lat, fix.at, Math.round(fix.accuracy * 10) / 10]);
  store.set("patrol", current);
  setTrack(current.points);
  draw();
}

function watch() {
  if (watchId !== null || !navigator.geolocation) return;
  watchId = navigator.geolocation.watchPosition(onFix, (e) => console.warn("gps", e.message),
    { enableHighAccuracy: true, maximumAge: 0, timeout: 30000 });
}

function unwatch() {
  if (watchId !== null) navigator.geolocation.clearWatch(watchId);
  watchId = null;
}

/** Continue a patrol left running (after a reload). */
export async function resumePatrol() {
  current = (await store.get("patrol")) || null;
  if (current) watch();
}

/** Start a patrol. */
export async function startPatrol() {
  current = { started_at: new Date().toISOString(), points: [], checkins: [] };
  await store.set("patrol", current);
  watch();
  draw();
}

/** Stop the patrol and queue its upload. */
export async function stopPatrol() {
  if (!current) return;
  unwatch();
  const p = current;
  current = null;
  await store.del("patrol");
  await submit({ kind: "patrol", method: "POST", path: "/patrols", body: {
    started_at: p.started_at, ended_at: new Date().toISOString(), crs: "wgs84",
    points: p.points, checkins: p.checkins,
  } });
  toast(t("patrol_saved", { n: p.points.length }));
  draw();
}

/** Check in at the last fix (with a building or a place name). */
export async function checkin(buildingId, place) {
  if (!current) return;
  const f = lastFix;
  if (!f) {
    toast(t("no_fix"), true);
    return;
  }
  const c = { lon: f.lon, lat: f.lat, at: new Date(f.at).toISOString() };
  if (buildingId) c.building_id = Number(buildingId);
  if (place) c.place = place;
  current.checkins.push(c);
  await store.set("patrol", current);
  draw();
}

function draw() {
  if (!rootEl) return;
  const status = rootEl.querySelector("#p-status");
  if (!status) return;
  if (current) {
    const min = Math.round((Date.now() - Date.parse(current.started_at)) / 60000);
    status.textContent = t("patrol_running", { n: current.points.length, km: lengthKm(current.points), min })
      + (current.checkins.length ? " · " + t("checkin_done", { n: current.checkins.length }) : "");
  } else status.textContent = t("patrol_idle");
  rootEl.querySelector("#p-start").hidden = !!current;
  rootEl.querySelector("#p-stop").hidden = !current;
  rootEl.querySelector("#p-checkin-box").hidden = !current;
}

/** The patrol view. */
export function renderPatrol(root) {
  rootEl = root;
  const start = el("button", { type: "button", class: "btn primary", id: "p-start" }, t("patrol_start"));
  const stop = el("button", { type: "button", class: "btn danger", id: "p-stop" }, t("patrol_stop"));
  start.addEventListener("click", startPatrol);
  stop.addEventListener("click", stopPatrol);
  const building = el("select", { id: "p-building" }, el("option", { value: "" }, t("none")),
    ...buildingOptions().map((b) => el("option", { value: b.id }, b.name)));
  const place = el("input", { id: "p-place", placeholder: t("checkin_place") });
  const ci = el("button", { type: "button", class: "btn", id: "p-checkin" }, t("checkin"));
  ci.addEventListener("click", async () => {
    await checkin(building.value, place.value.trim());
    place.value = "";
  });
  const mapBox = el("div", { class: "mapbox", id: "p-map" });
  root.replaceChildren(el("div", { class: "card" },
    el("div", { id: "p-status", class: "pos" }), el("div", { class: "row" }, start, stop),
    el("div", { id: "p-checkin-box" },
      el("label", { class: "field" }, el("span", {}, t("building")), building),
      el("div", { class: "row" }, place, ci))),
  mapBox);
  draw();
  if (M.config) {
    showMap(mapBox, M.config.city || {}, M.cache);
    onTap(null);
    setTrack(current ? current.points : []);
  }
}

/** The running patrol (the browser test's hook). */
export const patrolState = () => current;
