// Snapping of the planner's drawings (api/static/js/plan-snap.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { metresPerDegree, ringsOf, snapPoint, sharedEdge, ringsOfCodes } from "../../api/static/js/plan-snap.js";

const [MX, MY] = metresPerDegree(22.63);
const X0 = 110.15;
const Y0 = 22.63;
const D = 0.005;
const square = (x, y) => [[x, y], [x + D, y], [x + D, y + D], [x, y + D], [x, y]];
const fc = {
  type: "FeatureCollection",
  features: [
    { type: "Feature", properties: { code: "a" }, geometry: { type: "Polygon", coordinates: [square(X0, Y0)] } },
    { type: "Feature", properties: { code: "b" },
      geometry: { type: "MultiPolygon", coordinates: [[square(X0 + D, Y0)]] } },
  ],
};

test("a point half a metre from a vertex lands exactly on it", () => {
  const rings = ringsOf(fc);
  assert.equal(rings.length, 2);
  const p = [X0 + D + 0.3 / MX, Y0 + 0.4 / MY]; // 0.5 m from the shared corner
  assert.deepEqual(snapPoint(p, rings, 1), [X0 + D, Y0]);
  assert.equal(snapPoint(p, rings, 0.2), null);
  assert.equal(snapPoint(p, rings, 0), null);
});

test("a point near an edge lands on the edge", () => {
  const p = [X0 + D / 2, Y0 + 0.6 / MY]; // 0.6 m north of the south edge, far from vertices
  const q = snapPoint(p, ringsOf(fc), 1);
  assert.ok(Math.abs(q[1] - Y0) < 1e-12);
  assert.ok(Math.abs(q[0] - p[0]) < 1e-12);
});

test("the shared edge of two grids", () => {
  const a = [[0, 0], [1, 0], [1, 0.5], [1, 1], [0, 1], [0, 0]];
  const b = [[1, 0], [2, 0], [2, 1], [1, 1], [1, 0.5], [1, 0]];
  assert.deepEqual(sharedEdge(a, b), [[1, 0], [1, 0.5], [1, 1]]);
  assert.equal(sharedEdge(a, [[5, 5], [6, 5], [6, 6], [5, 5]]), null);
  assert.equal(ringsOfCodes(fc, ["b"]).length, 1);
});
