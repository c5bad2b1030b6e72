// geogrid web map: the leaders' overview (choropleth, heat map, hot spots, incidents,
// drill-down district → street → community → grid, side panel with metrics, trend and
// overdue) and the planner mode (plans of a community: grids, metrics side by side, diff,
// auto-partition, merge, split, move-edge, reassign, rename, undo/redo/publish).
//
// Plain browser JavaScript, no build step. Data: our own API only (vector tiles /tiles,
// raster heat tiles /heatmap, /metrics, /hotspots, /boundaries, /incidents/overdue, /plans).
// Which optional APIs exist is read from /openapi.json, so a missing one never causes a
// failed request (and a console error).
"use strict";

const LEVELS = ["district", "street", "community", "grid"];
const LAYER_OF = { district: "districts", street: "streets", community: "communities", grid: "grids" };
// metrics carried by the vector tiles (so the choropleth needs no other request)
const TILE_METRICS = ["incidents", "open_backlog", "overdue", "per_1000_residents", "load_index"];
// metrics only /metrics/{level} has (drawn with feature-state)
const EXTRA_METRICS = ["per_km2", "median_hours_to_resolve", "change_pct"];
const PANEL_METRICS = ["incidents", "open_backlog", "overdue", "per_1000_residents", "per_km2",
  "median_hours_to_resolve", "p90_hours_to_resolve", "resolved_within_limit_share",
  "previous_incidents", "change_pct", "load_index", "population", "households", "area_m2",
  "workers", "incidents_per_worker"];
const PALETTE = ["#fff3e0", "#fdd49e", "#fdbb84", "#fc8d59", "#e34a33", "#b30000"];
const NO_DATA = "#d9dde3";
const HOT_COLORS = { hot_99: "#b2182b", hot_95: "#ef6548", hot_90: "#fdae91",
  cold_90: "#c6dbef", cold_95: "#6baed6", cold_99: "#2166ac" };
const EMPTY_FC = { type: "FeatureCollection", features: [] };

const S = {
  mode: "map",
  metric: "incidents",
  preset: "30",
  from: "",
  to: "",
  category: "",
  path: [],            // drill path: [{level, code, name, props}]
  selected: null,      // {level, code, name, props}
  gridView: false,
  show: { choropleth: true, heat: false, hot: false, incidents: false, basemap: false },
  api: {},             // which optional endpoints exist
  tilejson: {},
  categories: [],
  config: {},
  breaks: null,
  metricRows: new Map(), // "level|window" -> Map(code -> row)
  stateSet: new Set(),   // "level|window" whose extra metrics are in feature-state
  hot: null,             // {key, rows}
  dirty: true,
  plan: null,            // planner state
};
let map = null;
let popup = null;

// ------------------------------------------------------------------ helpers

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

async function api(url, opts) {
  const r = await fetch(url, opts);
  let body = null;
  const text = await r.text();
  try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  if (!r.ok) {
    const msg = (body && body.message) || (body && body.detail && JSON.stringify(body.detail)) || r.statusText;
    const err = new Error(`${r.status}: ${msg}`);
    err.status = r.status;
    err.body = body;
    throw err;
  }
  return body;
}

function fmt(v, key) {
  if (v === null || v === undefined || (typeof v === "number" && !Number.isFinite(v))) return "–";
  if (typeof v !== "number") return String(v);
  if (key === "area_m2") return (v / 1e6).toLocaleString(undefined, { maximumFractionDigits: 2 });
  if (key === "resolved_within_limit_share") return (v * 100).toFixed(1) + "%";
  if (Number.isInteger(v)) return v.toLocaleString();
  const a = Math.abs(v);
  const digits = a >= 1000 ? 0 : a >= 100 ? 1 : a >= 1 ? 2 : 3;
  return v.toLocaleString(undefined, { maximumFractionDigits: digits });
}

