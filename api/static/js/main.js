// geogrid web map: the leaders' overview (choropleth, heat map, hot spots, incidents,
// drill-down through the city's levels, side panel with metrics, trend and overdue) and
// the planner mode (plans of a community: grids, metrics side by side, diff,
// auto-partition, merge, split, move-edge, reassign, rename, undo/redo/publish).
//
// Native ES modules, no build step; MapLibre GL JS is vendored. Data: our own API only.
// The city, its levels, metrics, statuses and categories come from GET /config.
import { request } from "./api.js";
import { el, byId, on, setStatus } from "./dom.js";
import { formatValue, daysBefore, localDateTime } from "./format.js";
import { t, lang, setLang, applyI18n } from "./i18n.js";
import { maplibregl } from "./maplibre.js";
import {
  createMap, addLayers, getMap, featureAt, TILE_LAYER, INCIDENT_LAYER,
} from "./map-layers.js";
import { exportPng, exportPdf } from "./export.js";
import { renderPanel } from "./panel.js";
import { renderPlanner, openPlan, plannerClick, plannerKey, plannerDrawing } from "./planner.js";
import {
  S, levels, displayLevel, labelVars, categoryName, metricKeys, metricLabel, statusLabel,
} from "./state.js";
import { bindSearch } from "./search.js";
import "./addresssearch.js"; // issue 15: the address search box (binds itself)
import "./patrols.js"; // issue 13: the patrol tracks overlay (binds itself)
import "./live.js"; // issue 12: the live map (SSE; binds itself)
import { initLogin, relabelLogin } from "./login.js";
import {
  render, changed, windowChanged, settled, onIdle, loadHotspots, pick, goUp, goToUnit, goToCode,
} from "./view.js";

let popup = null;

function fillMetricSelect() {
  const sel = byId("metric");
  sel.replaceChildren(...metricKeys().map((m) => el("option", { value: m }, metricLabel(m))));
  sel.value = S.metric;
}

function fillCategorySelect() {
  const sel = byId("category");
  const keep = sel.value;
  sel.replaceChildren(el("option", { value: "" }, t("all_categories")),
    ...S.config.categories.map((c) => el("option", { value: c.code }, categoryName(c.code))));
  sel.value = keep;
}

function labelPage() {
  applyI18n(labelVars());
  document.querySelectorAll("#lang button").forEach((b) => b.classList.toggle("active", b.dataset.lang === lang()));
  byId("source").textContent = `${t("source")}: ${S.config.city.source}`;
}

// ------------------------------------------------------------------ map events

function onClick(e) {
  if (S.mode === "planner") {
    plannerClick(e);
    return;
  }
  const inc = featureAt(e.point, ["inc-point", "inc-cluster"]);
  if (inc) {
    incidentPopup(inc, e.lngLat);
    return;
  }
  const dl = displayLevel();
  const f = featureAt(e.point, ["fill-" + dl, "hot-" + dl]);
  if (f) pick({ level: dl, code: f.properties.code, name: f.properties.name, props: { ...f.properties } });
}

function onHover(e) {
  const map = getMap();
  if (S.mode !== "map") {
    map.getCanvas().style.cursor = S.mode === "planner" && plannerDrawing() ? "crosshair" : "";
    return;
  }
  const f = featureAt(e.point, ["fill-" + displayLevel()]);
  map.getCanvas().style.cursor = f ? "pointer" : "";
  if (!f) {
    if (popup) popup.remove();
    return;
  }
  const p = f.properties;
  const v = S.tileMetrics.includes(S.metric) ? p[S.metric] : (f.state || {})[S.metric];
  if (!popup) popup = new maplibregl.Popup({ closeButton: false, closeOnClick: false, offset: 12 });
  popup.setLngLat(e.lngLat).setDOMContent(el("div", {}, el("b", {}, p.name), el("br"),
    `${metricLabel(S.metric)}: ${formatValue(v, S.metric)}`)).addTo(map);
}

function incidentPopup(f, lngLat) {
  const p = f.properties;
  const body = p.cluster === 1
    ? el("div", {}, el("b", {}, `${t("cluster")}: ${p.count}`), el("br"), `${metricLabel("open_backlog")}: ${p.open}`)
    : el("div", {}, el("b", {}, `${t("incident")} #${p.id}`), el("br"),
      `${t("category")}: ${categoryName(p.category)}`, el("br"),
      `${t("status")}: ${statusLabel(p.status)}`, el("br"),
      `${t("reported_at")}: ${localDateTime(p.reported_at, S.config.city.timezone)}`);
  new maplibregl.Popup({ offset: 8 }).setLngLat(lngLat).setDOMContent(body).addTo(getMap());
}

// ------------------------------------------------------------------ controls

function setMode(mode) {
  S.mode = mode;
  document.querySelectorAll("#modes button").forEach((b) => b.classList.toggle("active", b.dataset.mode === mode));
  byId("panel-map").hidden = mode !== "map";
  byId("panel-planner").hidden = mode !== "planner";
  byId("controls").hidden = mode !== "map";
  if (popup) popup.remove();
  if (mode === "planner") renderPlanner();
  else {
    S.dirty = true;
    renderPanel();
  }
  render();
}

