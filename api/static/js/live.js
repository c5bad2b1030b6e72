// The live map (issue 12): the leaders' map subscribes to GET /live/incidents
// (Server-Sent Events: PostgreSQL LISTEN/NOTIFY → the service → this page). Each new
// incident or status change shows a toast and a dot on the map at once, and the incident
// tiles are reloaded (coalesced: at most once a second); a bulk import reloads them too.
// The server scopes the events to the signed-in caller (session cookie; anonymous
// visitors get public fields only). EventSource reconnects by itself after a drop.
//
// Importing the module is enough: it binds itself once the map and the city's
// configuration are ready.
import { el } from "./dom.js";
import { t } from "./i18n.js";
import { getMap } from "./map-layers.js";
import { S, categoryName, statusLabel } from "./state.js";
import { addEvent, eventsToGeoJSON, toastText } from "./live-events.js";

export const SOURCE = "live";
export const LAYER = "live-dot";
const state = { events: [], source: null, received: 0, reloadTimer: null };

function ensureLayer(map) {
  if (!map.getSource(SOURCE)) {
    map.addSource(SOURCE, { type: "geojson", data: eventsToGeoJSON(state.events) });
  }
  if (!map.getLayer(LAYER)) {
    map.addLayer({
      id: LAYER, type: "circle", source: SOURCE,
      paint: {
        "circle-radius": 8, "circle-color": "#e11d48", "circle-opacity": 0.85,
        "circle-stroke-color": "#ffffff", "circle-stroke-width": 2,
      },
    });
  }
}

function toasts() {
  let box = document.getElementById("live-toasts");
  if (!box) {
    box = el("div", { id: "live-toasts", role: "status", "aria-live": "polite" });
    Object.assign(box.style, {
      position: "fixed", right: "12px", bottom: "12px", zIndex: 1000, display: "flex",
      flexDirection: "column", gap: "6px", maxWidth: "22rem",
    });
    document.body.append(box);
  }
  return box;
}

function toast(text) {
  const item = el("div", { class: "live-toast" }, text);
  Object.assign(item.style, {
    background: "#111827", color: "#fff", padding: "8px 12px", borderRadius: "6px",
    boxShadow: "0 2px 6px rgba(0,0,0,.3)", font: "14px/1.4 system-ui, sans-serif",
  });
  const box = toasts();
  box.append(item);
  while (box.children.length > 4) box.firstChild.remove();
  setTimeout(() => item.remove(), 6000);
}

// reload the incident tiles at most once a second (a burst of reports is one reload)
function reloadIncidents() {
  if (state.reloadTimer) return;
  state.reloadTimer = setTimeout(() => {
    state.reloadTimer = null;
    const map = getMap();
    const src = map && map.getSource("incidents");
    if (src && src.tiles) src.setTiles(src.tiles.slice());
  }, 1000);
}

function onEvent(kind, e) {
  let ev;
  try {
    ev = JSON.parse(e.data);
  } catch {
    return;
  }
  state.received += 1;
  const map = getMap();
  if (kind !== "bulk") {
    state.events = addEvent(state.events, { ...ev, kind });
    if (map && map.getSource(SOURCE)) map.getSource(SOURCE).setData(eventsToGeoJSON(state.events));
  }
  toast(toastText(kind, ev, t, categoryName, statusLabel));
  reloadIncidents();
}

/** Open the stream (once). */
export function connect() {
  if (state.source || typeof EventSource === "undefined") return state.source;
  const es = new EventSource("/live/incidents", { withCredentials: true });
  for (const kind of ["new", "status", "bulk"]) es.addEventListener(kind, (e) => onEvent(kind, e));
  es.addEventListener("ready", () => { state.ready = true; });
  state.source = es;
  return es;
}

function bind() {
  const map = getMap();
  if (!map || !S.config || !map.isStyleLoaded()) return false;
  ensureLayer(map);
  // a new style (the base map switched) drops our layer: add it back with its data
  map.on("styledata", () => {
    if (map.isStyleLoaded() && !map.getLayer(LAYER)) ensureLayer(map);
  });
  connect();
  return true;
}

if (typeof document !== "undefined" && typeof window !== "undefined") {
  const timer = setInterval(() => {
    try {
      if (bind()) clearInterval(timer);
    } catch (e) {
      console.warn("live", e);
      clearInterval(timer);
    }
  }, 300);
}

// the hook of the browser tests
if (typeof window !== "undefined") window.geogridLive = { state, connect };
