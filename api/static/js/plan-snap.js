// Snapping for the planner's drawing (pure: no DOM, no map): a point drawn within a
// tolerance in metres of a grid vertex lands exactly on it, else on the nearest edge; the
// shared edge of two grids as a line to reshape. Coordinates are WGS84 [lon, lat]; metres
// use the local scale of the degrees (equirectangular, exact enough within metres). The
// server snaps the same way (geogrid.core.plans.edits.snap_line).

const M_PER_DEG_LAT = 110574;
const M_PER_DEG_LON_EQ = 111320;

/** Metres per degree of longitude and latitude at latitude `lat`. */
export function metresPerDegree(lat) {
  return [M_PER_DEG_LON_EQ * Math.cos((lat * Math.PI) / 180), M_PER_DEG_LAT];
}

/**
 * The rings (arrays of [lon, lat]) of the polygons of a GeoJSON FeatureCollection.
 *
 * @param {{features: Array<{geometry: {type: string, coordinates: any}}>}} fc
 * @returns {Array<Array<[number, number]>>}
 */
export function ringsOf(fc) {
  const out = [];
  for (const f of (fc && fc.features) || []) {
    const g = f.geometry || {};
    const polys = g.type === "Polygon" ? [g.coordinates] : g.type === "MultiPolygon" ? g.coordinates : [];
    for (const poly of polys) for (const ring of poly) out.push(ring);
  }
  return out;
}

/**
 * Snap a point to the rings: the nearest vertex within `tolM` metres (exactly), else the
 * nearest point of an edge within `tolM`; null when nothing is that close.
 *
 * @param {[number, number]} p
 * @param {Array<Array<[number, number]>>} rings
 * @param {number} tolM
 * @returns {[number, number]|null}
 */
export function snapPoint(p, rings, tolM) {
  if (!(tolM > 0)) return null;
  const [mx, my] = metresPerDegree(p[1]);
  const dist = (a, b) => Math.hypot((a[0] - b[0]) * mx, (a[1] - b[1]) * my);
  let best = null;
  let bestD = tolM;
  for (const ring of rings) {
    for (const v of ring) {
      const d = dist(p, v);
      if (d <= bestD) {
        best = v;
        bestD = d;
      }
    }
  }
  if (best) return [best[0], best[1]];
  let edgeD = tolM;
  for (const ring of rings) {
    for (let i = 1; i < ring.length; i += 1) {
      const q = nearestOnSegment(p, ring[i - 1], ring[i], mx, my);
      const d = dist(p, q);
      if (d <= edgeD) {
        best = q;
        edgeD = d;
      }
    }
  }
  return best;
}

function nearestOnSegment(p, a, b, mx, my) {
  const ax = a[0] * mx;
  const ay = a[1] * my;
  const dx = b[0] * mx - ax;
  const dy = b[1] * my - ay;
  const len2 = dx * dx + dy * dy;
  const t = len2 > 0 ? Math.max(0, Math.min(1, ((p[0] * mx - ax) * dx + (p[1] * my - ay) * dy) / len2)) : 0;
  return [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
}

/**
 * The edge two grids share, as the longest run of consecutive vertices of `ringA` that
 * are vertices of `ringB` too (the server keeps shared vertices identical); null when
 * they share fewer than two vertices.
 *
 * @param {Array<[number, number]>} ringA closed ring (first = last)
 * @param {Array<[number, number]>} ringB
 * @returns {Array<[number, number]>|null}
 */
export function sharedEdge(ringA, ringB) {
  const key = (c) => `${c[0]},${c[1]}`;
  const inB = new Set(ringB.map(key));
  const pts = ringA.slice(0, -1);
  const n = pts.length;
  const on = pts.map((c) => inB.has(key(c)));
  if (on.every(Boolean) || n < 2) return null;
  // start the walk just after a vertex that is not shared, so runs do not wrap
  const start = on.indexOf(false);
  let best = [];
  let run = [];
  for (let k = 1; k <= n; k += 1) {
    const i = (start + k) % n;
    if (on[i]) run.push(pts[i]);
    else {
      if (run.length > best.length) best = run;
      run = [];
    }
  }
  if (run.length > best.length) best = run;
  return best.length >= 2 ? best : null;
}

/**
 * The rings of the grids with the given codes, from a FeatureCollection with `code`
 * properties.
 */
export function ringsOfCodes(fc, codes) {
  const wanted = new Set(codes);
  return ringsOf({ features: ((fc && fc.features) || []).filter((f) => wanted.has((f.properties || {}).code)) });
}