function setPreset(preset) {
  S.preset = preset;
  if (preset === "custom") return;
  S.from = daysBefore(new Date(), Number(preset), S.config.city.timezone);
  S.to = "";
  byId("from").value = S.from;
  byId("to").value = "";
  windowChanged();
}

function bindControls() {
  byId("metric").addEventListener("change", (e) => {
    S.metric = e.target.value;
    S.classes = null;
    changed();
  });
  byId("window").addEventListener("change", (e) => setPreset(e.target.value));
  for (const id of ["from", "to"]) {
    byId(id).addEventListener("change", () => {
      S.from = byId("from").value;
      S.to = byId("to").value;
      byId("window").value = "custom";
      windowChanged();
    });
  }
  byId("category").addEventListener("change", (e) => {
    S.category = e.target.value;
    windowChanged();
  });
  const toggle = (id, key) => byId(id).addEventListener("change", (e) => {
    S.show[key] = e.target.checked;
    if (key === "hot" && e.target.checked) loadHotspots();
    render();
  });
  toggle("lyr-choropleth", "choropleth");
  toggle("lyr-labels", "labels");
  toggle("lyr-heat", "heat");
  toggle("lyr-hot", "hot");
  toggle("lyr-incidents", "incidents");
  toggle("lyr-basemap", "basemap");
  byId("lyr-gridview").addEventListener("change", (e) => {
    S.gridView = e.target.checked;
    S.classes = null;
    changed();
  });
  document.querySelectorAll("#lang button").forEach((b) => b.addEventListener("click", () => {
    setLang(b.dataset.lang);
    labelPage();
    relabelLogin();
    fillMetricSelect();
    fillCategorySelect();
    render();
    renderPanel();
    if (S.mode === "planner") renderPlanner();
  }));
  document.querySelectorAll("#modes button").forEach((b) => b.addEventListener("click", () => setMode(b.dataset.mode)));
  document.addEventListener("keydown", plannerKey);
  on("pick", pick);
  on("up", goUp);
  on("goto", (m) => {
    byId("lyr-gridview").checked = false;
    closeDrawer();
    goToUnit(m);
  });
  on("goto-code", (code) => {
    closeDrawer();
    goToCode(code).catch((e) => console.warn("goto", e));
  });
  bindSearch();
  placeControls();
  PHONE.addEventListener("change", placeControls);
  byId("export-png").addEventListener("click", exportPng);
  byId("export-pdf").addEventListener("click", exportPdf);
  byId("drawer-toggle").addEventListener("click", () => {
    const open = !document.body.classList.contains("drawer-open");
    document.body.classList.toggle("drawer-open", open);
    byId("drawer-toggle").setAttribute("aria-expanded", String(open));
  });
}

// on a phone the controls and the side panel are a drawer over the map
function closeDrawer() {
  document.body.classList.remove("drawer-open");
  byId("drawer-toggle").setAttribute("aria-expanded", "false");
}

// at phone width (≤ 480 px) the controls live in the drawer, above the panel's content
const PHONE = window.matchMedia("(max-width: 480px)");
function placeControls() {
  const controls = byId("controls");
  if (PHONE.matches) byId("panel").prepend(controls);
  else byId("map-wrap").insertBefore(controls, byId("legend"));
  if (!PHONE.matches) closeDrawer();
  const map = getMap();
  if (map) map.resize();
}

// ------------------------------------------------------------------ start-up

async function init() {
  const [config, web] = await Promise.all([request("/config"), request("/web/config.json")]);
  S.config = config;
  S.web = web;
  labelPage();
  await initLogin(); // the sign-in box; the session cookie then goes with every request
  S.from = daysBefore(new Date(), Number(S.preset), config.city.timezone);
  byId("from").value = S.from;
  const layers = [...levels().map((l) => TILE_LAYER[l]), INCIDENT_LAYER];
  const [heat, ...tilejson] = await Promise.all([
    request("/heatmap.json"), ...layers.map((l) => request(`/tiles/${l}.json`))]);
  layers.forEach((l, i) => { S.tilejson[l] = tilejson[i]; });
  S.tilejson.heatmap = heat;
  const grid = S.tilejson[TILE_LAYER[levels()[levels().length - 1]]];
  const fields = Object.keys(grid.vector_layers[0].fields || {});
  S.tileMetrics = config.metrics.map((m) => m.key).filter((k) => fields.includes(k));
  fillMetricSelect();
  fillCategorySelect();
  createMap({
    load: () => {
      addLayers();
      render();
      renderPanel();
    },
    idle: onIdle,
    click: onClick,
    mousemove: onHover,
    mouseout: () => popup && popup.remove(),
    // tile errors are reported in the console as warnings, not thrown
    error: (e) => console.warn("map", e && e.error ? e.error.message : e),
  });
  bindControls();
}

// the hook of the browser tests (tests/test_web.py): the state, the map and a few actions
window.geogrid = {
  S, get map() { return getMap(); }, displayLevel, openPlan, setMode, settled, goToUnit, exportPng, exportPdf,
};

init().catch((e) => {
  console.warn(e);
  setStatus(`${t("error")}: ${e.message}`);
});
