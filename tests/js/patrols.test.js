// The patrol-tracks overlay's pure helpers (api/static/js/patrol-tracks.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { colourOf, trackLines, coloured, PALETTE } from "../../api/static/js/patrol-tracks.js";

const label = (k) => ({ patrol_worker: "W", patrol_time: "T", patrol_distance: "D",
  patrol_buildings: "B", patrol_coverage: "C" })[k] ?? k;

test("a worker keeps one colour", () => {
  assert.equal(colourOf(3), colourOf(3 + PALETTE.length));
  assert.notEqual(colourOf(1), colourOf(2));
  assert.ok(PALETTE.includes(colourOf(-5)));
});

test("a track's popup: worker, local times, km and minutes, coverage per grid", () => {
  const p = {
    account_name: "李*", started_at: "2026-05-04T01:00:00+00:00", ended_at: "2026-05-04T02:30:00+00:00",
    distance_m: 1234, duration_s: 5400, buildings_visited: 2,
    grids: JSON.stringify([{ grid_code: "450902001001001", coverage: 0.1514 }]),
  };
  const lines = trackLines(p, label, "Asia/Shanghai");
  assert.deepEqual(lines, [
    "W: 李*",
    "T: 2026-05-04 09:00 – 10:30",
    "D: 1.23 km · 90 min",
    "B: 2",
    "C: 450902001001001 15%",
  ]);
});

test("features without a geometry are dropped, the others coloured", () => {
  const fc = coloured({ features: [
    { type: "Feature", geometry: null, properties: { account_id: 1 } },
    { type: "Feature", geometry: { type: "MultiLineString", coordinates: [] }, properties: { account_id: 2 } },
  ] });
  assert.equal(fc.features.length, 1);
  assert.equal(fc.features[0].properties.colour, colourOf(2));
});
