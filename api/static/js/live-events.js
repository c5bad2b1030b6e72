// Pure helpers of the live map (issue 12, live.js): the overlay of recent events as
// GeoJSON and the text of a toast. No DOM, no map: tested with node --test.

/** Keep the newest `max` events, newest first; an event replaces an older one of the
 * same incident (a new report, then its status change, is one dot). */
export function addEvent(events, ev, max = 50) {
  const out = [ev, ...events.filter((e) => e.id !== ev.id)];
  return out.slice(0, max);
}

/** The recent events as a GeoJSON FeatureCollection of points (events without a
 * position are left out). */
export function eventsToGeoJSON(events) {
  return {
    type: "FeatureCollection",
    features: events
      .filter((e) => Number.isFinite(e.lon) && Number.isFinite(e.lat))
      .map((e) => ({
        type: "Feature",
        id: e.id,
        geometry: { type: "Point", coordinates: [e.lon, e.lat] },
        properties: { id: e.id, kind: e.kind, status: e.status, category: e.category },
      })),
  };
}

/** The toast of an event: `tr(key, vars)` translates; `category(code)` and
 * `status(code)` name codes. */
export function toastText(kind, ev, tr, category, status) {
  if (kind === "bulk") return tr("live_bulk", { n: ev.count });
  if (kind === "status") return tr("live_status", { id: ev.id, status: status(ev.status) });
  return tr("live_new", { category: category(ev.category), grid: ev.grid_code || "–" });
}
