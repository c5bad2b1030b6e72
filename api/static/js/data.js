// Metric rows of units from GET /metrics/{level}, fetched once per level and filter.
import { request, windowKey, windowQuery, apiPath } from "./api.js";
import { S, filter } from "./state.js";

/** The key of `level`'s rows under the current filter. */
export const rowsKey = (level) => `${level}|${windowKey(filter())}`;

/**
 * The metric rows of every unit of `level` under the current filter, by code.
 *
 * @param {string} level
 * @returns {Promise<Map<string, Record<string, any>>>}
 */
export function metricRows(level) {
  const key = rowsKey(level);
  if (!S.metricRows.has(key)) {
    const p = request(`${apiPath(["metrics", level])}?${windowQuery(filter())}`)
      .then((body) => new Map(body.units.map((r) => [r.code, r])));
    S.metricRows.set(key, p);
    p.catch(() => S.metricRows.delete(key));
  }
  return S.metricRows.get(key);
}
