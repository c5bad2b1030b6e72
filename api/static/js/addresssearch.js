// The address search box (issue 15): a building's name or address, a household's address
// (staff, their units) or a unit's name → GET /registry/geocode (offline: the registry's
// own addresses) → a list of matches; choosing one flies the map there and marks the
// point. Units go through the unit search's "goto-code" (drill and select).
//
// Importing the module binds the box (#addr-input, #addr-results in index.html).
import { request, apiPath } from "./api.js";
import { el, byId, emit, bindSuggestions } from "./dom.js";
import { t } from "./i18n.js";
import { getMap, fitBounds } from "./map-layers.js";
import { maplibregl } from "./maplibre.js";

const LIMIT = 10;
const DELAY_MS = 250;
/** the zoom a point match is shown at */
export const POINT_ZOOM = 17;

/**
 * The lines of a match in the list: its name (or address) and what it is.
 *
 * @param {{kind: string, name: ?string, address: ?string}} m
 * @param {(key: string) => string} label
 * @returns {{title: string, detail: string}}
 */
export function matchLines(m, label) {
  const title = m.name || m.address || "";
  const detail = [label("addr_kind_" + m.kind), m.name && m.address ? m.address : ""]
    .filter(Boolean).join(" · ");
  return { title, detail };
}

/**
 * Where the map goes for a match: its box when it has one, else its point at POINT_ZOOM.
 *
 * @param {{lon: ?number, lat: ?number, bbox: ?number[]}} m
 * @returns {{bbox: number[]}|{center: number[], zoom: number}|null}
 */
export function target(m) {
  if (m.bbox && m.bbox.length === 4 && m.bbox[0] < m.bbox[2]) return { bbox: m.bbox };
  if (m.lon !== null && m.lon !== undefined && m.lat !== null && m.lat !== undefined) {
    return { center: [m.lon, m.lat], zoom: POINT_ZOOM };
  }
  return null;
}

let asked = "";
let marker = null;

function show(matches) {
  const list = byId("addr-results");
  list.replaceChildren(...(matches.length ? matches.map((m, i) => {
    const { title, detail } = matchLines(m, t);
    return el("li", { role: "option", tabindex: "-1", id: `addr-opt-${i}`, "data-kind": m.kind,
      onmousedown: (e) => { e.preventDefault(); choose(m); } },
    el("b", {}, title), el("span", { class: "where" }, detail));
  }) : [el("li", { class: "none" }, t("search_none"))]));
  list.hidden = false;
  list.matches = matches;
}

/** Fly to a match (a unit: through the unit search's drill-down). */
export async function choose(m) {
  byId("addr-results").hidden = true;
  byId("addr-input").value = m.name || m.address || "";
  if (m.kind === "unit") {
    emit("goto-code", m.code);
    return;
  }
  const map = getMap();
  const to = target(m);
  if (!map || !to) return;
  if (marker) marker.remove();
  if (m.lon !== null && m.lon !== undefined) {
    marker = new maplibregl.Marker({ color: "#d9480f" }).setLngLat([m.lon, m.lat]).addTo(map);
  }
  if (to.bbox) await fitBounds(to.bbox);
  else map.flyTo({ center: to.center, zoom: to.zoom, essential: true });
}

async function search(q) {
  asked = q;
  try {
    const matches = await request(apiPath(["registry", "geocode"], { q, limit: LIMIT }));
    if (asked === q) show(matches);
  } catch (e) {
    console.warn("address search", e);
  }
}

/** Bind the address box (#addr-input, #addr-results); nothing when the page has none. */
export function bindAddressSearch() {
  const input = byId("addr-input");
  const list = byId("addr-results");
  if (!input || !list) return;
  bindSuggestions(input, list, { search, choose, delayMs: DELAY_MS });
}

if (typeof document !== "undefined") bindAddressSearch();
