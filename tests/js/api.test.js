// Query and URL building (api/static/js/api.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { windowQuery, windowKey, withQuery, apiPath, errorMessage } from "../../api/static/js/api.js";

test("the window query has the set filters only, after the extra parameters", () => {
  assert.equal(windowQuery({ from: "", to: "", category: "" }), "");
  assert.equal(windowQuery({ from: "2026-01-01", to: "", category: "" }), "from=2026-01-01");
  assert.equal(windowQuery({ from: "2026-01-01", to: "2026-02-01", category: "sanitation" }, { level: "grid" }),
    "level=grid&from=2026-01-01&to=2026-02-01&category=sanitation");
  assert.equal(windowQuery({ category: "a&b" }), "category=a%26b");
});

test("the window key tells filters apart", () => {
  const a = windowKey({ from: "2026-01-01", to: "", category: "" });
  assert.equal(a, windowKey({ from: "2026-01-01" }));
  assert.notEqual(a, windowKey({ from: "2026-01-01", category: "vendor" }));
});

test("a tile template keeps its placeholders and gets the new query", () => {
  const tpl = "http://h/tiles/grids/{z}/{x}/{y}.mvt?from=2026-01-01";
  assert.equal(withQuery(tpl, "from=2026-02-01&category=vendor"),
    "http://h/tiles/grids/{z}/{x}/{y}.mvt?from=2026-02-01&category=vendor");
  assert.equal(withQuery(tpl, ""), "http://h/tiles/grids/{z}/{x}/{y}.mvt");
});

test("API paths encode their segments and leave out empty parameters", () => {
  assert.equal(apiPath(["metrics", "grid", "450902001001001", "trend"], { interval: "week", category: "" }),
    "/metrics/grid/450902001001001/trend?interval=week");
  assert.equal(apiPath(["boundaries", "street"], { parent: "450902" }), "/boundaries/street?parent=450902");
  assert.equal(apiPath(["incidents", "overdue"], { unit: null }), "/incidents/overdue");
  assert.equal(apiPath(["plans", "a/b"]), "/plans/a%2Fb");
});

test("error messages come from our error body or FastAPI's detail", () => {
  assert.equal(errorMessage({ message: "unknown level" }, "Bad Request"), "unknown level");
  assert.equal(errorMessage({ detail: [{ loc: ["q"] }] }, "x"), '[{"loc":["q"]}]');
  assert.equal(errorMessage("oops", "Bad Gateway"), "Bad Gateway");
});