function isoDate(d) {
  const z = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${z(d.getMonth() + 1)}-${z(d.getDate())}`;
}

function windowQuery(extra) {
  const q = new URLSearchParams(extra || {});
  if (S.from) q.set("from", S.from);
  if (S.to) q.set("to", S.to);
  if (S.category) q.set("category", S.category);
  return q.toString();
}
const windowKey = () => `${S.from}|${S.to}|${S.category}`;

function levelLabel(level) { return t("level_" + level); }
const displayLevel = () => (S.gridView ? "grid" : LEVELS[Math.min(S.path.length, 3)]);
const parentCode = () => (S.path.length ? S.path[S.path.length - 1].code : null);

function withinFilter(code) {
  if (!code) return ["has", "code"];
  return ["==", ["slice", ["get", "code"], 0, code.length], code];
}

function setStatus(msg) {
  const box = document.getElementById("status");
  box.hidden = !msg;
  box.textContent = msg || "";
}

function bboxOf(geojson) {
  let b = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (c) => {
    if (typeof c[0] === "number") {
      b = [Math.min(b[0], c[0]), Math.min(b[1], c[1]), Math.max(b[2], c[0]), Math.max(b[3], c[1])];
    } else c.forEach(walk);
  };
  const feats = geojson.type === "FeatureCollection" ? geojson.features : [geojson];
  feats.forEach((f) => f.geometry && walk(f.geometry.coordinates));
  return Number.isFinite(b[0]) ? b : null;
}

function token() { return sessionStorage.getItem("geogrid.token") || ""; }
function setToken(v) { sessionStorage.setItem("geogrid.token", v || ""); }
function authHeaders() { return token() ? { Authorization: "Bearer " + token() } : {}; }

// ------------------------------------------------------------------ start-up

async function discover() {
  const doc = await api("/openapi.json");
  const paths = Object.keys(doc.paths || {}).map((p) => p.replace(/\{[^}]+\}/g, "{}"));
  const has = (p) => paths.includes(p);
  S.api = {
    metrics: has("/metrics/{}"),
    trend: has("/metrics/{}/{}/trend"),
    hotspots: has("/hotspots"),
    overdue: has("/incidents/overdue"),
    services: has("/open311/v2/services.{}"),
    plans: has("/plans") && has("/plans/{}"),
    impact: has("/plans/{}/impact"),
    diff: has("/plans/{}/diff"),
    autopartition: has("/plans/{}/autopartition"),
  };
}

async function init() {
  applyI18n();
  markLang();
  const today = new Date();
  S.from = isoDate(new Date(today.getTime() - 30 * 864e5));
  document.getElementById("from").value = S.from;
  const [, config] = await Promise.all([discover(), api("/web/config.json").catch(() => ({}))]);
  S.config = config || {};
  const layers = ["districts", "streets", "communities", "grids", "incidents"];
  const tj = await Promise.all(layers.map((l) => api(`/tiles/${l}.json`)));
  layers.forEach((l, i) => { S.tilejson[l] = tj[i]; });
  if (S.api.services) loadCategories();
  fillMetricSelect();
  notes();
  buildMap();
  bindControls();
}

async function loadCategories() {
  try {
    const rows = await api("/open311/v2/services.json");
    S.categories = rows.map((r) => ({
      code: r.service_code,
      zh: r.service_name,
      en: ((r.keywords || "").split(",")[1] || r.service_name).trim(),
    }));
    fillCategorySelect();
  } catch (e) {
    console.warn("categories", e);
  }
}

function fillCategorySelect() {
  const sel = document.getElementById("category");
  const keep = sel.value;
  sel.replaceChildren(el("option", { value: "" }, t("all_categories")),
    ...S.categories.map((c) => el("option", { value: c.code }, LANG === "en" ? c.en : c.zh)));
  sel.value = keep;
}

function fillMetricSelect() {
  const sel = document.getElementById("metric");
  const metrics = TILE_METRICS.concat(S.api.metrics ? EXTRA_METRICS : []);
  sel.replaceChildren(...metrics.map((m) => el("option", { value: m }, t(m))));
  sel.value = S.metric;
}

function notes() {
  const out = [];
  if (!S.api.metrics) out.push(t("metrics_api_missing"));
  if (!S.api.hotspots) out.push(t("hotspots_api_missing"));
  document.getElementById("api-notes").textContent = out.join(" · ");
  document.getElementById("lyr-hot").disabled = !S.api.hotspots;
}

// ------------------------------------------------------------------ map

function tileUrl(layer) {
  const base = S.tilejson[layer].tiles[0].split("?")[0];
  const q = windowQuery();
  return q ? `${base}?${q}` : base;
}

function heatUrl() {
  const q = windowQuery();
  return `${location.origin}/heatmap/{z}/{x}/{y}.png${q ? "?" + q : ""}`;
}

function sourceLayer(level) {
  const tj = S.tilejson[LAYER_OF[level]];
  return (tj.vector_layers && tj.vector_layers[0] && tj.vector_layers[0].id) || LAYER_OF[level];
}

function buildMap() {
  const b = S.tilejson.grids.bounds || [109.5, 21.6, 110.9, 23.2];
  map = new maplibregl.Map({
    container: "map",
    style: { version: 8, sources: {}, layers: [
      { id: "background", type: "background", paint: { "background-color": "#eef2f6" } }] },
    bounds: [[b[0], b[1]], [b[2], b[3]]],
    fitBoundsOptions: { padding: 30 },
    maxZoom: 19,
    dragRotate: false,
    pitchWithRotate: false,
    attributionControl: { compact: true },
  });
  map.touchZoomRotate.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");
  window.geogridMap = map;
  map.on("load", () => {
    addLayers();
    render();
    renderPanel();
  });
  map.on("idle", onIdle);
  map.on("click", onClick);
  map.on("mousemove", onHover);
  map.on("mouseout", () => popup && popup.remove());
  map.on("error", (e) => {
    // tile errors are reported in the status line, not thrown
    console.warn("map", e && e.error ? e.error.message : e);
  });
}

function addLayers() {
  if (S.config.basemap) {
    map.addSource("basemap", { type: "raster", tiles: [S.config.basemap], tileSize: 256,
      attribution: S.config.basemap_attribution || "" });
    map.addLayer({ id: "basemap", type: "raster", source: "basemap",
      layout: { visibility: "none" } });
    document.getElementById("basemap-row").hidden = false;
  }
  for (const level of LEVELS) {
    const tj = S.tilejson[LAYER_OF[level]];
    map.addSource("u-" + level, {
      type: "vector",
      tiles: [tileUrl(LAYER_OF[level])],
      bounds: tj.bounds,
      minzoom: tj.minzoom || 0,
      maxzoom: Math.min(tj.maxzoom || 14, 14),
      promoteId: { [sourceLayer(level)]: "code" },
      attribution: tj.attribution,
    });
  }
  for (const level of LEVELS) {
    map.addLayer({ id: "fill-" + level, type: "fill", source: "u-" + level,
      "source-layer": sourceLayer(level), layout: { visibility: "none" },
      paint: { "fill-color": NO_DATA, "fill-opacity": 0.85 } });
  }
  map.addSource("heat", { type: "raster", tiles: [heatUrl()], tileSize: 256, maxzoom: 18,
    bounds: S.tilejson.grids.bounds });
  map.addLayer({ id: "heat", type: "raster", source: "heat", layout: { visibility: "none" },
    paint: { "raster-opacity": 0.8 } });
  for (const level of LEVELS) {
    map.addLayer({ id: "hot-" + level, type: "fill", source: "u-" + level,
      "source-layer": sourceLayer(level), layout: { visibility: "none" },
      paint: {
        "fill-color": ["match", ["coalesce", ["feature-state", "hot"], ""],
          ...Object.entries(HOT_COLORS).flat(), "rgba(0,0,0,0)"],
        "fill-opacity": 0.85,
      } });
  }
  for (const level of LEVELS) {
    map.addLayer({ id: "line-" + level, type: "line", source: "u-" + level,
      "source-layer": sourceLayer(level), layout: { visibility: "none" },
      paint: { "line-color": "#ffffff", "line-width": level === "grid" ? 0.5 : 1 } });
  }
  map.addLayer({ id: "ctx-district", type: "line", source: "u-district",
    "source-layer": sourceLayer("district"),
    paint: { "line-color": "#334155", "line-width": 1.2, "line-opacity": 0.8 } });
  for (const level of LEVELS) {
    map.addLayer({ id: "parent-" + level, type: "line", source: "u-" + level,
      "source-layer": sourceLayer(level), layout: { visibility: "none" },
      paint: { "line-color": "#0f172a", "line-width": 2.5 } });
    map.addLayer({ id: "sel-" + level, type: "line", source: "u-" + level,
      "source-layer": sourceLayer(level), layout: { visibility: "none" },
      paint: { "line-color": "#2563eb", "line-width": 3 } });
  }
  const itj = S.tilejson.incidents;
  map.addSource("incidents", { type: "vector", tiles: [tileUrl("incidents")], bounds: itj.bounds,
    maxzoom: Math.min(itj.maxzoom || 16, 16) });
  const il = itj.vector_layers[0].id;
  map.addLayer({ id: "inc-cluster", type: "circle", source: "incidents", "source-layer": il,
    filter: ["==", ["get", "cluster"], 1], layout: { visibility: "none" },
    paint: {
      "circle-color": "#6d28d9", "circle-opacity": 0.55,
      "circle-radius": ["interpolate", ["linear"], ["sqrt", ["get", "count"]], 1, 2.5, 10, 12, 40, 24],
      "circle-stroke-color": "#fff", "circle-stroke-width": 0.5,
    } });
  map.addLayer({ id: "inc-point", type: "circle", source: "incidents", "source-layer": il,
    filter: ["!=", ["get", "cluster"], 1], layout: { visibility: "none" },
    paint: {
      "circle-color": ["case", ["==", ["get", "open"], 1], "#dc2626", "#64748b"],
      "circle-radius": ["interpolate", ["linear"], ["zoom"], 12, 3, 17, 6],
      "circle-stroke-color": "#fff", "circle-stroke-width": 1,
    } });
  // planner layers
  map.addSource("plan", { type: "geojson", data: EMPTY_FC, promoteId: "code" });
  map.addLayer({ id: "plan-fill", type: "fill", source: "plan", layout: { visibility: "none" },
    paint: {
      "fill-color": ["match", ["coalesce", ["feature-state", "change"], ""],
        "new", "#22c55e", "changed", "#facc15", "#fb923c"],
      "fill-opacity": ["case", ["boolean", ["feature-state", "picked"], false], 0.75, 0.35],
    } });
  map.addLayer({ id: "plan-line", type: "line", source: "plan", layout: { visibility: "none" },
    paint: { "line-color": "#c2410c", "line-width": 2 } });
  map.addLayer({ id: "plan-picked", type: "line", source: "plan", layout: { visibility: "none" },
    filter: ["boolean", false],
    paint: { "line-color": "#1d4ed8", "line-width": 3.5 } });
  map.addSource("draw", { type: "geojson", data: EMPTY_FC });
  map.addLayer({ id: "draw-fill", type: "fill", source: "draw", filter: ["==", ["geometry-type"], "Polygon"],
    paint: { "fill-color": "#1d4ed8", "fill-opacity": 0.15 } });
  map.addLayer({ id: "draw-line", type: "line", source: "draw",
    paint: { "line-color": "#1d4ed8", "line-width": 2.5, "line-dasharray": [2, 1] } });
  map.addLayer({ id: "draw-pt", type: "circle", source: "draw", filter: ["==", ["geometry-type"], "Point"],
    paint: { "circle-color": "#1d4ed8", "circle-radius": 5 } });
}

function vis(id, on) {
  if (map.getLayer(id)) map.setLayoutProperty(id, "visibility", on ? "visible" : "none");
}

function colorExpr(metric, breaks) {
  const v = TILE_METRICS.includes(metric) ? ["get", metric] : ["feature-state", metric];
  if (!breaks || !breaks.length) {
    return ["case", ["==", ["typeof", v], "number"], PALETTE[2], NO_DATA];
  }
  const colors = classColors(breaks.length + 1);
  const step = ["step", v, colors[0]];
  breaks.forEach((b, i) => step.push(b, colors[i + 1]));
  return ["case", ["==", ["typeof", v], "number"], step, NO_DATA];
}

function classColors(n) {
  if (n >= PALETTE.length) return PALETTE.slice(0, n);
  const out = [];
  for (let i = 0; i < n; i++) out.push(PALETTE[Math.round(i * (PALETTE.length - 1) / Math.max(n - 1, 1))]);
  return out;
}

// the visible state follows S; called after every change
function render() {
  if (!map || !map.getSource("u-grid")) return;
  const dl = displayLevel();
  const pc = parentCode();
  const planner = S.mode === "planner";
  for (const level of LEVELS) {
    const shown = level === dl && !planner;
    vis("fill-" + level, shown && S.show.choropleth);
    vis("line-" + level, shown || (planner && level === "grid"));
    vis("hot-" + level, shown && S.show.hot && S.hot && S.hot.level === level);
    const f = withinFilter(planner ? (S.plan && S.plan.prefix) || "none" : pc);
    map.setFilter("fill-" + level, f);
    map.setFilter("line-" + level, f);
    map.setFilter("hot-" + level, f);
    map.setPaintProperty("line-" + level, "line-color",
      planner ? "#475569" : S.show.choropleth ? "#ffffff" : "#64748b");
    const parent = S.path[S.path.length - 1];
    vis("parent-" + level, !planner && !!parent && parent.level === level);
    if (parent && parent.level === level) map.setFilter("parent-" + level, ["==", ["get", "code"], parent.code]);
    const sel = S.selected;
    const selShown = !planner && sel && sel.level === level && (!parent || sel.code !== parent.code);
    vis("sel-" + level, !!selShown);
    if (selShown) map.setFilter("sel-" + level, ["==", ["get", "code"], sel.code]);
  }
  map.setPaintProperty("fill-" + dl, "fill-color", colorExpr(S.metric, S.breaks));
  map.setPaintProperty("fill-" + dl, "fill-opacity", S.show.heat ? 0.35 : 0.85);
  vis("heat", S.show.heat && !planner);
  vis("inc-cluster", S.show.incidents && !planner);
  vis("inc-point", S.show.incidents && !planner);
  vis("basemap", S.show.basemap);
  for (const id of ["plan-fill", "plan-line", "plan-picked"]) vis(id, planner);
  renderBreadcrumb();
  renderLegend();
}

function changed() {
  S.dirty = true;
  render();
  if (S.api.metrics && EXTRA_METRICS.includes(S.metric)) ensureFeatureState(displayLevel());
  if (S.show.hot) loadHotspots();
}

function refreshTiles() {
  for (const level of LEVELS) map.getSource("u-" + level).setTiles([tileUrl(LAYER_OF[level])]);
  map.getSource("incidents").setTiles([tileUrl("incidents")]);
  map.getSource("heat").setTiles([heatUrl()]);
}

async function onIdle() {
  if (!S.dirty || S.mode !== "map" || S.zooming) return;
  S.dirty = false;
  S.updating = true;
  try {
    refreshSelectedProps();
    await updateBreaks();
    renderPanel();
  } finally {
    S.updating = false;
    document.body.dataset.ready = "1";
  }
}

// true when the map shows the current state: tiles loaded, not moving, panel updated
function settled() {
  return !!map && map.loaded() && map.areTilesLoaded() && !map.isMoving() && !S.dirty &&
    !S.zooming && !S.updating;
}

// the units shown at the display level, with their metric values
async function shownUnits() {
  const dl = displayLevel();
  const pc = parentCode();
  if (S.api.metrics) {
    try {
      const rows = await metricRows(dl);
      return [...rows.values()].filter((r) => !pc || r.code.startsWith(pc));
    } catch (e) {
      console.warn("metrics", e);
    }
  }
  const seen = new Map();
  for (const f of map.querySourceFeatures("u-" + dl, { sourceLayer: sourceLayer(dl), filter: withinFilter(pc) })) {
    if (!seen.has(f.properties.code)) seen.set(f.properties.code, { ...f.properties, level: dl });
  }
  return [...seen.values()];
}

async function metricRows(level) {
  const key = `${level}|${windowKey()}`;
  if (!S.metricRows.has(key)) {
    const p = api(`/metrics/${level}?${windowQuery()}`).then((body) => {
      const rows = Array.isArray(body) ? body : body.units || body.items || [];
      return new Map(rows.map((r) => [r.code, r]));
    });
    S.metricRows.set(key, p);
    p.catch(() => S.metricRows.delete(key));
  }
  return S.metricRows.get(key);
}

async function ensureFeatureState(level) {
  const key = `${level}|${windowKey()}`;
  if (S.stateSet.has(key)) return;
  S.stateSet.add(key);
  try {
    const rows = await metricRows(level);
    if (key !== `${level}|${windowKey()}`) return;
    const src = { source: "u-" + level, sourceLayer: sourceLayer(level) };
    for (const r of rows.values()) {
      const st = {};
      for (const m of EXTRA_METRICS) st[m] = r[m] === undefined ? null : r[m];
      map.setFeatureState({ ...src, id: r.code }, st);
    }
    S.dirty = true;
    map.triggerRepaint();
  } catch (e) {
    S.stateSet.delete(key);
    console.warn("metrics", e);
  }
}

function niceRound(v) {
  if (v === 0 || !Number.isFinite(v)) return v;
  const mag = Math.pow(10, Math.floor(Math.log10(Math.abs(v))) - 1);
  return Math.round(v / mag) * mag;
}

// quantile class breaks (at most 5 breaks = 6 classes), rounded to 2 significant digits.
// When many units share the minimum (e.g. grids with 0 incidents) the minimum is a class
// of its own and the other values are split into quantiles.
function quantileBreaks(values) {
  const vals = values.filter((v) => typeof v === "number" && Number.isFinite(v)).sort((a, b) => a - b);
  if (vals.length < 2) return { breaks: [], min: vals[0], max: vals[vals.length - 1] };
  const min = vals[0];
  const rest = vals.filter((v) => v > min);
  const breaks = [];
  let pool = vals;
  if (rest.length && vals.length - rest.length >= vals.length / PALETTE.length) {
    breaks.push(niceRound(rest[0]) > min ? niceRound(rest[0]) : rest[0]);
    pool = rest;
  }
  const k = Math.min(PALETTE.length - breaks.length, pool.length);
  for (let i = 1; i < k; i++) {
    const b = niceRound(pool[Math.floor((i * pool.length) / k)]);
    if (b > min && (!breaks.length || b > breaks[breaks.length - 1])) breaks.push(b);
  }
  return { breaks, min, max: vals[vals.length - 1], minClass: pool === rest };
}

async function updateBreaks() {
  const units = await shownUnits();
  S.units = units;
  if (!units.length) return;
  const q = quantileBreaks(units.map((u) => u[S.metric]));
  S.breaks = q.breaks;
  S.range = [q.min, q.max];
  S.minClass = q.minClass;
  map.setPaintProperty("fill-" + displayLevel(), "fill-color", colorExpr(S.metric, S.breaks));
  renderLegend();
}

function renderLegend() {
  const box = document.getElementById("legend");
  const parts = [];
  if (S.mode === "planner") {
    parts.push(el("h4", {}, t("plan")));
    parts.push(legendRow("#fb923c", t("plan_grids")), legendRow("#22c55e", t("added")),
      legendRow("#facc15", t("modified")), legendRow("rgba(0,0,0,0)", t("published_grids"), "#475569"));
    box.replaceChildren(...parts);
    return;
  }
  if (S.show.choropleth) {
    parts.push(el("h4", {}, `${t(S.metric)} · ${levelLabel(displayLevel())}`));
    const br = S.breaks || [];
    const colors = classColors(br.length + 1);
    const lo = S.range ? S.range[0] : null;
    const hi = S.range ? S.range[1] : null;
    if (!br.length && lo !== null && lo !== undefined) parts.push(legendRow(PALETTE[2], `${fmt(lo)} – ${fmt(hi)}`));
    br.forEach((b, i) => {
      if (i === 0) parts.push(legendRow(colors[0], S.minClass ? fmt(lo) : `< ${fmt(b)}`));
      const next = br[i + 1];
      parts.push(legendRow(colors[i + 1], next !== undefined ? `${fmt(b)} – ${fmt(next)}` : `≥ ${fmt(b)}`));
    });
    parts.push(legendRow(NO_DATA, t("no_data")));
  }
  if (S.show.hot && S.hot) {
    parts.push(el("div", { class: "sep" }), el("h4", {}, t("layer_hot")));
    for (const [k, c] of Object.entries(HOT_COLORS)) {
      const n = S.hot.classes ? S.hot.classes[k] || 0 : null;
      parts.push(legendRow(c, `${t(k)}${n !== null ? ` (${n})` : ""}`));
    }
  }
  if (S.show.incidents) {
    parts.push(el("div", { class: "sep" }), el("h4", {}, t("layer_incidents")),
      legendRow("#dc2626", `${t("open_backlog")}`, null, true),
      legendRow("#64748b", `${t("incident")}`, null, true),
      legendRow("#6d28d9", `${t("cluster")}`, null, true));
  }
  if (S.show.heat) parts.push(el("div", { class: "sep" }), el("h4", {}, t("layer_heat")),
    el("div", { class: "row" }, el("span", { class: "sw", style: "width:100px;background:linear-gradient(90deg,rgba(255,255,178,.6),#fd8d3c,#bd0026)" })));
  while (parts.length && parts[0].className === "sep") parts.shift();
  box.replaceChildren(...parts);
  box.hidden = !parts.length;
}

function legendRow(color, label, border, round) {
  // (a row of the legend: a swatch and its label)
  return el("div", { class: "row" },
    el("span", { class: "sw", style: `background:${color};${border ? `border:2px solid ${border};` : ""}${round ? "border-radius:50%;width:12px;" : ""}` }),
    el("span", {}, label));
}

function renderBreadcrumb() {
  const ol = document.getElementById("breadcrumb");
  const items = [el("li", {}, S.path.length ? el("a", { onclick: () => goUp(0) }, t("city")) : t("city"))];
  S.path.forEach((p, i) => {
    const last = i === S.path.length - 1;
    items.push(el("li", { "data-code": p.code }, last ? p.name : el("a", { onclick: () => goUp(i + 1) }, p.name)));
  });
  ol.replaceChildren(...items);
}

// ------------------------------------------------------------------ interaction

function featureAt(point, layers) {
  const ids = layers.filter((id) => map.getLayer(id) && map.getLayoutProperty(id, "visibility") !== "none");
  if (!ids.length) return null;
  return map.queryRenderedFeatures(point, { layers: ids })[0] || null;
}

function onClick(e) {
  if (S.mode === "planner") return plannerClick(e);
  const inc = featureAt(e.point, ["inc-point", "inc-cluster"]);
  if (inc) return incidentPopup(inc, e.lngLat);
  const dl = displayLevel();
  const f = featureAt(e.point, ["fill-" + dl, "hot-" + dl]);
  if (!f) return;
  const unit = { level: dl, code: f.properties.code, name: f.properties.name, props: { ...f.properties } };
  if (dl !== "grid" && !S.gridView) drill(unit);
  else select(unit);
}

function onHover(e) {
  if (S.mode !== "map") {
    map.getCanvas().style.cursor = S.mode === "planner" && S.plan && S.plan.drawing ? "crosshair" : "";
    return;
  }
  const dl = displayLevel();
  const f = featureAt(e.point, ["fill-" + dl]);
  map.getCanvas().style.cursor = f ? "pointer" : "";
  if (!f) { if (popup) popup.remove(); return; }
  const p = f.properties;
  const v = TILE_METRICS.includes(S.metric) ? p[S.metric] : (f.state || {})[S.metric];
  if (!popup) popup = new maplibregl.Popup({ closeButton: false, closeOnClick: false, offset: 12 });
  popup.setLngLat(e.lngLat).setDOMContent(el("div", {}, el("b", {}, p.name), el("br"),
    `${t(S.metric)}: ${fmt(v, S.metric)}`)).addTo(map);
}

function incidentPopup(f, lngLat) {
  const p = f.properties;
  const cat = S.categories.find((c) => c.code === p.category);
  const body = p.cluster === 1
    ? el("div", {}, el("b", {}, `${t("cluster")}: ${p.count}`), el("br"), `${t("open_backlog")}: ${p.open}`)
    : el("div", {}, el("b", {}, `${t("incident")} #${p.id}`), el("br"),
      `${t("category")}: ${cat ? (LANG === "en" ? cat.en : cat.zh) : p.category}`, el("br"),
      `${t("status")}: ${p.status}`, el("br"), `${t("reported_at")}: ${(p.reported_at || "").replace("T", " ").slice(0, 16)}`);
  new maplibregl.Popup({ offset: 8 }).setLngLat(lngLat).setDOMContent(body).addTo(map);
}

