// The grid map of the phone app: MapLibre (vendored, /static/vendor/maplibre-gl) over the
// cached grid boundary and buildings only — nothing from the network. One map, moved into
// the view that needs it (the report form: tap to set the position; the patrol: the track).
const EMPTY = { type: "FeatureCollection", features: [] };
let map = null;
let clickFn = null;
let loaded = false;
const pending = {};

function setData(id, data) {
  pending[id] = data;
  if (loaded && map.getSource(id)) map.getSource(id).setData(data || EMPTY);
}

function bounds(fc) {
  let b = null;
  const walk = (c) => {
    if (typeof c[0] === "number") {
      b = b ? [Math.min(b[0], c[0]), Math.min(b[1], c[1]), Math.max(b[2], c[0]), Math.max(b[3], c[1])] : [c[0], c[1], c[0], c[1]];
    } else c.forEach(walk);
  };
  for (const f of (fc && fc.features) || []) if (f.geometry) walk(f.geometry.coordinates);
  return b;
}

/**
 * Show the map in `container` (created on first use).
 *
 * @param {HTMLElement} container
 * @param {{center: number[], zoom: number}} view the city's default view
 * @param {{grids?: object, buildings?: object}} cache
 */
export function showMap(container, view, cache) {
  const maplibregl = window.maplibregl;
  if (!maplibregl) return null;
  if (!map) {
    const div = document.createElement("div");
    div.id = "gridmap";
    container.append(div);
    try {
      map = new maplibregl.Map({
        container: div,
        style: { version: 8, sources: {}, layers: [
          { id: "bg", type: "background", paint: { "background-color": "#eef2f6" } }] },
        center: view.center || [0, 0],
        zoom: view.zoom || 12,
        maxZoom: 19,
        dragRotate: false,
        pitchWithRotate: false,
        attributionControl: false,
      });
    } catch (e) { // no WebGL: the form works without the map
      console.warn("map", e);
      div.remove();
      return null;
    }
    map.touchZoomRotate.disableRotation();
    map.on("load", () => {
      for (const id of ["grids", "buildings", "track", "pick"]) map.addSource(id, { type: "geojson", data: pending[id] || EMPTY });
      map.addLayer({ id: "grid-fill", type: "fill", source: "grids", paint: { "fill-color": "#2563eb", "fill-opacity": 0.06 } });
      map.addLayer({ id: "grid-line", type: "line", source: "grids", paint: { "line-color": "#2563eb", "line-width": 2 } });
      map.addLayer({ id: "bld", type: "circle", source: "buildings",
        paint: { "circle-radius": 3, "circle-color": "#64748b" } });
      map.addLayer({ id: "track", type: "line", source: "track", paint: { "line-color": "#dc2626", "line-width": 3 } });
      map.addLayer({ id: "pick", type: "circle", source: "pick",
        paint: { "circle-radius": 7, "circle-color": "#f59e0b", "circle-stroke-color": "#fff", "circle-stroke-width": 2 } });
      loaded = true;
      const b = bounds(pending.grids);
      if (b) map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 20, duration: 0 });
    });
    map.on("click", (e) => clickFn && clickFn(e.lngLat.lng, e.lngLat.lat));
  } else if (map.getContainer().parentNode !== container) {
    container.append(map.getContainer());
  }
  setData("grids", cache.grids || EMPTY);
  setData("buildings", cache.buildings || EMPTY);
  requestAnimationFrame(() => map && map.resize());
  return map;
}

/** Call `fn(lon, lat)` on a tap (null: none). */
export function onTap(fn) {
  clickFn = fn;
}

/** Mark the picked point (null clears it). */
export function setPick(lon, lat) {
  setData("pick", lon === null ? EMPTY : { type: "Feature", properties: {}, geometry: { type: "Point", coordinates: [lon, lat] } });
}

/** Draw the patrol track ([[lon, lat, ...], ...]). */
export function setTrack(points) {
  setData("track", points && points.length > 1
    ? { type: "Feature", properties: {}, geometry: { type: "LineString", coordinates: points.map((p) => [p[0], p[1]]) } }
    : EMPTY);
}

/** The map (the browser test's hook), null before it is shown. */
export const getMap = () => map;
