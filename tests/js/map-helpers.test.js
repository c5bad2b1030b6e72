// The leaders' map's pure helpers: local dates, overdue durations, the scale bar and date
// window of the export (format.js), and the overdue list's sorting, paging and places
// (overdue-rows.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { localDate, formatOverdue, scaleLength, windowText } from "../../api/static/js/format.js";
import { sortRows, pageOf, serverPage, placeOf, SORTS } from "../../api/static/js/overdue-rows.js";

test("times become the city's local date; plain dates stay", () => {
  // 16:00 UTC is midnight the next day in Shanghai (UTC+8)
  assert.equal(localDate("2026-03-01T16:00:00+00:00", "Asia/Shanghai"), "2026-03-02");
  assert.equal(localDate("2026-03-01T15:59:59+00:00", "Asia/Shanghai"), "2026-03-01");
  assert.equal(localDate("2026-03-01T16:00:00+00:00", "UTC"), "2026-03-01");
  assert.equal(localDate("2026-06-01", "Asia/Shanghai"), "2026-06-01");
  assert.equal(localDate(null, "UTC"), "");
  assert.equal(localDate("not a date", "UTC"), "not a date");
});

test("overdue is days and hours", () => {
  assert.equal(formatOverdue(53.7), "2天5小时");
  assert.equal(formatOverdue(53.7, "en"), "2 d 5 h");
  assert.equal(formatOverdue(48), "2天");
  assert.equal(formatOverdue(48, "en"), "2 d");
  assert.equal(formatOverdue(5.2), "5小时");
  assert.equal(formatOverdue(0.4), "<1小时");
  assert.equal(formatOverdue(0.4, "en"), "<1 h");
  assert.equal(formatOverdue(null), "–");
  assert.equal(formatOverdue(Number.NaN), "–");
});

test("the scale bar is 1, 2 or 5 times a power of ten, no longer than allowed", () => {
  assert.deepEqual(scaleLength(2600), { metres: 2000, label: "2 km" });
  assert.deepEqual(scaleLength(740), { metres: 500, label: "500 m" });
  assert.deepEqual(scaleLength(100), { metres: 100, label: "100 m" });
  assert.deepEqual(scaleLength(19.9), { metres: 10, label: "10 m" });
  assert.deepEqual(scaleLength(60000), { metres: 50000, label: "50 km" });
  assert.equal(scaleLength(0).metres, 0);
  for (const m of [3, 47, 999, 12345, 7e5]) assert.ok(scaleLength(m).metres <= m);
});

test("the date window names both ends (an open end is today)", () => {
  assert.equal(windowText({ from: "2026-03-01", to: "2026-03-31" }, "2026-04-02"), "2026-03-01 – 2026-03-31");
  assert.equal(windowText({ from: "2026-03-01", to: "" }, "2026-04-02"), "2026-03-01 – 2026-04-02");
});

const ROWS = [
  { id: 3, hours_overdue: 5, grid_code: "B", due_at: "2026-03-02T00:00:00+00:00", reported_at: "2026-03-01T00:00:00+00:00" },
  { id: 1, hours_overdue: 50, grid_code: "B", due_at: "2026-03-01T00:00:00+00:00", reported_at: "2026-02-27T00:00:00+00:00" },
  { id: 2, hours_overdue: 5, grid_code: "A", due_at: "2026-02-28T00:00:00+00:00", reported_at: "2026-02-28T00:00:00+00:00" },
];

test("the overdue list sorts as the server does: overdue, by grid, newest report (ties by id)", () => {
  assert.deepEqual(sortRows(ROWS, "overdue").map((r) => r.id), [1, 2, 3]);
  assert.deepEqual(sortRows(ROWS, "unit").map((r) => r.id), [2, 1, 3]);
  assert.deepEqual(sortRows(ROWS, "reported").map((r) => r.id), [3, 2, 1]);
  assert.deepEqual(sortRows(ROWS, "unknown").map((r) => r.id), [1, 2, 3]);
  assert.deepEqual(ROWS.map((r) => r.id), [3, 1, 2], "the input is left as it was");
  assert.deepEqual(Object.keys(SORTS), ["overdue", "unit", "reported"]);
});

test("a server page has a next page while it is full", () => {
  assert.deepEqual(serverPage(20, 0, 20), { from: 1, to: 20, total: null, prev: false, next: true });
  assert.deepEqual(serverPage(7, 40, 20), { from: 41, to: 47, total: null, prev: true, next: false });
  assert.deepEqual(serverPage(0, 20, 20), { from: 0, to: 0, total: null, prev: true, next: false });
});

test("pages name their first and last rows", () => {
  assert.deepEqual(pageOf(45, 0, 20), { from: 1, to: 20, total: 45, prev: false, next: true });
  assert.deepEqual(pageOf(45, 40, 20), { from: 41, to: 45, total: 45, prev: true, next: false });
  assert.deepEqual(pageOf(0, 0, 20), { from: 0, to: 0, total: 0, prev: false, next: false });
  assert.deepEqual(pageOf(20, 0, 20), { from: 1, to: 20, total: 20, prev: false, next: false });
});

test("an overdue incident's place: its grid's full name, its street and community", () => {
  const names = new Map([["450902001001001", "江滨社区第1网格"], ["450902001001", "江滨社区"],
    ["450902001", "玉城街道"]]);
  const row = { grid_code: "450902001001001", community_code: "450902001001", street_code: "450902001" };
  assert.deepEqual(placeOf(row, (c) => names.get(c)), { grid: "江滨社区第1网格", within: "玉城街道 · 江滨社区" });
  // unknown names fall back to the codes
  assert.deepEqual(placeOf(row, () => undefined),
    { grid: "450902001001001", within: "450902001 · 450902001001" });
  assert.deepEqual(placeOf({}, () => undefined), { grid: "", within: "" });
});

test("a search match reads as its name, then its level and ancestors", async () => {
  // search.js imports the DOM helpers only for its box; matchText is pure
  globalThis.localStorage ??= { getItem: () => null, setItem: () => {} };
  const { matchText } = await import("../../api/static/js/search.js");
  const m = { name: "江滨社区第1网格", level: "grid", parent_names: ["玉州区", "玉城街道", "江滨社区"] };
  assert.deepEqual(matchText(m, (l) => ({ grid: "网格" })[l]),
    { name: "江滨社区第1网格", where: "网格 · 玉州区 · 玉城街道 · 江滨社区" });
});
