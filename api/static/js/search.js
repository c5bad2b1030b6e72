// The unit search box: a name or code (district to grid) → GET /units/search → a list of
// matches; choosing one emits "goto" with the match (the view flies the map there).
import { request, apiPath } from "./api.js";
import { el, byId, emit, bindSuggestions } from "./dom.js";
import { t } from "./i18n.js";
import { levelName } from "./state.js";

const LIMIT = 10;
const DELAY_MS = 200;

/**
 * The text of a match in the list: its name, then its level and ancestors.
 *
 * @param {{name: string, level: string, parent_names: string[]}} m
 * @param {(level: string) => string} levelLabel
 * @returns {{name: string, where: string}}
 */
export function matchText(m, levelLabel) {
  return { name: m.name, where: [levelLabel(m.level), ...m.parent_names].join(" · ") };
}

let asked = "";

function showMatches(matches) {
  const list = byId("search-results");
  list.replaceChildren(...(matches.length ? matches.map((m, i) => {
    const { name, where } = matchText(m, levelName);
    return el("li", { role: "option", "data-code": m.code, tabindex: "-1", id: `search-opt-${i}`,
      onmousedown: (e) => { e.preventDefault(); choose(m); } },
    el("b", {}, name), el("span", { class: "where" }, where), el("span", { class: "code" }, m.code));
  }) : [el("li", { class: "none" }, t("search_none"))]));
  list.hidden = false;
  list.matches = matches;
}

function choose(m) {
  byId("search-results").hidden = true;
  byId("search-input").value = m.name;
  emit("goto", m);
}

async function search(q) {
  asked = q;
  try {
    const matches = await request(apiPath(["units", "search"], { q, limit: LIMIT }));
    if (asked === q) showMatches(matches);
  } catch (e) {
    console.warn("search", e);
  }
}

/** Bind the search box (#search-input, #search-results). */
export function bindSearch() {
  const input = byId("search-input");
  const list = byId("search-results");
  bindSuggestions(input, list, { search, choose, delayMs: DELAY_MS });
}
