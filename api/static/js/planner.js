// The planner mode: the plans (GET/POST /plans), one open plan drawn on the map with its
// metrics before and after and its diff, the edit tools (merge, split, move edge,
// reassign, rename; POST /plans/{id}/edits), auto-partition, undo, redo, the staffing
// after the plan (GET/PUT /plans/{id}/staffing) and publish.
//
// Drawing: each click on the map is snapped to the plan's grid vertices (exactly) or edges
// within a tolerance in metres (plan-snap.js; the server snaps the same way). A finished
// drawing is handed to terra-draw (vendor/terra-draw, loaded on first use) so its vertices
// can be dragged (snapping too), and the shared edge of two grids can be loaded as a line
// to reshape by dragging. Without terra-draw the clicked drawing is used as it is.
import { request, postJson, apiPath, token, setToken, authHeaders } from "./api.js";
import { el, byId } from "./dom.js";
import { formatValue } from "./format.js";
import { t, hasLabel } from "./i18n.js";
import { getMap, featureAt, bboxOf, EMPTY_FC } from "./map-layers.js";
import {
  EDIT_TOOLS, DRAW_CLICKS, drawnGeometry, editParams, togglePicked, commonPrefix,
} from "./plan-edits.js";
import { ringsOf, ringsOfCodes, sharedEdge, snapPoint } from "./plan-snap.js";
import { S, levelName, levels, metricLabel } from "./state.js";
import { render } from "./view.js";

const DRAW_LABEL = { line: "draw_line", polyline: "draw_polyline", polygon: "draw_polygon", rect: "draw_rect" };
// the impact totals shown first, in this order (others follow)
const IMPACT_KEYS = ["grids", "households", "population", "incidents", "load_index", "max_min_ratio", "cv",
  "mean_polsby_popper", "non_contiguous", "area_m2"];

function plannerState() {
  if (!S.plan) {
    S.plan = { list: [], current: null, prefix: null, kind: "merge", picked: [], shape: null,
      drawing: false, drawPts: [], form: { name: "", code: "" }, msg: null, impact: null, diff: null,
      staffing: null, snapM: 1, drawn: null };
  }
  return S.plan;
}

const pickedCodes = () => plannerState().picked.filter(Boolean);
// the edit's params; split and move_edge carry the snapping tolerance (metres)
function currentParams(P) {
  const params = editParams(P.kind, P.picked, P.drawn || drawnGeometry(P.shape, P.drawPts), P.form);
  if (params && (P.kind === "split" || P.kind === "move_edge")) params.snap_m = Number(P.snapM) || 0;
  return params;
}
const label = (key) => (hasLabel(key) ? t(key) : metricLabel(key));

function resetEdit() {
  const P = plannerState();
  P.picked = [];
  P.shape = null;
  P.drawing = false;
  P.drawPts = [];
  P.form = { name: "", code: "" };
  P.drawn = null;
  TD.gen += 1;
  if (TD.draw) {
    TD.draw.clear();
    TD.draw.setMode("static");
  }
  if (getMap() && getMap().getSource("draw")) drawSketch();
}

// ---- terra-draw: loaded on first use from vendor/terra-draw (UMD builds, classic scripts)

// gen: bumped whenever the edit is reset, so a late hand-over to terra-draw is dropped
const TD = { loading: null, draw: null, id: null, gen: 0 };
const TD_FILES = ["/static/vendor/terra-draw/terra-draw.umd.js",
  "/static/vendor/terra-draw/terra-draw-maplibre-gl-adapter.umd.js"];

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = document.createElement("script");
    s.src = src;
    s.onload = resolve;
    s.onerror = () => reject(new Error(`cannot load ${src}`));
    document.head.append(s);
  });
}

// the snapping of terra-draw's drawing and dragging: the plan's grid vertices and edges
function snapTo(event) {
  const P = plannerState();
  const fc = (P.current && P.current.grids) || EMPTY_FC;
  const q = snapPoint([event.lng, event.lat], ringsOf(fc), Number(P.snapM) || 0);
  return q || undefined;
}

/** The terra-draw instance on the map (made once), or null when it cannot be loaded. */
export async function terraDraw() {
  if (TD.draw) return TD.draw;
  if (!TD.loading) {
    TD.loading = (async () => {
      for (const f of TD_FILES) await loadScript(f);
      const lib = window.terraDraw;
      const { TerraDrawMapLibreGLAdapter } = window.terraDrawMaplibreGlAdapter;
      let next = 0;
      const snapping = { toCustom: snapTo };
      const editable = { feature: { draggable: false, coordinates:
        { draggable: true, midpoints: true, deletable: true, snappable: snapping } } };
      const draw = new lib.TerraDraw({
        adapter: new TerraDrawMapLibreGLAdapter({ map: getMap() }),
        idStrategy: { isValidId: (id) => Number.isInteger(id), getId: () => { next += 1; return next; } },
        modes: [
          new lib.TerraDrawLineStringMode({ snapping }),
          new lib.TerraDrawPolygonMode({ snapping }),
          new lib.TerraDrawRectangleMode(),
          new lib.TerraDrawSelectMode({ flags: { linestring: editable, polygon: editable } }),
        ],
      });
      draw.start();
      draw.on("change", (ids, type) => { if (type === "update" && ids.includes(TD.id)) drawChanged(); });
      TD.draw = draw;
      return draw;
    })().catch(() => null);
  }
  return TD.loading;
}