async function zoomToUnit(unit) {
  S.zooming = true;
  try {
    await fitUnit(unit);
  } finally {
    S.zooming = false;
    S.dirty = true;
    map.triggerRepaint();
  }
}

async function fitUnit(unit) {
  const fit = (b) => new Promise((resolve) => {
    map.once("moveend", resolve);
    map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 40, maxZoom: 17 });
    if (!map.isMoving()) setTimeout(resolve, 50); // bounds already shown: no move
  });
  if (!unit) {
    await fit(S.tilejson.grids.bounds);
    return;
  }
  const child = LEVELS[LEVELS.indexOf(unit.level) + 1];
  let gj;
  try {
    gj = child
      ? await api(`/boundaries/${child}?parent=${encodeURIComponent(unit.code)}`)
      : null;
  } catch (e) {
    console.warn("boundaries", e);
  }
  const b = gj && bboxOf(gj);
  if (b) await fit(b);
}

function drill(unit) {
  S.path.push({ level: unit.level, code: unit.code, name: unit.name, props: unit.props });
  S.selected = unit;
  S.breaks = null;
  changed();
  renderPanel();
  zoomToUnit(unit);
}

function select(unit) {
  S.selected = unit;
  render();
  renderPanel();
}

function goUp(depth) {
  S.path = S.path.slice(0, depth);
  const last = S.path[S.path.length - 1];
  S.selected = last ? { ...last } : null;
  S.breaks = null;
  changed();
  renderPanel();
  zoomToUnit(last || null);
}

