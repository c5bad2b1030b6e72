// The planner mode: the plans (GET/POST /plans), one open plan drawn on the map with its
// metrics before and after and its diff, the edit tools (merge, split, move edge,
// reassign, rename; POST /plans/{id}/edits), auto-partition, undo, redo and publish.
import { request, postJson, apiPath, token, setToken } from "./api.js";
import { el, byId } from "./dom.js";
import { formatValue } from "./format.js";
import { t, hasLabel } from "./i18n.js";
import { getMap, featureAt, bboxOf, EMPTY_FC } from "./map-layers.js";
import {
  EDIT_TOOLS, DRAW_CLICKS, drawnGeometry, editParams, togglePicked, commonPrefix,
} from "./plan-edits.js";
import { S, levelName, levels, metricLabel } from "./state.js";
import { render } from "./view.js";

const DRAW_LABEL = { line: "draw_line", polyline: "draw_polyline", polygon: "draw_polygon", rect: "draw_rect" };
// the impact totals shown first, in this order (others follow)
const IMPACT_KEYS = ["grids", "households", "population", "incidents", "load_index", "max_min_ratio", "cv",
  "mean_polsby_popper", "non_contiguous", "area_m2"];

function plannerState() {
  if (!S.plan) {
    S.plan = { list: [], current: null, prefix: null, kind: "merge", picked: [], shape: null,
      drawing: false, drawPts: [], form: { name: "", code: "" }, msg: null, impact: null, diff: null };
  }
  return S.plan;
}

const pickedCodes = () => plannerState().picked.filter(Boolean);
const currentParams = (P) => editParams(P.kind, P.picked, drawnGeometry(P.shape, P.drawPts), P.form);
const label = (key) => (hasLabel(key) ? t(key) : metricLabel(key));

function resetEdit() {
  const P = plannerState();
  P.picked = [];
  P.shape = null;
  P.drawing = false;
  P.drawPts = [];
  P.form = { name: "", code: "" };
  if (getMap() && getMap().getSource("draw")) drawSketch();
}

/** Load the list of plans and draw the planner panel. */
export async function renderPlanner() {
  const P = plannerState();
  try {
    P.list = await request("/plans");
  } catch (e) {
    byId("panel-planner").replaceChildren(el("h2", {}, t("plans")), el("p", { class: "err" }, e.message));
    return;
  }
  drawPlanner();
}

/** Draw the planner panel from its state. */
export function drawPlanner() {
  const P = plannerState();
  const tokenInput = el("input", { type: "password", value: token(), placeholder: t("token"),
    onchange: (e) => setToken(e.target.value.trim()) });
  const community = levels()[levels().length - 2];
  const sel = S.selected && S.selected.level === community ? S.selected.code : "";
  const commInput = el("input", { type: "text", id: "plan-community", value: sel, placeholder: t("community_code") });
  const nameInput = el("input", { type: "text", id: "plan-name", placeholder: t("plan_name") });
  const list = el("ul", { class: "plans", id: "plan-list" }, P.list.map((p) => el("li",
    { class: P.current && P.current.id === p.id ? "active" : "" },
    el("span", {}, `#${p.id} ${p.name} · ${(p.community_codes || []).join(", ")} · ${p.status || ""}`),
    el("button", { class: "btn", type: "button", "data-plan": p.id, onclick: () => openPlan(p.id) }, t("open")))));
  if (!P.list.length) list.append(el("li", {}, t("none")));
  const parts = [
    el("h2", {}, t("plans")),
    el("div", { class: "row-form" }, el("span", {}, t("token")), tokenInput),
    list,
    el("h3", {}, t("new_plan")),
    el("div", { class: "row-form" }, nameInput),
    el("div", { class: "row-form" }, commInput, el("button", { class: "btn primary", type: "button",
      onclick: () => createPlan(nameInput.value, commInput.value) }, t("create"))),
  ];
  if (P.msg) parts.push(el("p", { class: P.msg.err ? "err" : "ok", id: "plan-msg" }, P.msg.text));
  if (P.current) parts.push(...currentPlanSection(P));
  byId("panel-planner").replaceChildren(...parts);
}

function planMsg(text, err) {
  plannerState().msg = text ? { text, err: !!err } : null;
  drawPlanner();
}

async function createPlan(name, communities) {
  const codes = communities.split(/[\s,]+/).filter(Boolean);
  try {
    const p = await postJson("/plans", { name: name || `plan ${codes.join(",")}`, communities: codes });
    await renderPlanner();
    await openPlan(p.id);
  } catch (e) {
    planMsg(e.message, true);
  }
}