function drawnFeature() {
  return TD.draw && TD.id !== null ? TD.draw.getSnapshotFeature(TD.id) : undefined;
}

// hand a finished drawing to terra-draw: its vertices can then be dragged (and snap)
async function editDrawn(geometry) {
  const gen = TD.gen;
  const draw = await terraDraw();
  if (!draw || !geometry || gen !== TD.gen) return false;
  draw.clear();
  const mode = geometry.type === "Polygon" ? "polygon" : "linestring";
  // terra-draw keeps 9 decimals (0.1 mm); the server snaps them back onto the grid
  const round = (c) => [Math.round(c[0] * 1e9) / 1e9, Math.round(c[1] * 1e9) / 1e9];
  geometry = geometry.type === "Polygon"
    ? { type: "Polygon", coordinates: geometry.coordinates.map((r) => r.map(round)) }
    : { type: "LineString", coordinates: geometry.coordinates.map(round) };
  const [res] = draw.addFeatures([{ type: "Feature", properties: { mode }, geometry }]);
  if (!res || !res.valid) return false;
  TD.id = res.id;
  plannerState().drawn = geometry;
  draw.setMode("select");
  draw.selectFeature(res.id);
  return true;
}

function drawChanged() {
  const f = drawnFeature();
  if (!f) return;
  plannerState().drawn = f.geometry;
  updateApply();
}

