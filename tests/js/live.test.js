// The live map's pure helpers (api/static/js/live-events.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { addEvent, eventsToGeoJSON, toastText } from "../../api/static/js/live-events.js";

test("the newest event of an incident replaces older ones, newest first, bounded", () => {
  let ev = [];
  ev = addEvent(ev, { id: 1, kind: "new", lon: 110, lat: 22 });
  ev = addEvent(ev, { id: 2, kind: "new", lon: 110.1, lat: 22.1 });
  ev = addEvent(ev, { id: 1, kind: "status", status: "accepted", lon: 110, lat: 22 });
  assert.deepEqual(ev.map((e) => [e.id, e.kind]), [[1, "status"], [2, "new"]]);
  assert.equal(addEvent(ev, { id: 3 }, 2).length, 2);
});

test("events become GeoJSON points; events without a position are left out", () => {
  const fc = eventsToGeoJSON([{ id: 1, kind: "new", lon: 110, lat: 22, category: "noise" },
    { id: 2, kind: "new", lon: null, lat: 22 }]);
  assert.equal(fc.features.length, 1);
  assert.deepEqual(fc.features[0].geometry.coordinates, [110, 22]);
  assert.equal(fc.features[0].properties.category, "noise");
});

test("toasts name the category and grid, the status, or the bulk count", () => {
  const tr = (k, v) => `${k}:${JSON.stringify(v)}`;
  const cat = (c) => c.toUpperCase();
  const st = (s) => `<${s}>`;
  assert.equal(toastText("new", { category: "noise", grid_code: "G1" }, tr, cat, st),
    'live_new:{"category":"NOISE","grid":"G1"}');
  assert.equal(toastText("status", { id: 7, status: "closed" }, tr, cat, st),
    'live_status:{"id":7,"status":"<closed>"}');
  assert.equal(toastText("bulk", { count: 40 }, tr, cat, st), 'live_bulk:{"n":40}');
});
