// The legend (the choropleth's classes, hot spots, incidents, heat) and the breadcrumb.
import { legendClasses, classLabel, PALETTE, NO_DATA } from "./classes.js";
import { el, byId, emit } from "./dom.js";
import { formatBound } from "./format.js";
import { t } from "./i18n.js";
import { HOT_COLORS } from "./map-layers.js";
import { S, cityName, displayLevel, levelName, metricLabel } from "./state.js";

function legendRow(color, label, { border = null, round = false } = {}) {
  const style = `background:${color};${border ? `border:2px solid ${border};` : ""}` +
    `${round ? "border-radius:50%;width:12px;" : ""}`;
  return el("div", { class: "row" }, el("span", { class: "sw", style }), el("span", {}, label));
}

const sep = () => el("div", { class: "sep" });

function plannerLegend() {
  return [
    el("h4", {}, t("plan")),
    legendRow("#fb923c", t("plan_grids")),
    legendRow("#22c55e", t("added")),
    legendRow("#facc15", t("modified")),
    legendRow("rgba(0,0,0,0)", t("published_grids"), { border: "#475569" }),
  ];
}

function mapLegend() {
  const parts = [];
  if (S.show.choropleth) {
    parts.push(el("h4", {}, `${metricLabel(S.metric)} · ${levelName(displayLevel())}`));
    const fmt = (v) => formatBound(v, S.metric);
    const classes = S.classes ? legendClasses(S.classes) : [];
    if (classes.length) for (const c of classes) parts.push(legendRow(c.color, classLabel(c, fmt)));
    else if (!S.classes) parts.push(legendRow(PALETTE[2], t("loading")));
    parts.push(legendRow(NO_DATA, t("no_data")));
  }
  if (S.show.hot && S.hot) {
    // a legend of its own: the diverging red–blue of Gi*, outlines over a choropleth
    const outline = S.show.choropleth;
    const hot = [el("h4", {}, t("hot_legend"))];
    for (const [k, c] of Object.entries(HOT_COLORS)) {
      const n = S.hot.classes ? S.hot.classes[k] || 0 : null;
      const label = `${t(k)}${n !== null ? ` (${n})` : ""}`;
      hot.push(outline ? legendRow("#ffffff", label, { border: c }) : legendRow(c, label));
    }
    if (outline) hot.push(el("p", { class: "note" }, t("hot_outline_note")));
    parts.push(sep(), el("div", { id: "legend-hot", class: outline ? "outline" : "fill" }, hot));
  }
  if (S.show.incidents) {
    parts.push(sep(), el("h4", {}, t("layer_incidents")),
      legendRow("#dc2626", t("open_backlog"), { round: true }),
      legendRow("#64748b", t("incident"), { round: true }),
      legendRow("#6d28d9", t("cluster"), { round: true }));
  }
  if (S.show.heat) {
    parts.push(sep(), el("h4", {}, t("layer_heat")), el("div", { class: "row" }, el("span", {
      class: "sw", style: "width:100px;background:linear-gradient(90deg,rgba(255,255,178,.6),#fd8d3c,#bd0026)",
    })));
  }
  while (parts.length && parts[0].className === "sep") parts.shift();
  return parts;
}

/** Draw the legend of the current state. */
export function renderLegend() {
  const box = byId("legend");
  const parts = S.mode === "planner" ? plannerLegend() : mapLegend();
  box.replaceChildren(...parts);
  box.hidden = !parts.length;
}

/** Draw the breadcrumb of the drill path; its links emit "up" with the depth to go back to. */
export function renderBreadcrumb() {
  const up = (depth) => () => emit("up", depth);
  const city = cityName();
  const items = [el("li", {}, S.path.length ? el("a", { onclick: up(0) }, city) : city)];
  S.path.forEach((p, i) => {
    const last = i === S.path.length - 1;
    items.push(el("li", { "data-code": p.code }, last ? p.name : el("a", { onclick: up(i + 1) }, p.name)));
  });
  byId("breadcrumb").replaceChildren(...items);
}
