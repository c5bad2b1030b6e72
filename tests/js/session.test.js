// The session cookie and the CSRF header of writes (api/static/js/api.js withSession).
import { test } from "node:test";
import assert from "node:assert/strict";
import { withSession, setCsrf, signedIn } from "../../api/static/js/api.js";

test("requests carry the same-origin cookie; writes the CSRF header only when signed in", () => {
  setCsrf("");
  assert.equal(signedIn(), false);
  assert.deepEqual(withSession(), { credentials: "same-origin" });
  assert.equal(withSession({ method: "POST" }).headers, undefined);
  setCsrf("c5rf");
  assert.equal(signedIn(), true);
  assert.equal(withSession({}).headers, undefined); // GET: no header
  for (const method of ["POST", "put", "PATCH", "DELETE"]) {
    const o = withSession({ method, headers: { "Content-Type": "application/json" } });
    assert.deepEqual(o.headers, { "Content-Type": "application/json", "X-CSRF-Token": "c5rf" });
  }
  setCsrf("");
});