function refreshSelectedProps() {
  for (const u of [S.selected, ...S.path]) {
    if (!u) continue;
    const f = map.querySourceFeatures("u-" + u.level, { sourceLayer: sourceLayer(u.level),
      filter: ["==", ["get", "code"], u.code] })[0];
    if (f) u.props = { ...f.properties };
  }
}

async function loadHotspots() {
  if (!S.api.hotspots) return;
  const level = displayLevel();
  const key = `${level}|${windowKey()}`;
  if (S.hot && S.hot.key === key) { render(); return; }
  setStatus(t("loading"));
  try {
    const body = await api(`/hotspots?${windowQuery({ level })}`);
    const rows = Array.isArray(body) ? body : body.units || [];
    if (S.hot) map.removeFeatureState({ source: "u-" + S.hot.level, sourceLayer: sourceLayer(S.hot.level) });
    for (const r of rows) {
      if (r.class && r.class !== "not_significant") {
        map.setFeatureState({ source: "u-" + level, sourceLayer: sourceLayer(level), id: r.code }, { hot: r.class });
      }
    }
    S.hot = { key, level, classes: body.classes || null };
    render();
  } catch (e) {
    setStatus(`${t("error")}: ${e.message}`);
    setTimeout(() => setStatus(""), 4000);
    return;
  }
  setStatus("");
}