/** Open plan `id`: draw its grids, load its impact and diff, frame it. */
export async function openPlan(id) {
  const P = plannerState();
  const map = getMap();
  resetEdit();
  P.msg = { text: t("loading"), err: false };
  drawPlanner();
  try {
    const plan = await request(apiPath(["plans", String(id)]));
    P.current = plan;
    P.prefix = commonPrefix(plan.community_codes || []);
    const grids = plan.grids && plan.grids.type === "FeatureCollection" ? plan.grids : EMPTY_FC;
    map.getSource("plan").setData(grids);
    const failed = (e) => ({ error: e.message });
    [P.impact, P.diff] = await Promise.all([
      request(apiPath(["plans", String(id), "impact"])).catch(failed),
      request(apiPath(["plans", String(id), "diff"])).catch(failed),
    ]);
    paintDiff();
    P.msg = null;
    const b = bboxOf(grids);
    if (b) map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { padding: 60, maxZoom: 17 });
  } catch (e) {
    P.msg = { text: e.message, err: true };
  }
  render();
  drawPlanner();
}

function paintDiff() {
  const P = plannerState();
  const map = getMap();
  map.removeFeatureState({ source: "plan" });
  for (const r of (P.diff && P.diff.grids) || []) {
    if (r.change !== "removed") map.setFeatureState({ source: "plan", id: r.code }, { change: r.change });
  }
  for (const code of pickedCodes()) map.setFeatureState({ source: "plan", id: code }, { picked: true });
  map.setFilter("plan-picked", ["in", ["get", "code"], ["literal", pickedCodes()]]);
}

// the plan's grids, sorted by code: [{code, name}]
function planGrids() {
  const fc = (plannerState().current || {}).grids || EMPTY_FC;
  return (fc.features || []).map((f) => ({ code: f.properties.code, name: f.properties.name }))
    .sort((a, b) => (a.code < b.code ? -1 : 1));
}

function currentPlanSection(P) {
  const plan = P.current;
  return [
    el("h3", {}, `${t("plan")} #${plan.id} ${plan.name} · ${plan.status || ""}`),
    el("div", { class: "row-form" },
      el("button", { class: "btn", type: "button", id: "btn-undo", onclick: () => planAction("undo") }, t("undo")),
      el("button", { class: "btn", type: "button", id: "btn-redo", onclick: () => planAction("redo") }, t("redo")),
      el("button", { class: "btn primary", type: "button",
        onclick: () => { if (confirm(t("publish_confirm"))) planAction("publish"); } }, t("publish"))),
    ...autopartitionForm(plan),
    el("h3", {}, t("edit")), ...editForm(P),
    el("h3", {}, t("plan_metrics")), impactTable(P.impact),
    el("h3", {}, t("diff")), diffSection(P.diff),
  ];
}

function autopartitionForm(plan) {
  const comms = plan.community_codes || [];
  const nInput = el("input", { type: "number", min: 1, id: "auto-n", placeholder: t("target_n") });
  const targetInput = el("input", { type: "number", min: 1, id: "auto-target", placeholder: t("target_load") });
  const commSelect = el("select", { id: "auto-community" },
    comms.length > 1 ? el("option", { value: "" }, t("all_communities")) : null,
    comms.map((c) => el("option", { value: c }, c)));
  const run = () => autopartition(commSelect.value, nInput.value, targetInput.value);
  return [
    el("div", { class: "row-form" }, el("span", {}, t("autopartition")), comms.length > 1 ? commSelect : null),
    el("div", { class: "row-form" }, nInput, targetInput,
      el("button", { class: "btn", type: "button", id: "btn-auto", onclick: run }, t("run"))),
  ];
}

