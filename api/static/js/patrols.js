// The "patrol tracks" overlay (issue 13): a leader (or an admin) picks a day and sees the
// grid workers' patrol tracks of that day on the map — GET /patrols?day=YYYY-MM-DD, a
// GeoJSON FeatureCollection of MultiLineStrings, scoped by the server (a worker sees their
// own, an admin their subtree, leaders the city, names masked for leaders).
//
// Importing the module adds its controls (a checkbox and a date picker) to the page's
// layer controls once the map and the city's configuration are ready; it needs no other
// change of the page.
import { request, apiPath } from "./api.js";
import { el, byId } from "./dom.js";
import { t } from "./i18n.js";
import { isoDate } from "./format.js";
import { getMap } from "./map-layers.js";
import { maplibregl } from "./maplibre.js";
import { S } from "./state.js";
import { coloured, trackLines } from "./patrol-tracks.js";

export const SOURCE = "patrols";
export const LAYER = "patrol-line";
const state = { on: false, day: "", data: { type: "FeatureCollection", features: [] } };

export const CASING = "patrol-casing";

function ensureLayer(map) {
  if (!map.getSource(SOURCE)) map.addSource(SOURCE, { type: "geojson", data: state.data });
  if (!map.getLayer(CASING)) {
    map.addLayer({
      id: CASING, type: "line", source: SOURCE,
      layout: { "line-join": "round", "line-cap": "round" },
      paint: { "line-color": "#ffffff", "line-width": 7, "line-opacity": 0.9 },
    });
  }
  if (!map.getLayer(LAYER)) {
    map.addLayer({
      id: LAYER, type: "line", source: SOURCE,
      layout: { "line-join": "round", "line-cap": "round" },
      paint: { "line-color": ["get", "colour"], "line-width": 4 },
    });
  }
}

function setVisible(map, on) {
  for (const id of [CASING, LAYER]) map.setLayoutProperty(id, "visibility", on ? "visible" : "none");
}

// the map adds its own layers as the view changes: keep the tracks on top
function toTop(map) {
  const layers = map.getStyle().layers;
  if (map.getLayer(LAYER) && layers[layers.length - 1].id !== LAYER) {
    map.moveLayer(CASING);
    map.moveLayer(LAYER);
  }
}

function setStatusText(text) {
  const s = byId("patrol-status");
  if (s) s.textContent = text;
}

/** Load the day's tracks and draw them (hidden when the overlay is off). */
export async function refresh() {
  const map = getMap();
  if (!map) return;
  ensureLayer(map);
  setVisible(map, state.on);
  toTop(map);
  if (!state.on || !state.day) return;
  try {
    const fc = await request(apiPath(["patrols"], { day: state.day }));
    state.data = coloured(fc);
    setStatusText(t("patrol_count", { n: state.data.features.length }));
  } catch (e) {
    state.data = { type: "FeatureCollection", features: [] };
    setStatusText(e.status === 401 ? t("patrol_sign_in") : `${t("error")}: ${e.message}`);
  }
  map.getSource(SOURCE).setData(state.data);
}

function bind() {
  const controls = byId("controls");
  const map = getMap();
  if (!controls || !map || !S.config || !map.isStyleLoaded()) return false;
  const tz = S.config.city.timezone;
  state.day = isoDate(new Date(), tz);
  const box = el("input", { type: "checkbox", id: "lyr-patrols" });
  const day = el("input", { type: "date", id: "patrol-day", value: state.day });
  const set = el("fieldset", { id: "patrol-controls" },
    el("legend", { "data-i18n": "patrol_tracks" }, t("patrol_tracks")),
    el("label", {}, box, " ", el("span", { "data-i18n": "patrol_show" }, t("patrol_show"))),
    el("label", {}, el("span", { "data-i18n": "patrol_day" }, t("patrol_day")), " ", day),
    el("small", { id: "patrol-status", role: "status" }));
  controls.append(set);
  box.addEventListener("change", () => {
    state.on = box.checked;
    refresh().catch((e) => console.warn("patrols", e));
  });
  day.addEventListener("change", () => {
    state.day = day.value;
    refresh().catch((e) => console.warn("patrols", e));
  });
  ensureLayer(map);
  setVisible(map, false);
  map.on("idle", () => { if (state.on) toTop(map); });
  map.on("click", LAYER, (e) => {
    const f = e.features && e.features[0];
    if (!f) return;
    const lines = trackLines(f.properties, t, tz);
    const body = el("div", {}, ...lines.flatMap((l, i) => (i ? [el("br"), l] : [el("b", {}, l)])));
    new maplibregl.Popup({ offset: 8 }).setLngLat(e.lngLat).setDOMContent(body).addTo(map);
  });
  map.on("mouseenter", LAYER, () => { map.getCanvas().style.cursor = "pointer"; });
  map.on("mouseleave", LAYER, () => { map.getCanvas().style.cursor = ""; });
  // a new style (the base map switched) drops our layer: add it back with its data
  map.on("styledata", () => {
    if (map.isStyleLoaded() && !map.getLayer(LAYER)) {
      ensureLayer(map);
      map.getSource(SOURCE).setData(state.data);
      setVisible(map, state.on);
    }
  });
  return true;
}

// the page builds the map after GET /config: bind when both are there
if (typeof document !== "undefined" && typeof window !== "undefined") {
  const timer = setInterval(() => {
    try {
      if (bind()) clearInterval(timer);
    } catch (e) {
      console.warn("patrols", e);
      clearInterval(timer);
    }
  }, 300);
}

// the hook of the browser tests
if (typeof window !== "undefined") window.geogridPatrols = { state, refresh };