function bindControls() {
  const $ = (id) => document.getElementById(id);
  $("metric").addEventListener("change", (e) => { S.metric = e.target.value; S.breaks = null; changed(); });
  $("window").addEventListener("change", (e) => {
    S.preset = e.target.value;
    if (S.preset !== "custom") {
      S.from = isoDate(new Date(Date.now() - Number(S.preset) * 864e5));
      S.to = "";
      $("from").value = S.from;
      $("to").value = "";
      windowChanged();
    }
  });
  for (const id of ["from", "to"]) {
    $(id).addEventListener("change", () => {
      S.from = $("from").value;
      S.to = $("to").value;
      $("window").value = "custom";
      windowChanged();
    });
  }
  $("category").addEventListener("change", (e) => { S.category = e.target.value; windowChanged(); });
  const toggle = (id, key) => $(id).addEventListener("change", (e) => {
    S.show[key] = e.target.checked;
    if (key === "hot" && e.target.checked) loadHotspots();
    render();
  });
  toggle("lyr-choropleth", "choropleth");
  toggle("lyr-heat", "heat");
  toggle("lyr-hot", "hot");
  toggle("lyr-incidents", "incidents");
  toggle("lyr-basemap", "basemap");
  $("lyr-gridview").addEventListener("change", (e) => { S.gridView = e.target.checked; S.breaks = null; changed(); });
  document.querySelectorAll("#lang button").forEach((b) =>
    b.addEventListener("click", () => {
      setLang(b.dataset.lang);
      markLang();
      fillMetricSelect();
      fillCategorySelect();
      notes();
      render();
      renderPanel();
      if (S.mode === "planner") renderPlanner();
    }));
  document.querySelectorAll("#modes button").forEach((b) =>
    b.addEventListener("click", () => setMode(b.dataset.mode)));
}

function windowChanged() {
  S.breaks = null;
  refreshTiles();
  changed();
  renderPanel();
}

function markLang() {
  document.querySelectorAll("#lang button").forEach((b) => b.classList.toggle("active", b.dataset.lang === LANG));
}

function setMode(mode) {
  S.mode = mode;
  document.querySelectorAll("#modes button").forEach((b) => b.classList.toggle("active", b.dataset.mode === mode));
  document.getElementById("panel-map").hidden = mode !== "map";
  document.getElementById("panel-planner").hidden = mode !== "planner";
  document.getElementById("controls").hidden = mode !== "map";
  if (popup) popup.remove();
  if (mode === "planner") renderPlanner();
  else { S.dirty = true; renderPanel(); }
  render();
}

// ------------------------------------------------------------------ side panel (map mode)

function unitMetrics(unit) {
  if (!unit) return {};
  return { ...(unit.props || {}), ...(unit.row || {}) };
}

async function renderPanel() {
  const box = document.getElementById("panel-map");
  const sel = S.selected;
  const head = sel
    ? [el("h2", { id: "unit-name" }, sel.name), el("p", { class: "sub" }, `${levelLabel(sel.level)} · `, el("span", { id: "unit-code" }, sel.code))]
    : [el("h2", { id: "unit-name" }, t("city")), el("p", { class: "sub" }, t("selected_none"))];
  const m = sel ? unitMetrics(sel) : cityTotals();
  const big = el("div", { class: "big" },
    el("div", {}, el("b", { id: "m-incidents" }, fmt(m.incidents)), el("span", {}, t("incidents"))),
    el("div", {}, el("b", {}, fmt(m.open_backlog)), el("span", {}, t("open_backlog"))),
    el("div", { class: "warn" }, el("b", {}, fmt(m.overdue)), el("span", {}, t("overdue"))));
  const kv = el("table", { class: "kv", id: "unit-metrics" });
  for (const k of PANEL_METRICS) {
    if (m[k] === undefined) continue;
    kv.append(el("tr", {}, el("th", {}, t(k)), el("td", {}, fmt(m[k], k))));
  }
  const trend = el("div", { class: "trend", id: "trend" });
  const ranking = el("ol", { class: "rank", id: "overdue-rank" });
  const parts = [...head, big, kv];
  if (sel) parts.push(el("h3", {}, t("trend")), trend);
  parts.push(el("h3", {}, `${t("overdue_ranking")} · ${levelLabel(displayLevel())}`), ranking);
  parts.push(...overdueSection(sel));
  if (!sel) parts.push(el("p", { class: "hint" }, t("click_hint")));
  box.replaceChildren(...parts);
  fillRanking(ranking);
  if (sel) {
    fillTrend(trend, sel);
    if (S.api.metrics && !sel.row) {
      try {
        const rows = await metricRows(sel.level);
        const row = rows.get(sel.code);
        if (row && S.selected === sel) {
          sel.row = row;
          renderPanel();
        }
      } catch (e) {
        console.warn("metrics", e);
      }
    }
  }
}

function cityTotals() {
  const out = {};
  const units = S.path.length === 0 ? S.units || [] : [];
  for (const u of units) {
    for (const k of ["incidents", "open_backlog", "overdue", "population", "households", "area_m2", "previous_incidents"]) {
      if (typeof u[k] === "number") out[k] = (out[k] || 0) + u[k];
    }
  }
  return out;
}

function fillRanking(ol) {
  const units = (S.units || []).filter((u) => typeof u.overdue === "number")
    .sort((a, b) => b.overdue - a.overdue || (b.incidents || 0) - (a.incidents || 0)).slice(0, 10);
  if (!units.length) { ol.append(el("li", {}, t("loading"))); return; }
  for (const u of units) {
    ol.append(el("li", { onclick: () => {
      const unit = { level: displayLevel(), code: u.code, name: u.name, props: u };
      if (unit.level !== "grid" && !S.gridView) drill(unit); else { select(unit); }
    } }, el("span", {}, u.name), el("b", {}, fmt(u.overdue))));
  }
}

async function fillTrend(box, unit) {
  if (!S.api.trend) { box.append(el("p", { class: "hint" }, t("trend_unavailable"))); return; }
  box.append(el("p", { class: "hint" }, t("trend_loading")));
  try {
    const q = new URLSearchParams({ interval: "week" });
    if (S.category) q.set("category", S.category);
    const body = await api(`/metrics/${unit.level}/${encodeURIComponent(unit.code)}/trend?${q}`);
    const rows = Array.isArray(body) ? body : body.periods || [];
    box.replaceChildren(barChart(rows));
  } catch (e) {
    box.replaceChildren(el("p", { class: "err" }, e.message));
  }
}

function barChart(rows) {
  const W = 340, H = 90, pad = 16;
  const max = Math.max(1, ...rows.map((r) => r.incidents || 0));
  const bw = (W - 4) / Math.max(rows.length, 1);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  const mk = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  rows.forEach((r, i) => {
    const h = ((r.incidents || 0) / max) * (H - 2 * pad);
    const rect = mk("rect", { x: 2 + i * bw + 0.5, y: H - pad - h, width: Math.max(bw - 1, 1), height: h,
      fill: i === rows.length - 1 ? "#e34a33" : "#fc8d59" });
    const title = document.createElementNS(ns, "title");
    title.textContent = `${String(r.period).slice(0, 10)}: ${r.incidents}`;
    rect.append(title);
  });
  mk("line", { x1: 0, x2: W, y1: H - pad, y2: H - pad, stroke: "#cbd5e1" });
  mk("text", { x: 2, y: 10, class: "axis" }, `max ${max}`);
  if (rows.length) {
    mk("text", { x: 2, y: H - 3, class: "axis" }, String(rows[0].period).slice(0, 10));
    mk("text", { x: W - 2, y: H - 3, class: "axis", "text-anchor": "end" }, String(rows[rows.length - 1].period).slice(0, 10));
  }
  return svg;
}