// the edit tools: a kind bar, the grid slots, the drawing buttons, the kind's own inputs
// and its button (enabled once the edit has what it needs)
function editForm(P) {
  const tool = EDIT_TOOLS[P.kind];
  const kinds = el("div", { class: "seg", id: "edit-kinds", role: "tablist" },
    Object.keys(EDIT_TOOLS).map((k) => el("button", { type: "button", role: "tab",
      class: k === P.kind ? "on" : "", "data-kind": k, onclick: () => setEditKind(k) }, t(k))));
  const grids = planGrids();
  const slots = tool.slots.map((slot, i) => el("label", { class: "slot" }, el("span", {}, t(slot)),
    el("select", { id: `slot-${i}`, onchange: (e) => setSlot(i, e.target.value) },
      el("option", { value: "" }, t("choose")),
      grids.map((g) => el("option", { value: g.code, selected: P.picked[i] === g.code ? "selected" : null },
        `${g.code.slice(-3)} ${g.name || ""}`)))));
  const out = [kinds, el("p", { class: "hint" }, t(P.kind + "_hint")), el("div", { class: "slots" }, slots),
    el("div", { class: "row-form" },
      el("span", {}, `${t("selected_grids")}: `, el("b", { id: "picked" }, pickedCodes().join(", ") || t("none"))),
      el("button", { class: "btn", type: "button", onclick: () => { resetEdit(); paintDiff(); drawPlanner(); } },
        t("clear")))];
  if (tool.draw.length) {
    out.push(el("div", { class: "row-form" },
      tool.draw.map((shape) => el("button", { type: "button", id: `btn-draw-${shape}`,
        class: "btn" + (P.drawing && P.shape === shape ? " on" : ""), onclick: () => startDrawing(shape) },
      t(DRAW_LABEL[shape]))),
      el("span", { class: "hint", id: "draw-status" },
        P.drawing ? t("drawing") : P.drawPts.length ? `${t("points_drawn")}: ${P.drawPts.length}` : "")));
  }
  if (P.kind === "rename") {
    const current = grids.find((g) => g.code === P.picked[0]);
    const input = (id, key, ph) => el("input", { type: "text", id, value: P.form[key], placeholder: ph,
      oninput: (e) => { P.form[key] = e.target.value; updateApply(); } });
    out.push(el("div", { class: "row-form" }, input("rename-name", "name", current ? current.name : t("new_name"))),
      el("div", { class: "row-form" }, input("rename-code", "code", t("new_code"))));
  }
  out.push(el("div", { class: "row-form" },
    el("button", { class: "btn primary", type: "button", id: `btn-${P.kind.replace("_", "-")}`,
      disabled: currentParams(P) ? null : "disabled", onclick: applyEdit }, t(P.kind))));
  return out;
}

function setEditKind(kind) {
  const P = plannerState();
  const keep = pickedCodes().slice(0, EDIT_TOOLS[kind].slots.length);
  resetEdit();
  P.kind = kind;
  P.picked = keep;
  paintDiff();
  drawPlanner();
}

function setSlot(i, code) {
  const P = plannerState();
  const picked = EDIT_TOOLS[P.kind].slots.map((_, k) => P.picked[k] || "");
  picked[i] = code;
  P.picked = picked;
  paintDiff();
  drawPlanner();
}

function startDrawing(shape) {
  const P = plannerState();
  P.shape = shape;
  P.drawing = true;
  P.drawPts = [];
  drawSketch();
  drawPlanner();
}

function stopDrawing() {
  const P = plannerState();
  if (!P.drawing) return;
  P.drawing = false;
  drawSketch();
  drawPlanner();
}

function updateApply() {
  const P = plannerState();
  const btn = byId(`btn-${P.kind.replace("_", "-")}`);
  if (btn) btn.disabled = !currentParams(P);
}

function applyEdit() {
  const P = plannerState();
  if (P.drawing) stopDrawing();
  const params = currentParams(P);
  if (params) planEdit(P.kind, params);
}

function impactTable(imp) {
  if (!imp) return el("p", { class: "hint" }, t("none"));
  if (imp.error) return el("p", { class: "err" }, imp.error);
  const a = (imp.published && imp.published.totals) || {};
  const b = (imp.plan && imp.plan.totals) || {};
  const keys = IMPACT_KEYS.filter((k) => k in a || k in b)
    .concat(Object.keys(b).filter((k) => !IMPACT_KEYS.includes(k)));
  const tbody = el("tbody");
  for (const k of keys) {
    tbody.append(el("tr", {}, el("th", {}, label(k)), el("td", {}, formatValue(a[k], k)),
      el("td", {}, formatValue(b[k], k))));
  }
  const totals = el("table", { class: "grid", id: "plan-metrics" },
    el("thead", {}, el("tr", {}, el("th", {}, t("metric")), el("th", {}, t("before")), el("th", {}, t("after")))),
    tbody);
  const grid = levels()[levels().length - 1];
  const pb = el("tbody");
  for (const g of (imp.plan && imp.plan.grids) || []) {
    pb.append(el("tr", {}, el("td", { title: g.name }, g.code), el("td", {}, formatValue(g.households)),
      el("td", {}, formatValue(g.incidents)), el("td", {}, formatValue(g.load_index))));
  }
  const per = el("table", { class: "grid", id: "plan-grids" },
    el("thead", {}, el("tr", {}, el("th", {}, levelName(grid)), el("th", {}, label("households")),
      el("th", {}, label("incidents")), el("th", {}, label("load_index")))),
    pb);
  return el("div", {}, totals, el("p", { class: "hint" }, t("after")), per);
}

