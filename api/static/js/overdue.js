// The overdue incidents of a unit (GET /incidents/overdue, needs a bearer token): sorted
// and paged, each with its grid's full name, street and community, its due time in the
// city's zone, how long it is overdue (days and hours) and a link that flies the map to
// its grid (emits "goto-code").
import { request, apiPath, token, setToken, authHeaders, signedIn } from "./api.js";
import { metricRows } from "./data.js";
import { el, emit } from "./dom.js";
import { formatOverdue, localDateTime } from "./format.js";
import { t, lang } from "./i18n.js";
import { SORTS, sortRows, pageOf, serverPage, placeOf } from "./overdue-rows.js";
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
  let rows = [];        // the rows shown (a server page), or all rows (a server without paging)
  let offset = 0;
  let paged = true;     // the server pages (limit/offset/sort); else the page sorts and pages
  let nameOf = () => undefined;
  const show = () => {
    const page = paged ? serverPage(rows.length, offset, PAGE) : pageOf(rows.length, offset, PAGE);
    const shown = paged ? rows : sortRows(rows, sortSel.value).slice(offset, offset + PAGE);
    const go = (to) => () => {
      offset = Math.max(0, to);
      if (paged) fetchPage();
      else show();
    };
    const nav = el("div", { class: "ov-tools" },
      el("button", { class: "btn", type: "button", id: "overdue-prev", disabled: !page.prev,
        onclick: go(offset - PAGE) }, t("prev_page")),
      el("span", { id: "overdue-page" }, t(page.total === null ? "page_rows" : "page_of", page)),
      el("button", { class: "btn", type: "button", id: "overdue-next", disabled: !page.next,
        onclick: go(offset + PAGE) }, t("next_page")));
    list.replaceChildren(table(shown, nameOf), nav);
  };
  const fetchPage = async () => {
    list.replaceChildren(el("p", { class: "hint" }, t("loading")));
    try {
      const query = { unit: unit && unit.code, sort: sortSel.value, limit: PAGE, offset };
      const [got, lookup] = await Promise.all([
        request(apiPath(["incidents", "overdue"], query), { headers: authHeaders() }), nameLookup()]);
      nameOf = lookup;
      // a server that does not page answers every row: sort and page them here
      paged = got.length <= PAGE;
      if (!paged) offset = 0;
      rows = got;
      if (!rows.length && offset === 0) {
        list.replaceChildren(el("p", { class: "hint" }, t("no_overdue")));
        return;
      }
      show();
    } catch (e) {
      list.replaceChildren(el("p", { class: "err" }, e.message));
    }
  };
  sortSel.addEventListener("change", () => {
    offset = 0;
    if (paged) fetchPage();
    else show();
  });
  const load = () => {
    setToken(input.value.trim());
    if (!token() && !signedIn()) {
      list.replaceChildren(el("p", { class: "hint" }, t("overdue_needs_token")));
      return;
    }
    offset = 0;
    fetchPage();
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