function overdueSection(unit) {
  if (!S.api.overdue) return [];
  const list = el("div", { id: "overdue-list" });
  const input = el("input", { type: "password", value: token(), "data-i18n-ph": "token", placeholder: t("token") });
  const load = async () => {
    setToken(input.value.trim());
    if (!token()) { list.replaceChildren(el("p", { class: "hint" }, t("overdue_needs_token"))); return; }
    list.replaceChildren(el("p", { class: "hint" }, t("loading")));
    try {
      const q = new URLSearchParams();
      if (unit) q.set("unit", unit.code);
      const rows = await api(`/incidents/overdue?${q}`, { headers: authHeaders() });
      if (!rows.length) { list.replaceChildren(el("p", { class: "hint" }, t("no_overdue"))); return; }
      const tbl = el("table", { class: "grid" }, el("thead", {}, el("tr", {},
        el("th", {}, "#"), el("th", {}, t("category")), el("th", {}, t("level_grid")), el("th", {}, t("hours_overdue")))));
      const tb = el("tbody");
      rows.sort((a, b) => b.hours_overdue - a.hours_overdue).slice(0, 50).forEach((r) => {
        const cat = S.categories.find((c) => c.code === r.category);
        tb.append(el("tr", {}, el("td", {}, r.id), el("td", {}, cat ? (LANG === "en" ? cat.en : cat.zh) : r.category),
          el("td", {}, (r.grid_code || "").slice(-6)), el("td", {}, Math.round(r.hours_overdue))));
      });
      tbl.append(tb);
      list.replaceChildren(el("p", { class: "hint" }, `${rows.length} · ${t("overdue")}`), tbl);
    } catch (e) {
      list.replaceChildren(el("p", { class: "err" }, e.message));
    }
  };
  list.append(el("p", { class: "hint" }, t("overdue_needs_token")));
  if (token()) setTimeout(load, 0);
  return [el("h3", {}, t("overdue_list")),
    el("div", { class: "row-form" }, input, el("button", { class: "btn", type: "button", onclick: load }, t("load"))), list];
}

// ------------------------------------------------------------------ planner mode

// Labels of the planner's edit forms (merged into the tables of i18n.js).
Object.assign(I18N.zh, {
  edit: "编辑",
  move_edge: "移动边界",
  reassign: "区域划转",
  rename: "重命名/改编码",
  grid_a: "网格 A",
  grid_b: "网格 B",
  grid_one: "网格",
  from_grid: "划出网格",
  to_grid: "划入网格",
  choose: "— 选择 —",
  draw_polyline: "画新边界",
  draw_polygon: "画多边形",
  draw_rect: "画矩形",
  points_drawn: "已画点数",
  drawing: "正在画图：在地图上点击（Esc 取消）",
  cancel: "取消",
  new_name: "新名称",
  new_code: "新编码（社区编码+3位数字）",
  target_load: "或每格户数上限",
  all_communities: "全部社区",
  move_edge_hint: "选择两个相邻网格（或在地图上依次点击），点击“画新边界”，从两网格外侧开始依次点击新边界线上的点，在另一侧外侧结束，再点击“移动边界”。",
  reassign_hint: "选择划出网格和划入网格，画一个多边形（依次点击顶点）或矩形（点击两个对角）：多边形内属于划出网格的部分划给划入网格。",
  rename_hint: "选择一个网格，输入新名称和/或新编码。",
  balance_result: "负荷均衡",
});
Object.assign(I18N.en, {
  edit: "Edit",
  move_edge: "Move edge",
  reassign: "Reassign area",
  rename: "Rename / recode",
  grid_a: "Grid A",
  grid_b: "Grid B",
  grid_one: "Grid",
  from_grid: "From grid",
  to_grid: "To grid",
  choose: "— choose —",
  draw_polyline: "Draw new edge",
  draw_polygon: "Draw polygon",
  draw_rect: "Draw rectangle",
  points_drawn: "Points drawn",
  drawing: "Drawing: click on the map (Esc cancels)",
  cancel: "Cancel",
  new_name: "New name",
  new_code: "New code (community code + 3 digits)",
  target_load: "or max households per grid",
  all_communities: "All communities",
  move_edge_hint: "Pick two neighbouring grids (or click them on the map), press Draw new edge and click points of the new shared edge, starting and ending outside the two grids, then press Move edge.",
  reassign_hint: "Pick the grid giving the area and the grid receiving it, then draw a polygon (click its vertices) or a rectangle (click two corners): the part of the first grid inside it goes to the second.",
  rename_hint: "Pick a grid and type a new name and/or a new code.",
  balance_result: "Load balance",
});

// The edit kinds of the planner (POST /plans/{id}/edits, see geogrid/plans/edits.py):
// the grids each needs ("slots", filled by clicking grids on the map or with the
// selects, in order) and the shapes it can draw on the map.
const EDIT_TOOLS = {
  merge: { slots: ["grid_a", "grid_b"], draw: [] },
  split: { slots: ["grid_one"], draw: ["line"] },
  move_edge: { slots: ["grid_a", "grid_b"], draw: ["polyline"] },
  reassign: { slots: ["from_grid", "to_grid"], draw: ["polygon", "rect"] },
  rename: { slots: ["grid_one"], draw: [] },
};
// clicks after which a drawing ends by itself (0: it ends with the edit's button)
const DRAW_CLICKS = { line: 2, rect: 2, polyline: 0, polygon: 0 };
const DRAW_LABEL = { line: "draw_line", polyline: "draw_polyline", polygon: "draw_polygon", rect: "draw_rect" };

function plannerState() {
  if (!S.plan) {
    S.plan = { list: [], current: null, kind: "merge", picked: [], shape: null, drawing: false,
      drawPts: [], form: { name: "", code: "" }, msg: null, impact: null, diff: null };
  }
  return S.plan;
}

const pickedCodes = () => plannerState().picked.filter(Boolean);

function resetEdit() {
  const P = plannerState();
  P.picked = [];
  P.shape = null;
  P.drawing = false;
  P.drawPts = [];
  P.form = { name: "", code: "" };
  if (map && map.getSource("draw")) drawSketch();
}

async function renderPlanner() {
  const P = plannerState();
  const box = document.getElementById("panel-planner");
  if (!S.api.plans) {
    box.replaceChildren(el("h2", {}, t("plans")), el("p", { class: "err", id: "plans-missing" }, t("plans_api_missing")));
    return;
  }
  try {
    const body = await api("/plans");
    P.list = Array.isArray(body) ? body : body.plans || body.items || [];
  } catch (e) {
    box.replaceChildren(el("h2", {}, t("plans")), el("p", { class: "err" }, e.message));
    return;
  }
  drawPlanner();
}

function drawPlanner() {
  const P = plannerState();
  const box = document.getElementById("panel-planner");
  const tokenInput = el("input", { type: "password", value: token(), placeholder: t("token"),
    onchange: (e) => setToken(e.target.value.trim()) });
  const sel = S.selected && S.selected.level === "community" ? S.selected.code : "";
  const commInput = el("input", { type: "text", id: "plan-community", value: sel, placeholder: t("community_code") });
  const nameInput = el("input", { type: "text", id: "plan-name", placeholder: t("plan_name") });
  const list = el("ul", { class: "plans", id: "plan-list" }, P.list.map((p) => el("li",
    { class: P.current && P.current.id === p.id ? "active" : "" },
    el("span", {}, `#${p.id} ${p.name} · ${(p.community_codes || p.communities || []).join(", ")} · ${p.status || ""}`),
    el("button", { class: "btn", type: "button", "data-plan": p.id, onclick: () => openPlan(p.id) }, t("open")))));
  if (!P.list.length) list.append(el("li", {}, t("none")));
  const parts = [
    el("h2", {}, t("plans")),
    el("div", { class: "row-form" }, el("span", {}, t("token")), tokenInput),
    list,
    el("h3", {}, t("new_plan")),
    el("div", { class: "row-form" }, nameInput),
    el("div", { class: "row-form" }, commInput, el("button", { class: "btn primary", type: "button", onclick: () => createPlan(nameInput.value, commInput.value) }, t("create"))),
  ];
  if (P.msg) parts.push(el("p", { class: P.msg.err ? "err" : "ok", id: "plan-msg" }, P.msg.text));
  if (P.current) parts.push(...currentPlanSection(P));
  box.replaceChildren(...parts);
}

function planMsg(text, err) {
  plannerState().msg = text ? { text, err: !!err } : null;
  drawPlanner();
}

