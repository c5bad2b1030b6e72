// The map: its sources and layers (our vector tiles of the four levels, heat-map raster
// tiles, incident points, the planner's plan and sketch) and their visibility, filters and
// colours for the current state.
import { maplibregl } from "./maplibre.js";
import { request, apiPath, windowQuery, withQuery } from "./api.js";
import { colorExpression, NO_DATA } from "./classes.js";
import { byId } from "./dom.js";
import { S, levels, displayLevel, parentCode, filter } from "./state.js";

/** The vector tile layer (GET /tiles/{layer}.json) of each level. */
export const TILE_LAYER = { district: "districts", street: "streets", community: "communities", grid: "grids" };
/** The other tile layers. */
export const INCIDENT_LAYER = "incidents";
/** Colours of the hot-spot classes (Getis-Ord Gi*). */
export const HOT_COLORS = {
  hot_99: "#b2182b", hot_95: "#ef6548", hot_90: "#fdae91",
  cold_90: "#c6dbef", cold_95: "#6baed6", cold_99: "#2166ac",
};
export const EMPTY_FC = { type: "FeatureCollection", features: [] };
/**
 * The font of the labels: SDF glyph ranges made from WenQuanYi Micro Hei
 * (scripts/make_glyphs.py, served from /static/fonts/) for digits, Latin and punctuation;
 * CJK ideographs are drawn with the browser's own font (LOCAL_CJK_FONTS), so nothing
 * comes from the network.
 */
export const LABEL_FONT = ["wqy-microhei"];
/** The CSS font families MapLibre draws CJK ideographs with. */
export const LOCAL_CJK_FONTS =
  "'WenQuanYi Micro Hei', 'Noto Sans CJK SC', 'PingFang SC', 'Microsoft YaHei', sans-serif";
/** The text size (px) of the labels of each level. */
const LABEL_SIZE = { district: 15, street: 13.5, community: 12.5, grid: 11.5 };
/** The hot-spot layers drawn as outlines (over a choropleth) and as fills (alone). */
const HOT_CLASS = ["match", ["coalesce", ["feature-state", "hot"], ""]];

let map = null;

/** The map (null before {@link createMap}). */
export const getMap = () => map;

/** The id of the vector layer inside the tiles of `level`. */
export function sourceLayer(level) {
  const tj = S.tilejson[TILE_LAYER[level]];
  return (tj.vector_layers && tj.vector_layers[0] && tj.vector_layers[0].id) || TILE_LAYER[level];
}

/** The MapLibre filter of the units inside the unit `code` (all units when null). */
export function withinFilter(code) {
  if (!code) return ["has", "code"];
  return ["==", ["slice", ["get", "code"], 0, code.length], code];
}

/** The tile URL template of a layer under the current filter. */
function tileUrl(layer) {
  return withQuery(S.tilejson[layer].tiles[0], windowQuery(filter()));
}

/**
 * Create the map in #map, framed on the data's bounds (else the city's default view).
 *
 * @param {Record<string, Function>} handlers map events ("load", "idle", "click", ...)
 * @returns {maplibregl.Map}
 */
export function createMap(handlers) {
  const b = S.tilejson[TILE_LAYER[levels()[levels().length - 1]]].bounds;
  const city = S.config.city;
  const view = b
    ? { bounds: [[b[0], b[1]], [b[2], b[3]]], fitBoundsOptions: { padding: 30 } }
    : { center: city.center, zoom: city.zoom };
  map = new maplibregl.Map({
    container: "map",
    style: { version: 8, sources: {},
      glyphs: `${location.origin}/static/fonts/{fontstack}/{range}.pbf`, layers: [
      { id: "background", type: "background", paint: { "background-color": "#eef2f6" } }] },
    ...view,
    maxZoom: 19,
    dragRotate: false,
    pitchWithRotate: false,
    attributionControl: { compact: true },
    localIdeographFontFamily: LOCAL_CJK_FONTS,
    preserveDrawingBuffer: true, // the PNG and PDF export read the canvas
  });
  map.touchZoomRotate.disableRotation();
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-right");
  for (const [event, fn] of Object.entries(handlers)) map.on(event, fn);
  return map;
}

