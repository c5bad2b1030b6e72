// The residents' survey pages' pure helpers (api/static/survey/common.js, issue 14).
import { test } from "node:test";
import assert from "node:assert/strict";
import { explain, newKey, tokenFromPath } from "../../api/static/survey/common.js";

test("the token is the last segment of /s/{token} and /e/{token}", () => {
  assert.equal(tokenFromPath("/s/abc_DEF-123"), "abc_DEF-123");
  assert.equal(tokenFromPath("/e/abc%2Bx/"), "abc+x");
  assert.equal(tokenFromPath("/s/"), "");
});

test("error answers are explained in Chinese and English", () => {
  assert.match(explain(404, {}), /链接无效/);
  assert.match(explain(429, {}), /Too many requests/);
  assert.equal(explain(409, { error: "LinkAnswered", message: "answered already" }), "answered already");
  assert.match(explain(500, null), /500/);
});

test("answer keys are 32 hex digits and differ", () => {
  const a = newKey();
  assert.match(a, /^[0-9a-f]{32}$/);
  assert.notEqual(a, newKey());
});