async function createPlan(name, community) {
  const codes = community.split(/[\s,]+/).filter(Boolean);
  try {
    const p = await api("/plans", { method: "POST", headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ name: name || `plan ${codes.join(",")}`, communities: codes }) });
    await renderPlanner();
    await openPlan(p.id);
  } catch (e) {
    planMsg(e.message, true);
  }
}

async function openPlan(id) {
  const P = plannerState();
  resetEdit();
  P.msg = { text: t("loading"), err: false };
  drawPlanner();
  try {
    const plan = await api(`/plans/${id}`);
    P.current = plan;
    const comms = plan.community_codes || [];
    P.prefix = comms.length === 1 ? comms[0] : commonPrefix(comms);
    const grids = plan.grids && plan.grids.type === "FeatureCollection" ? plan.grids : EMPTY_FC;
    map.getSource("plan").setData(grids);
    P.impact = S.api.impact ? await api(`/plans/${id}/impact`).catch((e) => ({ error: e.message })) : null;
    P.diff = S.api.diff ? await api(`/plans/${id}/diff`).catch((e) => ({ error: e.message })) : null;
    paintDiff();
    P.msg = null;
    const b = bboxOf(grids);
    if (b) map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 60, maxZoom: 17 });
  } catch (e) {
    P.msg = { text: e.message, err: true };
  }
  render();
  drawPlanner();
}

function commonPrefix(codes) {
  if (!codes.length) return "none";
  let p = codes[0];
  for (const c of codes) while (!c.startsWith(p)) p = p.slice(0, -1);
  return p || "none";
}

function paintDiff() {
  const P = plannerState();
  map.removeFeatureState({ source: "plan" });
  const rows = (P.diff && P.diff.grids) || [];
  for (const r of rows) if (r.change !== "removed") map.setFeatureState({ source: "plan", id: r.code }, { change: r.change });
  for (const code of pickedCodes()) map.setFeatureState({ source: "plan", id: code }, { picked: true });
  map.setFilter("plan-picked", ["in", ["get", "code"], ["literal", pickedCodes()]]);
}

// the plan's grids, sorted by code: [{code, name}]
function planGrids() {
  const fc = (plannerState().current || {}).grids || EMPTY_FC;
  return (fc.features || []).map((f) => ({ code: f.properties.code, name: f.properties.name }))
    .sort((a, b) => (a.code < b.code ? -1 : 1));
}

function currentPlanSection(P) {
  const plan = P.current;
  const out = [el("h3", {}, `${t("plan")} #${plan.id} ${plan.name} · ${plan.status || ""}`)];
  out.push(el("div", { class: "row-form" },
    el("button", { class: "btn", type: "button", id: "btn-undo", onclick: () => planAction("undo") }, t("undo")),
    el("button", { class: "btn", type: "button", id: "btn-redo", onclick: () => planAction("redo") }, t("redo")),
    el("button", { class: "btn primary", type: "button", onclick: () => { if (confirm(t("publish_confirm"))) planAction("publish"); } }, t("publish"))));
  if (S.api.autopartition) out.push(...autopartitionForm(plan));
  out.push(el("h3", {}, t("edit")), ...editForm(P));
  // metrics side by side
  out.push(el("h3", {}, t("plan_metrics")));
  out.push(impactTable(P.impact));
  // diff
  out.push(el("h3", {}, t("diff")));
  out.push(diffSection(P.diff));
  return out;
}

function autopartitionForm(plan) {
  const comms = plan.community_codes || [];
  const nInput = el("input", { type: "number", min: 1, id: "auto-n", placeholder: t("target_n") });
  const targetInput = el("input", { type: "number", min: 1, id: "auto-target", placeholder: t("target_load") });
  const commSelect = el("select", { id: "auto-community" },
    comms.length > 1 ? el("option", { value: "" }, t("all_communities")) : null,
    comms.map((c) => el("option", { value: c }, c)));
  const run = () => autopartition(commSelect.value, nInput.value, targetInput.value);
  return [
    el("div", { class: "row-form" }, el("span", {}, t("autopartition")), comms.length > 1 ? commSelect : null),
    el("div", { class: "row-form" }, nInput, targetInput,
      el("button", { class: "btn", type: "button", id: "btn-auto", onclick: run }, t("run"))),
  ];
}

// the edit tools: a kind bar, the grid slots, the drawing buttons, the kind's own
// inputs and its button (enabled once the edit has what it needs)
function editForm(P) {
  const tool = EDIT_TOOLS[P.kind];
  const kinds = el("div", { class: "seg", id: "edit-kinds", role: "tablist" },
    Object.keys(EDIT_TOOLS).map((k) => el("button", { type: "button", role: "tab",
      class: k === P.kind ? "on" : "", "data-kind": k, onclick: () => setEditKind(k) }, t(k))));
  const grids = planGrids();
  const slots = tool.slots.map((label, i) => el("label", { class: "slot" }, el("span", {}, t(label)),
    el("select", { id: `slot-${i}`, onchange: (e) => { setSlot(i, e.target.value); } },
      el("option", { value: "" }, t("choose")),
      grids.map((g) => el("option", { value: g.code, selected: P.picked[i] === g.code ? "selected" : null },
        `${g.code.slice(-3)} ${g.name || ""}`)))));
  const out = [kinds, el("p", { class: "hint" }, t(P.kind + "_hint")), el("div", { class: "slots" }, slots),
    el("div", { class: "row-form" },
      el("span", {}, `${t("selected_grids")}: `, el("b", { id: "picked" }, pickedCodes().join(", ") || t("none"))),
      el("button", { class: "btn", type: "button", onclick: () => { resetEdit(); paintDiff(); drawPlanner(); } }, t("clear")))];
  if (tool.draw.length) {
    out.push(el("div", { class: "row-form" },
      tool.draw.map((shape) => el("button", { type: "button", id: `btn-draw-${shape}`,
        class: "btn" + (P.drawing && P.shape === shape ? " on" : ""), onclick: () => startDrawing(shape) }, t(DRAW_LABEL[shape]))),
      el("span", { class: "hint", id: "draw-status" },
        P.drawing ? t("drawing") : P.drawPts.length ? `${t("points_drawn")}: ${P.drawPts.length}` : "")));
  }
  if (P.kind === "rename") {
    const current = grids.find((g) => g.code === P.picked[0]);
    const input = (id, key, ph) => el("input", { type: "text", id, value: P.form[key], placeholder: ph,
      oninput: (e) => { P.form[key] = e.target.value; updateApply(); } });
    out.push(el("div", { class: "row-form" }, input("rename-name", "name", current ? current.name : t("new_name"))),
      el("div", { class: "row-form" }, input("rename-code", "code", t("new_code"))));
  }
  out.push(el("div", { class: "row-form" },
    el("button", { class: "btn primary", type: "button", id: `btn-${P.kind.replace("_", "-")}`,
      disabled: editParams(P) ? null : "disabled", onclick: applyEdit }, t(P.kind))));
  return out;
}

function setEditKind(kind) {
  const P = plannerState();
  const keep = pickedCodes().slice(0, EDIT_TOOLS[kind].slots.length);
  resetEdit();
  P.kind = kind;
  P.picked = keep;
  paintDiff();
  drawPlanner();
}

function setSlot(i, code) {
  const P = plannerState();
  const picked = EDIT_TOOLS[P.kind].slots.map((_, k) => P.picked[k] || "");
  picked[i] = code;
  P.picked = picked;
  paintDiff();
  drawPlanner();
}

// a grid clicked on the map fills the first free slot (or replaces the oldest pick);
// clicking a picked grid again frees its slot
function togglePick(code) {
  const P = plannerState();
  const picked = EDIT_TOOLS[P.kind].slots.map((_, k) => P.picked[k] || "");
  const i = picked.indexOf(code);
  if (i >= 0) picked[i] = "";
  else if (picked.includes("")) picked[picked.indexOf("")] = code;
  else { picked.shift(); picked.push(code); }
  P.picked = picked;
  paintDiff();
  drawPlanner();
}

