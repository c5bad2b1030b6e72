// The page's state and the server's catalogue (GET /config): the city, its levels,
// metrics, statuses and incident categories. Everything shown follows this state.
import { lang, t, hasLabel } from "./i18n.js";

export const S = {
  mode: "map",          // "map" or "planner"
  metric: "incidents",
  preset: "30",         // days of the time window, or "custom"
  from: "",             // YYYY-MM-DD in the city's time zone
  to: "",
  category: "",
  path: [],             // drill path: [{level, code, name, props}]
  selected: null,       // {level, code, name, props, row?}
  gridView: false,
  show: { choropleth: true, labels: true, heat: false, hot: false, incidents: false, basemap: false },
  config: null,         // GET /config
  web: {},              // GET /web/config.json (basemap)
  tilejson: {},         // layer name -> TileJSON
  tileMetrics: [],      // metrics the unit tiles carry
  classes: null,        // quantileBreaks() of the shown units
  units: [],            // the shown units' metric rows
  metricRows: new Map(), // "level|window" -> Promise<Map(code -> row)>
  stateSet: new Set(),  // "level|window" whose other metrics are in feature-state
  hot: null,            // {key, level, classes}
  dirty: true,          // the map changed since the legend and panel were updated
  zooming: false,
  updating: false,
  plan: null,           // planner state (planner.js)
};

/** The levels from the top down, e.g. ["district", "street", "community", "grid"]. */
export const levels = () => S.config.levels.map((l) => l.key);

/** The level below `level` (undefined at the bottom). */
export function childLevel(level) {
  const all = levels();
  return all[all.indexOf(level) + 1];
}

/** The name of a level in the current language. */
export function levelName(level) {
  const l = S.config.levels.find((x) => x.key === level);
  return l ? (lang() === "en" ? l.name_en : l.name_zh) : level;
}

/** The city's name in the current language. */
export function cityName() {
  const c = S.config.city;
  return lang() === "en" ? c.name_en : c.name_zh;
}

/** Placeholders of the labels: {city}, {levels}. */
export function labelVars() {
  return { city: cityName(), levels: levels().map(levelName).join(" → ") };
}

/** The name of an incident category in the current language (its code when unknown). */
export function categoryName(code) {
  const c = S.config.categories.find((x) => x.code === code);
  return c ? (lang() === "en" ? c.name_en : c.name_zh) : code;
}

/** The keys of the catalogue's metrics: those in the tiles first (they need no request). */
export function metricKeys() {
  const all = S.config.metrics.map((m) => m.key);
  return [...all.filter((k) => S.tileMetrics.includes(k)), ...all.filter((k) => !S.tileMetrics.includes(k))];
}

/** The label of a metric: ours, else the catalogue's description, else its key. */
export function metricLabel(key) {
  if (hasLabel(key)) return t(key);
  const m = S.config.metrics.find((x) => x.key === key);
  return m ? m.description : key;
}

/** The label of an incident status. */
export function statusLabel(status) {
  return hasLabel("status_" + status) ? t("status_" + status) : status;
}

/** The level shown on the map: the children of the drill path's end (or every grid). */
export function displayLevel() {
  const all = levels();
  return S.gridView ? all[all.length - 1] : all[Math.min(S.path.length, all.length - 1)];
}

/** The code of the drill path's end (null at the city). */
export const parentCode = () => (S.path.length ? S.path[S.path.length - 1].code : null);

/** The time window and category of the data shown. */
export const filter = () => ({ from: S.from, to: S.to, category: S.category });
