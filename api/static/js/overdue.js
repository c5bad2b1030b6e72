// The overdue incidents of a unit (GET /incidents/overdue, needs a bearer token).
import { request, apiPath, token, setToken, authHeaders } from "./api.js";
import { el } from "./dom.js";
import { t } from "./i18n.js";
import { categoryName, levelName, levels } from "./state.js";

const MAX_ROWS = 50;

/**
 * The section of the side panel listing the overdue incidents of `unit` (the city when
 * null): a token input, a load button and the list (loaded at once when a token is kept).
 *
 * @param {{code: string}|null} unit
 * @returns {HTMLElement[]}
 */
export function overdueSection(unit) {
  const list = el("div", { id: "overdue-list" });
  const input = el("input", { type: "password", value: token(), "data-i18n-ph": "token", placeholder: t("token") });
  const load = async () => {
    setToken(input.value.trim());
    if (!token()) {
      list.replaceChildren(el("p", { class: "hint" }, t("overdue_needs_token")));
      return;
    }
    list.replaceChildren(el("p", { class: "hint" }, t("loading")));
    try {
      const rows = await request(apiPath(["incidents", "overdue"], { unit: unit && unit.code }),
        { headers: authHeaders() });
      if (!rows.length) {
        list.replaceChildren(el("p", { class: "hint" }, t("no_overdue")));
        return;
      }
      const grid = levels()[levels().length - 1];
      const head = el("thead", {}, el("tr", {}, el("th", {}, "#"), el("th", {}, t("category")),
        el("th", {}, levelName(grid)), el("th", {}, t("hours_overdue"))));
      const body = el("tbody");
      rows.sort((a, b) => b.hours_overdue - a.hours_overdue).slice(0, MAX_ROWS).forEach((r) => {
        body.append(el("tr", {}, el("td", {}, r.id), el("td", {}, categoryName(r.category)),
          el("td", {}, (r.grid_code || "").slice(-6)), el("td", {}, Math.round(r.hours_overdue))));
      });
      list.replaceChildren(el("p", { class: "hint" }, `${rows.length} · ${t("overdue")}`),
        el("table", { class: "grid" }, head, body));
    } catch (e) {
      list.replaceChildren(el("p", { class: "err" }, e.message));
    }
  };
  list.append(el("p", { class: "hint" }, t("overdue_needs_token")));
  if (token()) setTimeout(load, 0);
  return [
    el("h3", {}, t("overdue_list")),
    el("div", { class: "row-form" }, input, el("button", { class: "btn", type: "button", onclick: load }, t("load"))),
    list,
  ];
}