function startDrawing(shape) {
  const P = plannerState();
  P.shape = shape;
  P.drawing = true;
  P.drawPts = [];
  drawSketch();
  drawPlanner();
}

function stopDrawing() {
  const P = plannerState();
  if (!P.drawing) return;
  P.drawing = false;
  drawSketch();
  drawPlanner();
}

// the drawn geometry (GeoJSON, WGS84), or null while it is incomplete
function drawnGeometry(P) {
  const pts = P.drawPts;
  if ((P.shape === "line" || P.shape === "polyline") && pts.length >= 2) {
    return { type: "LineString", coordinates: pts.slice() };
  }
  if (P.shape === "polygon" && pts.length >= 3) {
    return { type: "Polygon", coordinates: [[...pts, pts[0]]] };
  }
  if (P.shape === "rect" && pts.length === 2) {
    const [[x0, y0], [x1, y1]] = pts;
    return { type: "Polygon", coordinates: [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] };
  }
  return null;
}

// the params of the current edit (see geogrid/plans/edits.py), or null when incomplete
function editParams(P) {
  const [a, b] = P.picked;
  const shape = drawnGeometry(P);
  switch (P.kind) {
    case "merge":
      return pickedCodes().length >= 2 ? { codes: pickedCodes() } : null;
    case "split":
      return a && shape ? { code: a, line: shape } : null;
    case "move_edge":
      return a && b && a !== b && shape ? { a, b, line: shape } : null;
    case "reassign":
      return a && b && a !== b && shape ? { from: a, to: b, polygon: shape } : null;
    case "rename": {
      const name = P.form.name.trim();
      const code = P.form.code.trim();
      if (!a || (!name && !code)) return null;
      // a grid code is its community's code and 3 digits (the server checks it too)
      if (code && !(code.length === a.length && code.startsWith(a.slice(0, -3)) && /^\d+$/.test(code))) return null;
      return { code: a, ...(name ? { new_name: name } : {}), ...(code ? { new_code: code } : {}) };
    }
    default:
      return null;
  }
}

function updateApply() {
  const P = plannerState();
  const btn = document.getElementById(`btn-${P.kind.replace("_", "-")}`);
  if (btn) btn.disabled = !editParams(P);
}

function applyEdit() {
  const P = plannerState();
  if (P.drawing) stopDrawing();
  const params = editParams(P);
  if (params) planEdit(P.kind, params);
}

const IMPACT_KEYS = ["grids", "households", "population", "incidents", "load_index", "max_min_ratio", "cv",
  "mean_polsby_popper", "non_contiguous", "area_m2"];

function impactTable(imp) {
  if (!imp) return el("p", { class: "hint" }, t("none"));
  if (imp.error) return el("p", { class: "err" }, imp.error);
  const a = (imp.published && imp.published.totals) || {};
  const b = (imp.plan && imp.plan.totals) || {};
  const keys = IMPACT_KEYS.filter((k) => k in a || k in b)
    .concat(Object.keys(b).filter((k) => !IMPACT_KEYS.includes(k)));
  const tbl = el("table", { class: "grid", id: "plan-metrics" },
    el("thead", {}, el("tr", {}, el("th", {}, t("metric")), el("th", {}, t("before")), el("th", {}, t("after")))));
  const tb = el("tbody");
  for (const k of keys) tb.append(el("tr", {}, el("th", {}, I18N[LANG][k] ? t(k) : k), el("td", {}, fmt(a[k], k)), el("td", {}, fmt(b[k], k))));
  tbl.append(tb);
  const grids = (imp.plan && imp.plan.grids) || [];
  const per = el("table", { class: "grid", id: "plan-grids" },
    el("thead", {}, el("tr", {}, el("th", {}, t("level_grid")), el("th", {}, t("households")), el("th", {}, t("incidents")), el("th", {}, t("load_index")))));
  const pb = el("tbody");
  for (const g of grids) {
    pb.append(el("tr", {}, el("td", { title: g.name }, g.code), el("td", {}, fmt(g.households)), el("td", {}, fmt(g.incidents)), el("td", {}, fmt(g.load_index))));
  }
  per.append(pb);
  return el("div", {}, tbl, el("p", { class: "hint" }, t("after")), per);
}

function diffSection(d) {
  if (!d) return el("p", { class: "hint" }, t("none"));
  if (d.error) return el("p", { class: "err" }, d.error);
  const rows = d.grids || [];
  if (!rows.length) return el("p", { class: "hint", id: "plan-diff" }, t("none"));
  const cls = { new: "add", removed: "del", changed: "mod" };
  const label = { new: t("added"), removed: t("removed"), changed: t("modified") };
  const chips = el("div", { class: "chips", id: "plan-diff" },
    rows.map((r) => el("span", { class: cls[r.change] || "", title: r.name }, `${label[r.change] || r.change} ${r.code}`)));
  const extra = d.incidents ? el("p", { class: "hint" }, `${t("incidents")}: ${d.incidents.count}`) : null;
  return el("div", {}, chips, extra);
}

async function planPost(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json", ...authHeaders() },
    body: body ? JSON.stringify(body) : undefined });
}

async function planAction(what) {
  const P = plannerState();
  try {
    await planPost(`/plans/${P.current.id}/${what}`);
    await openPlan(P.current.id);
    planMsg(`${t(what)} · ${t("done")}`);
  } catch (e) {
    planMsg(e.message, true);
  }
}

async function planEdit(kind, params) {
  const P = plannerState();
  try {
    await planPost(`/plans/${P.current.id}/edits`, { kind, params });
    await openPlan(P.current.id);
    planMsg(`${t(kind)} · ${t("done")}`);
  } catch (e) {
    planMsg(e.message, true);
  }
}

async function autopartition(community, n, target) {
  const P = plannerState();
  planMsg(t("loading"));
  try {
    const body = { communities: community ? [community] : null };
    if (n) body.n = Number(n);
    else if (target) body.target = Number(target);
    const res = await planPost(`/plans/${P.current.id}/autopartition`, body);
    await openPlan(P.current.id);
    const bal = Object.entries((res && res.balance) || {}).map(([c, b]) =>
      `${c}: ${b.n} · ${t("max_min_ratio")} ${fmt(b.max_min_ratio)} · CV ${fmt(b.cv)}`);
    planMsg([`${t("autopartition")} · ${t("done")}`, ...bal].join("；"));
  } catch (e) {
    planMsg(e.message, true);
  }
}

// the sketch on the map: the clicked points, and the line or polygon they make
function drawSketch() {
  const P = plannerState();
  const feats = P.drawPts.map((c) => ({ type: "Feature", properties: {}, geometry: { type: "Point", coordinates: c } }));
  let shape = null;
  if (P.shape === "polygon" && P.drawPts.length >= 3) shape = drawnGeometry(P);
  else if (P.shape === "rect" && P.drawPts.length === 2) shape = drawnGeometry(P);
  else if (P.drawPts.length >= 2) shape = { type: "LineString", coordinates: P.drawPts };
  if (shape) feats.push({ type: "Feature", properties: {}, geometry: shape });
  map.getSource("draw").setData({ type: "FeatureCollection", features: feats });
}

function plannerClick(e) {
  const P = plannerState();
  if (!P.current) return;
  if (P.drawing) {
    P.drawPts.push([e.lngLat.lng, e.lngLat.lat]);
    const ends = DRAW_CLICKS[P.shape];
    if (ends && P.drawPts.length >= ends) P.drawing = false;
    drawSketch();
    drawPlanner();
    return;
  }
  const f = featureAt(e.point, ["plan-fill"]);
  if (f) togglePick(f.properties.code);
}

document.addEventListener("keydown", (e) => {
  if (e.key !== "Escape" || S.mode !== "planner" || !S.plan || !S.plan.drawing) return;
  S.plan.drawPts = [];
  stopDrawing();
});

// test hook: the state and the map
window.geogrid = { S, get map() { return map; }, displayLevel, openPlan, setMode, settled };

init().catch((e) => {
  console.warn(e);
  setStatus(`${t("error")}: ${e.message}`);
});
