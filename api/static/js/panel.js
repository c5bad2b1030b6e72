// The side panel of the map mode: the selected unit (or the city), its metrics, weekly
// trend, the overdue ranking of the units shown and the overdue incidents. A unit clicked
// in the ranking emits "pick" with the unit.
import { request, apiPath } from "./api.js";
import { metricRows } from "./data.js";
import { el, byId, emit } from "./dom.js";
import { formatValue, localDate } from "./format.js";
import { t } from "./i18n.js";
import { overdueSection } from "./overdue.js";
import { S, cityName, displayLevel, levelName, labelVars, metricLabel } from "./state.js";

// metrics summed over the shown units for the city overview
const ADDITIVE = ["incidents", "open_backlog", "overdue", "population", "households", "area_m2",
  "previous_incidents"];
const RANK_SIZE = 10;

function unitMetrics(unit) {
  return { ...(unit.props || {}), ...(unit.row || {}) };
}

function cityTotals() {
  const out = {};
  const units = S.path.length === 0 ? S.units : [];
  for (const u of units) {
    for (const k of ADDITIVE) if (typeof u[k] === "number") out[k] = (out[k] || 0) + u[k];
  }
  return out;
}

function fillRanking(ol) {
  const units = S.units.filter((u) => typeof u.overdue === "number")
    .sort((a, b) => b.overdue - a.overdue || (b.incidents || 0) - (a.incidents || 0)).slice(0, RANK_SIZE);
  if (!units.length) {
    ol.append(el("li", {}, t("loading")));
    return;
  }
  const level = displayLevel();
  for (const u of units) {
    ol.append(el("li", { onclick: () => emit("pick", { level, code: u.code, name: u.name, props: u }) },
      el("span", {}, u.name), el("b", {}, formatValue(u.overdue))));
  }
}

function barChart(rows) {
  const W = 340, H = 90, pad = 16;
  const max = Math.max(1, ...rows.map((r) => r.incidents || 0));
  const bw = (W - 4) / Math.max(rows.length, 1);
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("role", "img");
  const mk = (tag, attrs, text) => {
    const e = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    svg.append(e);
    return e;
  };
  const day = (r) => localDate(r.period, S.config.city.timezone);
  rows.forEach((r, i) => {
    const h = ((r.incidents || 0) / max) * (H - 2 * pad);
    const rect = mk("rect", { x: 2 + i * bw + 0.5, y: H - pad - h, width: Math.max(bw - 1, 1), height: h,
      fill: i === rows.length - 1 ? "#e34a33" : "#fc8d59" });
    const title = document.createElementNS(ns, "title");
    title.textContent = `${day(r)}: ${r.incidents}`;
    rect.append(title);
  });
  mk("line", { x1: 0, x2: W, y1: H - pad, y2: H - pad, stroke: "#cbd5e1" });
  mk("text", { x: 2, y: 10, class: "axis" }, `max ${max}`);
  if (rows.length) {
    mk("text", { x: 2, y: H - 3, class: "axis" }, day(rows[0]));
    mk("text", { x: W - 2, y: H - 3, class: "axis", "text-anchor": "end" }, day(rows[rows.length - 1]));
  }
  return svg;
}

async function fillTrend(box, unit) {
  box.append(el("p", { class: "hint" }, t("trend_loading")));
  try {
    const body = await request(apiPath(["metrics", unit.level, unit.code, "trend"],
      { interval: "week", category: S.category }));
    box.replaceChildren(barChart(body.periods));
  } catch (e) {
    box.replaceChildren(el("p", { class: "err" }, e.message));
  }
}

/** Draw the panel for the current selection (then complete it with the unit's metric row). */
export async function renderPanel() {
  const sel = S.selected;
  const head = sel
    ? [el("h2", { id: "unit-name" }, sel.name),
      el("p", { class: "sub" }, `${levelName(sel.level)} · `, el("span", { id: "unit-code" }, sel.code))]
    : [el("h2", { id: "unit-name" }, cityName()), el("p", { class: "sub" }, t("selected_none"))];
  const m = sel ? unitMetrics(sel) : cityTotals();
  const fmt = (k) => formatValue(m[k], k);
  const big = el("div", { class: "big" },
    el("div", {}, el("b", { id: "m-incidents" }, fmt("incidents")), el("span", {}, metricLabel("incidents"))),
    el("div", {}, el("b", {}, fmt("open_backlog")), el("span", {}, metricLabel("open_backlog"))),
    el("div", { class: "warn" }, el("b", {}, fmt("overdue")), el("span", {}, metricLabel("overdue"))));
  const kv = el("table", { class: "kv", id: "unit-metrics" });
  for (const { key } of S.config.metrics) {
    if (m[key] === undefined) continue;
    kv.append(el("tr", {}, el("th", {}, metricLabel(key)), el("td", {}, fmt(key))));
  }
  const trend = el("div", { class: "trend", id: "trend" });
  const ranking = el("ol", { class: "rank", id: "overdue-rank" });
  const parts = [...head, big, kv];
  if (sel) parts.push(el("h3", {}, t("trend")), trend);
  parts.push(el("h3", {}, `${t("overdue_ranking")} · ${levelName(displayLevel())}`), ranking);
  parts.push(...overdueSection(sel));
  if (!sel) parts.push(el("p", { class: "hint" }, t("click_hint", labelVars())));
  byId("panel-map").replaceChildren(...parts);
  fillRanking(ranking);
  if (!sel) return;
  fillTrend(trend, sel);
  if (sel.row) return;
  try {
    const row = (await metricRows(sel.level)).get(sel.code);
    if (row && S.selected === sel) {
      sel.row = row;
      renderPanel();
    }
  } catch (e) {
    console.warn("metrics", e);
  }
}
