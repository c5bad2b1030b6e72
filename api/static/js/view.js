// What the map mode does on a change of state: draw the layers, legend and breadcrumb,
// recompute the classes of the shown units once the map is idle, drill down and up,
// load hot spots and the metrics that are not in the tiles.
import { request, windowQuery, apiPath } from "./api.js";
import { quantileBreaks } from "./classes.js";
import { metricRows, rowsKey } from "./data.js";
import { setStatus } from "./dom.js";
import { t } from "./i18n.js";
import { renderLegend, renderBreadcrumb } from "./legend.js";
import {
  getMap, renderLayers, paintChoropleth, refreshTiles, sourceLayer, fitBounds, bboxOf, TILE_LAYER,
} from "./map-layers.js";
import { renderPanel } from "./panel.js";
import { S, childLevel, displayLevel, parentCode, filter, levels } from "./state.js";

/** Draw the current state: layers, breadcrumb, legend. */
export function render() {
  renderLayers();
  renderBreadcrumb();
  renderLegend();
}

/** The level, window or metric changed: redraw and fetch what the new state needs. */
export function changed() {
  S.dirty = true;
  render();
  if (!S.tileMetrics.includes(S.metric)) ensureFeatureState(displayLevel());
  if (S.show.hot) loadHotspots();
}

/** The time window or category changed. */
export function windowChanged() {
  S.classes = null;
  refreshTiles();
  changed();
  renderPanel();
}

/** True when the map shows the current state: tiles loaded, not moving, panel updated. */
export function settled() {
  const map = getMap();
  return !!map && map.loaded() && map.areTilesLoaded() && !map.isMoving() && !S.dirty &&
    !S.zooming && !S.updating;
}

/** On the map's "idle": recompute the classes and the panel after a change. */
export async function onIdle() {
  if (!S.dirty || S.mode !== "map" || S.zooming) return;
  S.dirty = false;
  S.updating = true;
  try {
    refreshSelectedProps();
    await updateClasses();
    renderPanel();
  } finally {
    S.updating = false;
    document.body.dataset.ready = "1";
  }
}

// the units shown at the display level, with their metric values
async function shownUnits() {
  const pc = parentCode();
  try {
    const rows = await metricRows(displayLevel());
    return [...rows.values()].filter((r) => !pc || r.code.startsWith(pc));
  } catch (e) {
    console.warn("metrics", e);
    return [];
  }
}

async function updateClasses() {
  S.units = await shownUnits();
  S.classes = quantileBreaks(S.units.map((u) => u[S.metric]));
  paintChoropleth();
  renderLegend();
}

// the metrics the tiles lack, as feature-state of the units of `level`
async function ensureFeatureState(level) {
  const key = rowsKey(level);
  if (S.stateSet.has(key)) return;
  S.stateSet.add(key);
  const map = getMap();
  try {
    const rows = await metricRows(level);
    if (key !== rowsKey(level)) return;
    const src = { source: "u-" + level, sourceLayer: sourceLayer(level) };
    const keys = S.config.metrics.map((m) => m.key).filter((k) => !S.tileMetrics.includes(k));
    for (const r of rows.values()) {
      const st = {};
      for (const k of keys) st[k] = r[k] === undefined ? null : r[k];
      map.setFeatureState({ ...src, id: r.code }, st);
    }
    S.dirty = true;
    map.triggerRepaint();
  } catch (e) {
    S.stateSet.delete(key);
    console.warn("metrics", e);
  }
}

// the tile attributes of the selected unit and the drill path under the current window
function refreshSelectedProps() {
  const map = getMap();
  for (const u of [S.selected, ...S.path]) {
    if (!u) continue;
    const f = map.querySourceFeatures("u-" + u.level, { sourceLayer: sourceLayer(u.level),
      filter: ["==", ["get", "code"], u.code] })[0];
    if (f) u.props = { ...f.properties };
  }
}

/** Colour the hot and cold spots (Getis-Ord Gi*) of the display level. */
export async function loadHotspots() {
  const map = getMap();
  const level = displayLevel();
  const key = rowsKey(level);
  if (S.hot && S.hot.key === key) {
    render();
    return;
  }
  setStatus(t("loading"));
  try {
    const body = await request(`/hotspots?${windowQuery(filter(), { level })}`);
    if (S.hot) map.removeFeatureState({ source: "u-" + S.hot.level, sourceLayer: sourceLayer(S.hot.level) });
    for (const r of body.units) {
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

// zoom to the children of `unit` (the whole data when null)
async function zoomToUnit(unit) {
  const map = getMap();
  S.zooming = true;
  try {
    if (!unit) {
      await fitBounds(S.tilejson[TILE_LAYER[levels()[levels().length - 1]]].bounds);
      return;
    }
    const child = childLevel(unit.level);
    if (!child) return;
    let gj = null;
    try {
      gj = await request(apiPath(["boundaries", child], { parent: unit.code }));
    } catch (e) {
      console.warn("boundaries", e);
    }
    const b = gj && bboxOf(gj);
    if (b) await fitBounds(b);
  } finally {
    S.zooming = false;
    S.dirty = true;
    map.triggerRepaint();
  }
}

/** Show the children of `unit`. */
export function drill(unit) {
  S.path.push({ level: unit.level, code: unit.code, name: unit.name, props: unit.props });
  S.selected = unit;
  S.classes = null;
  changed();
  renderPanel();
  zoomToUnit(unit);
}

/** Select `unit` (a unit at the display level that is not drilled into). */
export function select(unit) {
  S.selected = unit;
  render();
  renderPanel();
}

/** Drill into `unit`, or select it at the bottom level or in the all-grids view. */
export function pick(unit) {
  if (childLevel(unit.level) && !S.gridView) drill(unit);
  else select(unit);
}

/** Go back up the drill path to `depth` units (0: the city). */
export function goUp(depth) {
  S.path = S.path.slice(0, depth);
  const last = S.path[S.path.length - 1];
  S.selected = last ? { ...last } : null;
  S.classes = null;
  changed();
  renderPanel();
  zoomToUnit(last || null);
}

/**
 * Go to a unit found by the search ({code, name, level, parent_codes, parent_names, bbox}):
 * the drill path becomes its ancestors (and the unit itself when it has children), the
 * unit is selected and the map flies to its extent.
 *
 * @param {{code: string, name: string, level: string, parent_codes: string[],
 *          parent_names: string[], bbox: number[]}} m
 * @returns {Promise<void>} when the map has arrived
 */
export async function goToUnit(m) {
  const map = getMap();
  const all = levels();
  const unit = { level: m.level, code: m.code, name: m.name };
  S.gridView = false;
  S.path = m.parent_codes.map((code, i) => ({ level: all[i], code, name: m.parent_names[i] }));
  if (childLevel(m.level)) S.path.push({ ...unit });
  S.selected = unit;
  S.classes = null;
  changed();
  renderPanel();
  S.zooming = true;
  try {
    await fitBounds(m.bbox);
  } finally {
    S.zooming = false;
    S.dirty = true;
    map.triggerRepaint();
  }
}

/**
 * Fly to a unit given by its code alone (e.g. a grid of the overdue list): looked up with
 * GET /units/search.
 *
 * @param {string} code
 */
export async function goToCode(code) {
  const found = await request(apiPath(["units", "search"], { q: code, limit: 1 }));
  if (found.length && found[0].code === code) await goToUnit(found[0]);
}