/** Add the sources and layers (on the map's "load"). */
export function addLayers() {
  if (S.web.basemap) {
    map.addSource("basemap", { type: "raster", tiles: [S.web.basemap], tileSize: 256,
      attribution: S.web.basemap_attribution || "" });
    map.addLayer({ id: "basemap", type: "raster", source: "basemap", layout: { visibility: "none" } });
    byId("basemap-row").hidden = false;
  }
  const all = levels();
  for (const level of all) {
    const tj = S.tilejson[TILE_LAYER[level]];
    map.addSource("u-" + level, {
      type: "vector",
      tiles: [tileUrl(TILE_LAYER[level])],
      bounds: tj.bounds,
      minzoom: tj.minzoom || 0,
      maxzoom: Math.min(tj.maxzoom || 14, 14),
      promoteId: { [sourceLayer(level)]: "code" },
      attribution: tj.attribution,
    });
  }
  const unitLayer = (id, level, type, paint) => map.addLayer({ id, type, source: "u-" + level,
    "source-layer": sourceLayer(level), layout: { visibility: "none" }, paint });
  for (const level of all) {
    unitLayer("fill-" + level, level, "fill", { "fill-color": NO_DATA, "fill-opacity": 0.85 });
  }
  const htj = S.tilejson.heatmap;
  map.addSource("heat", { type: "raster", tiles: [tileUrl("heatmap")], tileSize: 256,
    maxzoom: htj.maxzoom || 18, bounds: htj.bounds });
  map.addLayer({ id: "heat", type: "raster", source: "heat", layout: { visibility: "none" },
    paint: { "raster-opacity": 0.8 } });
  for (const level of all) {
    unitLayer("hot-" + level, level, "fill", {
      "fill-color": [...HOT_CLASS, ...Object.entries(HOT_COLORS).flat(), "rgba(0,0,0,0)"],
      "fill-opacity": 0.85,
    });
  }
  for (const level of all) {
    unitLayer("line-" + level, level, "line",
      { "line-color": "#ffffff", "line-width": level === all[all.length - 1] ? 0.5 : 1 });
  }
  for (const level of all) {
    // over a choropleth the hot and cold spots are thick outlines, not fills
    unitLayer("hotline-" + level, level, "line", {
      "line-color": [...HOT_CLASS, ...Object.entries(HOT_COLORS).flat(), "rgba(0,0,0,0)"],
      "line-width": 3.5,
      "line-offset": 1.5,
    });
  }
  map.addLayer({ id: "ctx-top", type: "line", source: "u-" + all[0], "source-layer": sourceLayer(all[0]),
    paint: { "line-color": "#334155", "line-width": 1.2, "line-opacity": 0.8 } });
  for (const level of all) {
    unitLayer("parent-" + level, level, "line", { "line-color": "#0f172a", "line-width": 2.5 });
    unitLayer("sel-" + level, level, "line", { "line-color": "#2563eb", "line-width": 3 });
  }
  const itj = S.tilejson[INCIDENT_LAYER];
  map.addSource("incidents", { type: "vector", tiles: [tileUrl(INCIDENT_LAYER)], bounds: itj.bounds,
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
  map.addLayer({ id: "inc-cluster-count", type: "symbol", source: "incidents", "source-layer": il,
    filter: ["all", ["==", ["get", "cluster"], 1], [">", ["get", "count"], 1]],
    layout: { visibility: "none", "text-field": ["to-string", ["get", "count"]], "text-font": LABEL_FONT,
      "text-size": 11, "text-allow-overlap": false },
    paint: { "text-color": "#ffffff", "text-halo-color": "#4c1d95", "text-halo-width": 1.2 } });
  // the names of the units (over everything else of the map mode)
  // (one point per unit from GET /units/labels, so that a name is written once, not once
  // per tile its unit spans)
  for (const level of all) {
    map.addSource("lbl-" + level, { type: "geojson", data: EMPTY_FC });
    map.addLayer({ id: "label-" + level, type: "symbol", source: "lbl-" + level,
      layout: { visibility: "none", "text-field": ["get", "name"], "text-font": LABEL_FONT,
        "text-size": LABEL_SIZE[level] || 12, "text-max-width": 7, "text-padding": 4 },
      paint: { "text-color": "#1f2933", "text-halo-color": "rgba(255,255,255,0.92)",
        "text-halo-width": 1.6, "text-halo-blur": 0.3 } });
  }
  // the planner's plan and sketch
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
    filter: ["boolean", false], paint: { "line-color": "#1d4ed8", "line-width": 3.5 } });
  map.addSource("draw", { type: "geojson", data: EMPTY_FC });
  map.addLayer({ id: "draw-fill", type: "fill", source: "draw", filter: ["==", ["geometry-type"], "Polygon"],
    paint: { "fill-color": "#1d4ed8", "fill-opacity": 0.15 } });
  map.addLayer({ id: "draw-line", type: "line", source: "draw",
    paint: { "line-color": "#1d4ed8", "line-width": 2.5, "line-dasharray": [2, 1] } });
  map.addLayer({ id: "draw-pt", type: "circle", source: "draw", filter: ["==", ["geometry-type"], "Point"],
    paint: { "circle-color": "#1d4ed8", "circle-radius": 5 } });
}

/** Whether the layers exist (the map has loaded). */
export const hasLayers = () => !!map && !!map.getSource("draw");

function vis(id, shown) {
  if (map.getLayer(id)) map.setLayoutProperty(id, "visibility", shown ? "visible" : "none");
}

