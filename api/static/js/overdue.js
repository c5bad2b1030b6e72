// The overdue incidents of a unit (GET /incidents/overdue, needs a bearer token): sorted
// and paged, each with its grid's full name, street and community, its due time in the
// city's zone, how long it is overdue (days and hours) and a link that flies the map to
// its grid (emits "goto-code").
import { request, apiPath, token, setToken, authHeaders, signedIn } from "./api.js";
import { metricRows } from "./data.js";
import { el, emit } from "./dom.js";
import { formatOverdue, localDateTime } from "./format.js";
import { t, lang } from "./i18n.js";
import { SORTS, sortRows, pageOf, placeOf } from "./overdue-rows.js";
import { S, categoryName, levelName, levels } from "./state.js";

const PAGE = 20;

// a unit's name by code, from the metric rows of the grid, community and street levels
async function nameLookup() {
  const names = new Map();
  for (const level of levels().slice(1)) {
    try {
      for (const [code, r] of await metricRows(level)) names.set(code, r.name);
    } catch (e) {
      console.warn("names", e);
    }
  }
  return (code) => names.get(code);
}

function table(rows, nameOf) {
  const tz = S.config.city.timezone;
  const grid = levels()[levels().length - 1];
  const head = el("thead", {}, el("tr", {}, el("th", {}, "#"), el("th", {}, t("category")),
    el("th", {}, levelName(grid)), el("th", {}, t("due_at")), el("th", {}, t("overdue_by"))));
  const body = el("tbody");
  for (const r of rows) {
    const { grid: name, within } = placeOf(r, nameOf);
    const link = r.grid_code
      ? el("a", { title: t("fly_to"), "data-code": r.grid_code, onclick: () => emit("goto-code", r.grid_code) }, name)
      : name;
    body.append(el("tr", {}, el("td", {}, r.id), el("td", {}, categoryName(r.category)),
      el("td", { class: "where" }, link, el("small", {}, within)),
      el("td", {}, r.due_at_local || localDateTime(r.due_at, tz)),
      el("td", {}, formatOverdue(r.hours_overdue, lang()))));
  }
  return el("table", { class: "grid overdue" }, head, body);
}

/**
 * The section of the side panel listing the overdue incidents of `unit` (the city when
 * null): a token input, a load button, the sort order, the list and its pages (loaded at
 * once when a token is kept).
 *
 * @param {{code: string}|null} unit
 * @returns {HTMLElement[]}
 */
export function overdueSection(unit) {
  const list = el("div", { id: "overdue-list" });
  const input = el("input", { type: "password", value: token(), "data-i18n-ph": "token", placeholder: t("token") });
  const sortSel = el("select", { id: "overdue-sort", "aria-label": t("sort_by") },
    ...Object.keys(SORTS).map((k) => el("option", { value: k }, t("sort_" + k))));
  let rows = [];
  let offset = 0;
  let nameOf = () => undefined;
  const show = () => {
    const sorted = sortRows(rows, sortSel.value);
    const page = pageOf(sorted.length, offset, PAGE);
    const nav = el("div", { class: "ov-tools" },
      el("button", { class: "btn", type: "button", id: "overdue-prev", disabled: !page.prev,
        onclick: () => { offset = Math.max(0, offset - PAGE); show(); } }, t("prev_page")),
      el("span", { id: "overdue-page" }, t("page_of", page)),
      el("button", { class: "btn", type: "button", id: "overdue-next", disabled: !page.next,
        onclick: () => { offset += PAGE; show(); } }, t("next_page")));
    list.replaceChildren(table(sorted.slice(offset, offset + PAGE), nameOf), nav);
  };
  sortSel.addEventListener("change", () => { offset = 0; if (rows.length) show(); });
  const load = async () => {
    setToken(input.value.trim());
    if (!token() && !signedIn()) {
      list.replaceChildren(el("p", { class: "hint" }, t("overdue_needs_token")));
      return;
    }
    list.replaceChildren(el("p", { class: "hint" }, t("loading")));
    try {
      const [got, lookup] = await Promise.all([
        request(apiPath(["incidents", "overdue"], { unit: unit && unit.code }), { headers: authHeaders() }),
        nameLookup()]);
      rows = Array.isArray(got) ? got : got.items || [];
      nameOf = lookup;
      offset = 0;
      if (!rows.length) {
        list.replaceChildren(el("p", { class: "hint" }, t("no_overdue")));
        return;
      }
      show();
    } catch (e) {
      list.replaceChildren(el("p", { class: "err" }, e.message));
    }
  };
  list.append(el("p", { class: "hint" }, t("overdue_needs_token")));
  if (token() || signedIn()) setTimeout(load, 0);
  return [
    el("h3", {}, t("overdue_list")),
    el("div", { class: "row-form" }, input, el("button", { class: "btn", type: "button", onclick: load }, t("load"))),
    el("div", { class: "ov-tools" }, el("span", {}, t("sort_by")), sortSel),
    list,
  ];
}
