// The pure helpers of the "patrol tracks" overlay (patrols.js): a worker's colour, the
// popup's lines of a track, the features coloured for the line layer. No DOM, no map:
// tested with node (tests/js/patrols.test.js).
import { localDateTime } from "./format.js";

/** a few distinct colours: a worker keeps one colour for the day */
export const PALETTE = ["#d7191c", "#2b83ba", "#1a9641", "#7b3294", "#e66101", "#008837", "#5e3c99", "#ca0020"];

/**
 * The colour of a worker's track (by account id, stable across days).
 *
 * @param {number} accountId
 * @returns {string}
 */
export function colourOf(accountId) {
  const n = Number(accountId) || 0;
  return PALETTE[((n % PALETTE.length) + PALETTE.length) % PALETTE.length];
}

/**
 * The lines of a track's popup: the worker, when, how far, how long, the grids.
 *
 * @param {object} p the feature's properties (GET /patrols)
 * @param {(key: string, vars?: object) => string} label
 * @param {string} [timeZone]
 * @returns {string[]}
 */
export function trackLines(p, label, timeZone) {
  const km = (Number(p.distance_m) || 0) / 1000;
  const minutes = Math.round((Number(p.duration_s) || 0) / 60);
  let grids = p.grids || [];
  if (typeof grids === "string") {
    try {
      grids = JSON.parse(grids);
    } catch {
      grids = [];
    }
  }
  const cover = grids.map((g) => `${g.grid_code} ${(Number(g.coverage) * 100).toFixed(0)}%`).join(", ");
  return [
    `${label("patrol_worker")}: ${p.account_name ?? ""}`,
    `${label("patrol_time")}: ${localDateTime(p.started_at, timeZone)} – ${localDateTime(p.ended_at, timeZone).slice(11)}`,
    `${label("patrol_distance")}: ${km.toFixed(2)} km · ${minutes} min`,
    `${label("patrol_buildings")}: ${p.buildings_visited ?? 0}`,
    ...(cover ? [`${label("patrol_coverage")}: ${cover}`] : []),
  ];
}

/**
 * The features with a `colour` property for the line layer.
 *
 * @param {{features: object[]}} fc
 * @returns {{type: string, features: object[]}}
 */
export function coloured(fc) {
  return {
    type: "FeatureCollection",
    features: (fc.features || []).filter((f) => f.geometry).map((f) => ({
      ...f, properties: { ...f.properties, colour: colourOf(f.properties.account_id) },
    })),
  };
}