/** Load the shared edge of the two picked grids as a line to reshape by dragging. */
async function reshapeSharedEdge() {
  const P = plannerState();
  const [a, b] = pickedCodes();
  const draw = await terraDraw();
  const fc = (P.current && P.current.grids) || EMPTY_FC;
  let edge = null;
  for (const ra of ringsOfCodes(fc, [a])) {
    for (const rb of ringsOfCodes(fc, [b])) edge = edge || sharedEdge(ra, rb);
  }
  if (!draw || !edge) {
    planMsg(t(draw ? "no_shared_edge" : "draw_unavailable"), true);
    return;
  }
  P.shape = "polyline";
  P.drawPts = [];
  if (!(await editDrawn({ type: "LineString", coordinates: edge }))) {
    planMsg(t("no_shared_edge"), true);
    return;
  }
  drawSketch();
  planMsg(t("reshape_hint"));
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
    [P.impact, P.diff, P.staffing] = await Promise.all([
      request(apiPath(["plans", String(id), "impact"])).catch(failed),
      request(apiPath(["plans", String(id), "diff"])).catch(failed),
      request(apiPath(["plans", String(id), "staffing"])).catch(failed),
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
  const staffed = !!(P.staffing && P.staffing.ready);
  const owner = plan.owner ? ` · ${t("owner")}: ${plan.owner}` : "";
  return [
    el("h3", {}, `${t("plan")} #${plan.id} ${plan.name} · ${plan.status || ""}${owner}`),
    el("div", { class: "row-form" },
      el("button", { class: "btn", type: "button", id: "btn-undo", onclick: () => planAction("undo") }, t("undo")),
      el("button", { class: "btn", type: "button", id: "btn-redo", onclick: () => planAction("redo") }, t("redo")),
      el("button", { class: "btn primary", type: "button", id: "btn-publish",
        disabled: staffed ? null : "disabled", title: staffed ? null : t("staffing_blocks"),
        onclick: () => { if (confirm(t("publish_confirm"))) planAction("publish"); } }, t("publish"))),
    ...autopartitionForm(plan),
    el("h3", {}, t("edit")), ...editForm(P),
    el("h3", {}, t("staffing")), staffingSection(P.staffing),
    el("h3", {}, t("plan_metrics")), impactTable(P.impact),
    el("h3", {}, t("diff")), diffSection(P.diff),
  ];
}

// every grid's workers after the plan; what must be decided before publishing, with the
// controls to decide it (assign / move / vacancy / release → PUT /plans/{id}/staffing)
function staffingSection(st) {
  if (!st) return el("p", { class: "hint" }, t("none"));
  if (st.error) return el("p", { class: "err" }, st.error);
  const names = (ws) => ws.map((w) => w.name || `#${w.account_id}`).join(", ");
  const tbody = el("tbody");
  for (const g of st.grids || []) {
    tbody.append(el("tr", { "data-grid": g.code }, el("td", { title: g.name }, g.code.slice(-3), " ", g.name || ""),
      el("td", { class: g.workers.length ? "" : "warn" },
        g.workers.length ? names(g.workers) : g.vacant ? t("vacant") : t("no_worker"))));
  }
  const table = el("table", { class: "grid", id: "plan-staffing" },
    el("thead", {}, el("tr", {}, el("th", {}, levelName(levels()[levels().length - 1])),
      el("th", {}, t("workers_after")))), tbody);
  const workers = st.workers || [];
  const grids = st.grids || [];
  const issues = (st.issues || []).map((i) => {
    if (i.kind === "grid_without_worker") {
      const pick = el("select", { "data-grid": i.grid },
        workers.map((w) => el("option", { value: w.account_id }, w.name || `#${w.account_id}`)));
      return el("li", { class: "issue" }, el("span", {}, i.message), " ",
        workers.length ? pick : null,
        workers.length ? el("button", { class: "btn", type: "button", "data-assign": i.grid,
          onclick: () => decide({ action: "assign", grid: i.grid, account_id: Number(pick.value) }) }, t("assign")) : null,
        el("button", { class: "btn", type: "button", "data-vacancy": i.grid,
          onclick: () => decide({ action: "vacancy", grid: i.grid }) }, t("mark_vacant")));
    }
    const to = el("select", { "data-worker": i.account_id },
      grids.map((g) => el("option", { value: g.code }, `${g.code.slice(-3)} ${g.name || ""}`)));
    return el("li", { class: "issue" }, el("span", {}, i.message), " ", to,
      el("button", { class: "btn", type: "button",
        onclick: () => decide({ action: "move", account_id: i.account_id, grid: to.value }) }, t("move_worker")),
      el("button", { class: "btn", type: "button",
        onclick: () => decide({ action: "release", account_id: i.account_id }) }, t("release_worker")));
  });
  const status = el("p", { class: st.ready ? "ok" : "err", id: "staffing-status" },
    st.ready ? t("staffing_ready") : t("staffing_blocks"));
  const clear = (st.decisions || []).length
    ? el("button", { class: "btn", type: "button", onclick: () => putStaffing([]) }, t("clear_decisions")) : null;
  return el("div", {}, table, status, issues.length ? el("ul", { class: "issues" }, issues) : null, clear);
}

function decide(decision) {
  const st = plannerState().staffing || {};
  putStaffing([...(st.decisions || []), decision]);
}

async function putStaffing(decisions) {
  const P = plannerState();
  try {
    P.staffing = await request(apiPath(["plans", String(P.current.id), "staffing"]), {
      method: "PUT",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ decisions }),
    });
    planMsg(`${t("staffing")} · ${t("done")}`);
  } catch (e) {
    planMsg(e.message, true);
  }
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
    const drawnPts = P.drawn ? (P.drawn.type === "Polygon" ? P.drawn.coordinates[0].length - 1
      : P.drawn.coordinates.length) : P.drawPts.length;
    out.push(el("div", { class: "row-form" },
      tool.draw.map((shape) => el("button", { type: "button", id: `btn-draw-${shape}`,
        class: "btn" + (P.drawing && P.shape === shape ? " on" : ""), onclick: () => startDrawing(shape) },
      t(DRAW_LABEL[shape]))),
      P.kind === "move_edge" ? el("button", { type: "button", class: "btn", id: "btn-reshape",
        disabled: pickedCodes().length === 2 ? null : "disabled", onclick: reshapeSharedEdge }, t("reshape_edge")) : null,
      el("span", { class: "hint", id: "draw-status" },
        P.drawing ? t("drawing") : drawnPts ? `${t("points_drawn")}: ${drawnPts}` : "")));
    out.push(el("div", { class: "row-form" }, el("span", {}, t("snap_m")),
      el("input", { type: "number", id: "snap-m", min: 0, max: 50, step: 0.5, value: P.snapM,
        onchange: (e) => { P.snapM = Number(e.target.value) || 0; } })));
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
  P.drawn = null;
  TD.gen += 1;
  if (TD.draw) {
    TD.draw.clear();
    TD.draw.setMode("static");
  }
  drawSketch();
  drawPlanner();
}

// a drawing is complete: let terra-draw take it for dragging its vertices
function finishDrawing() {
  const P = plannerState();
  const geom = drawnGeometry(P.shape, P.drawPts);
  if (!geom) return;
  editDrawn(geom).then((ok) => {
    if (ok && !P.drawing) {
      P.drawPts = [];
      drawSketch();
    }
  });
}

function stopDrawing(handOver = true) {
  const P = plannerState();
  if (!P.drawing) return;
  P.drawing = false;
  drawSketch();
  drawPlanner();
  if (handOver) finishDrawing();
}

function updateApply() {
  const P = plannerState();
  const btn = byId(`btn-${P.kind.replace("_", "-")}`);
  if (btn) btn.disabled = !currentParams(P);
}

function applyEdit() {
  const P = plannerState();
  if (P.drawing) stopDrawing(false);
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
    const raw = [e.lngLat.lng, e.lngLat.lat];
    const fc = P.current.grids || EMPTY_FC;
    P.drawPts.push(snapPoint(raw, ringsOf(fc), Number(P.snapM) || 0) || raw);
    const ends = DRAW_CLICKS[P.shape];
    if (ends && P.drawPts.length >= ends) {
      P.drawing = false;
      finishDrawing();
    }
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