function diffSection(d) {
  if (!d) return el("p", { class: "hint" }, t("none"));
  if (d.error) return el("p", { class: "err" }, d.error);
  const rows = d.grids || [];
  if (!rows.length) return el("p", { class: "hint", id: "plan-diff" }, t("none"));
  const cls = { new: "add", removed: "del", changed: "mod" };
  const name = { new: t("added"), removed: t("removed"), changed: t("modified") };
  const chips = el("div", { class: "chips", id: "plan-diff" },
    rows.map((r) => el("span", { class: cls[r.change] || "", title: r.name }, `${name[r.change] || r.change} ${r.code}`)));
  const extra = d.incidents ? el("p", { class: "hint" }, `${label("incidents")}: ${d.incidents.count}`) : null;
  return el("div", {}, chips, extra);
}

async function planAction(what) {
  const P = plannerState();
  try {
    await postJson(apiPath(["plans", String(P.current.id), what]));
    await openPlan(P.current.id);
    planMsg(`${t(what)} · ${t("done")}`);
  } catch (e) {
    planMsg(e.message, true);
  }
}

async function planEdit(kind, params) {
  const P = plannerState();
  try {
    await postJson(apiPath(["plans", String(P.current.id), "edits"]), { kind, params });
    await openPlan(P.current.id);
    planMsg(`${t(kind)} · ${t("done")}`);
  } catch (e) {
    planMsg(e.message, true);
  }
}

async function autopartition(community, n, target) {
  const P = plannerState();
  planMsg(t("loading"));
  try {
    const body = { communities: community ? [community] : null };
    if (n) body.n = Number(n);
    else if (target) body.target = Number(target);
    const res = await postJson(apiPath(["plans", String(P.current.id), "autopartition"]), body);
    await openPlan(P.current.id);
    const balance = Object.entries((res && res.balance) || {}).map(([c, b]) =>
      `${c}: ${b.n} · ${label("max_min_ratio")} ${formatValue(b.max_min_ratio)} · CV ${formatValue(b.cv)}`);
    planMsg([`${t("autopartition")} · ${t("done")}`, ...balance].join("；"));
  } catch (e) {
    planMsg(e.message, true);
  }
}

// the sketch on the map: the clicked points, and the line or polygon they make
function drawSketch() {
  const P = plannerState();
  const feats = P.drawPts.map((c) => ({ type: "Feature", properties: {}, geometry: { type: "Point", coordinates: c } }));
  let shape = null;
  if (P.shape === "polygon" || P.shape === "rect") shape = drawnGeometry(P.shape, P.drawPts);
  if (!shape && P.drawPts.length >= 2) shape = { type: "LineString", coordinates: P.drawPts };
  if (shape) feats.push({ type: "Feature", properties: {}, geometry: shape });
  getMap().getSource("draw").setData({ type: "FeatureCollection", features: feats });
}

/** A click on the map in the planner mode: a point of the drawing, else pick a grid. */
export function plannerClick(e) {
  const P = plannerState();
  if (!P.current) return;
  if (P.drawing) {
    P.drawPts.push([e.lngLat.lng, e.lngLat.lat]);
    const ends = DRAW_CLICKS[P.shape];
    if (ends && P.drawPts.length >= ends) P.drawing = false;
    drawSketch();
    drawPlanner();
    return;
  }
  const f = featureAt(e.point, ["plan-fill"]);
  if (!f) return;
  P.picked = togglePicked(P.picked, EDIT_TOOLS[P.kind].slots.length, f.properties.code);
  paintDiff();
  drawPlanner();
}

/** Escape cancels a drawing. */
export function plannerKey(e) {
  if (e.key !== "Escape" || S.mode !== "planner" || !S.plan || !S.plan.drawing) return;
  S.plan.drawPts = [];
  stopDrawing();
}

/** Whether the planner is drawing (the cursor is a crosshair). */
export const plannerDrawing = () => !!(S.plan && S.plan.drawing);
