// The planner's edit bodies (api/static/js/plan-edits.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  drawnGeometry, editParams, togglePicked, commonPrefix, validRecode,
} from "../../api/static/js/plan-edits.js";

const A = "450902001001001";
const B = "450902001001002";
const form = { name: "", code: "" };

test("drawings become GeoJSON once complete", () => {
  assert.equal(drawnGeometry("line", [[1, 2]]), null);
  assert.deepEqual(drawnGeometry("line", [[1, 2], [3, 4]]), { type: "LineString", coordinates: [[1, 2], [3, 4]] });
  assert.equal(drawnGeometry("polygon", [[0, 0], [1, 0]]), null);
  assert.deepEqual(drawnGeometry("polygon", [[0, 0], [1, 0], [1, 1]]).coordinates[0], [[0, 0], [1, 0], [1, 1], [0, 0]]);
  assert.deepEqual(drawnGeometry("rect", [[0, 0], [2, 1]]).coordinates[0], [[0, 0], [2, 0], [2, 1], [0, 1], [0, 0]]);
});

test("edit params are null until the edit is complete", () => {
  const line = drawnGeometry("line", [[0, 0], [1, 1]]);
  assert.equal(editParams("merge", [A, ""], null, form), null);
  assert.deepEqual(editParams("merge", [A, B], null, form), { codes: [A, B] });
  assert.equal(editParams("split", [A], null, form), null);
  assert.deepEqual(editParams("split", [A], line, form), { code: A, line });
  assert.equal(editParams("move_edge", [A, A], line, form), null);
  assert.deepEqual(editParams("move_edge", [A, B], line, form), { a: A, b: B, line });
  const poly = drawnGeometry("rect", [[0, 0], [1, 1]]);
  assert.deepEqual(editParams("reassign", [A, B], poly, form), { from: A, to: B, polygon: poly });
  assert.equal(editParams("nothing", [A, B], poly, form), null);
});

test("a rename needs a name or a well-formed code of the same community", () => {
  assert.equal(editParams("rename", [A], null, { name: " ", code: "" }), null);
  assert.deepEqual(editParams("rename", [A], null, { name: "江滨", code: "" }), { code: A, new_name: "江滨" });
  assert.equal(editParams("rename", [A], null, { name: "", code: "123" }), null);
  assert.equal(editParams("rename", [A], null, { name: "", code: "450902001002009" }), null);
  assert.deepEqual(editParams("rename", [A], null, { name: "", code: "450902001001009" }),
    { code: A, new_code: "450902001001009" });
  assert.ok(validRecode(A, "450902001001999"));
  assert.ok(!validRecode(A, "45090200100100x"));
});

test("clicked grids fill the free slot, replace the oldest, or free their slot", () => {
  assert.deepEqual(togglePicked([], 2, A), [A, ""]);
  assert.deepEqual(togglePicked([A, ""], 2, B), [A, B]);
  assert.deepEqual(togglePicked([A, B], 2, "C"), [B, "C"]);
  assert.deepEqual(togglePicked([A, B], 2, A), ["", B]);
  assert.deepEqual(togglePicked(["", B], 2, "C"), ["C", B]);
});

test("the common prefix of communities frames a plan", () => {
  assert.equal(commonPrefix(["450902001001"]), "450902001001");
  assert.equal(commonPrefix(["450902001001", "450902001002"]), "45090200100");
  assert.equal(commonPrefix([]), "none");
  assert.equal(commonPrefix(["1", "2"]), "none");
});