/** The fill colour of the choropleth of `metric`: tile attributes, else feature-state. */
export function choroplethColor(metric, breaks) {
  const value = S.tileMetrics.includes(metric) ? ["get", metric] : ["feature-state", metric];
  return colorExpression(value, breaks);
}

/** Paint the choropleth of the display level with the current classes. */
export function paintChoropleth() {
  map.setPaintProperty("fill-" + displayLevel(), "fill-color",
    choroplethColor(S.metric, S.classes ? S.classes.breaks : null));
}

/** Show the layers of the current state: level, drill path, selection, toggles, mode. */
export function renderLayers() {
  if (!hasLayers()) return;
  const dl = displayLevel();
  const pc = parentCode();
  const planner = S.mode === "planner";
  const all = levels();
  const parent = S.path[S.path.length - 1];
  const sel = S.selected;
  for (const level of all) {
    const shown = level === dl && !planner;
    vis("fill-" + level, shown && S.show.choropleth);
    vis("line-" + level, shown || (planner && level === all[all.length - 1]));
    const hot = shown && S.show.hot && !!S.hot && S.hot.level === level;
    vis("hot-" + level, hot && !S.show.choropleth);
    vis("hotline-" + level, hot && S.show.choropleth);
    vis("label-" + level, shown && S.show.labels);
    const f = withinFilter(planner ? (S.plan && S.plan.prefix) || "none" : pc);
    for (const id of ["fill-", "line-", "hot-", "hotline-", "label-"]) map.setFilter(id + level, f);
    map.setPaintProperty("line-" + level, "line-color",
      planner ? "#475569" : S.show.choropleth ? "#ffffff" : "#64748b");
    const isParent = !planner && !!parent && parent.level === level;
    vis("parent-" + level, isParent);
    if (isParent) map.setFilter("parent-" + level, ["==", ["get", "code"], parent.code]);
    const selShown = !planner && !!sel && sel.level === level && (!parent || sel.code !== parent.code);
    vis("sel-" + level, selShown);
    if (selShown) map.setFilter("sel-" + level, ["==", ["get", "code"], sel.code]);
  }
  paintChoropleth();
  if (S.show.labels && !planner) loadLabels();
  map.setPaintProperty("fill-" + dl, "fill-opacity", S.show.heat ? 0.35 : 0.85);
  vis("heat", S.show.heat && !planner);
  vis("inc-cluster", S.show.incidents && !planner);
  vis("inc-point", S.show.incidents && !planner);
  vis("inc-cluster-count", S.show.incidents && !planner);
  vis("basemap", S.show.basemap);
  for (const id of ["plan-fill", "plan-line", "plan-picked"]) vis(id, planner);
}

const labelData = new Map(); // "level|parent" -> Promise<FeatureCollection>

/**
 * Load the label points of the display level's units into its label source (once per
 * level and parent; all units of the level when the parent is not the level's parent).
 */
export function loadLabels() {
  const dl = displayLevel();
  const parent = S.path[S.path.length - 1];
  const direct = parent && levels()[levels().indexOf(parent.level) + 1] === dl;
  const key = `${dl}|${direct ? parent.code : ""}`;
  if (!labelData.has(key)) {
    const p = request(apiPath(["units", "labels"], { level: dl, parent: direct ? parent.code : null }));
    labelData.set(key, p);
    p.catch((e) => {
      labelData.delete(key);
      console.warn("labels", e);
    });
  }
  labelData.get(key).then((fc) => {
    const src = map.getSource("lbl-" + dl);
    if (src && src.loadedKey !== key) {
      src.setData(fc);
      src.loadedKey = key;
    }
  }).catch(() => {});
}

/** Point the tile sources at the current time window and category. */
export function refreshTiles() {
  for (const level of levels()) map.getSource("u-" + level).setTiles([tileUrl(TILE_LAYER[level])]);
  map.getSource("incidents").setTiles([tileUrl(INCIDENT_LAYER)]);
  map.getSource("heat").setTiles([tileUrl("heatmap")]);
}

/** The first rendered feature at `point` among the visible `layerIds`, or null. */
export function featureAt(point, layerIds) {
  const ids = layerIds.filter((id) => map.getLayer(id) && map.getLayoutProperty(id, "visibility") !== "none");
  if (!ids.length) return null;
  return map.queryRenderedFeatures(point, { layers: ids })[0] || null;
}

/** Fit the map to [west, south, east, north] (resolves when the move ends). */
export function fitBounds(b, padding = 40) {
  return new Promise((resolve) => {
    map.once("moveend", resolve);
    map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding, maxZoom: 17 });
    if (!map.isMoving()) setTimeout(resolve, 50); // bounds already shown: no move
  });
}

/** The [west, south, east, north] of a GeoJSON feature, collection or geometry (null if empty). */
export function bboxOf(geojson) {
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
