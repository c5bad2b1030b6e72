// The phone app's pure helpers (api/static/m/js/pure.js) and its label tables.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  outcome, backoffMs, sendOrder, readyToSend, chunkRanges, uploadOffset, hex, sha256Hex,
  parseCoords, fitWithin, keepFix, sortTasks, dayIn, apiError, isRevoked, PATROL_DEFAULTS,
} from "../../api/static/m/js/pure.js";
import zh from "../../api/static/m/i18n/zh.js";
import en from "../../api/static/m/i18n/en.js";

test("answers sort into done, retry, conflict, re-enrol and parked", () => {
  assert.equal(outcome(201), "done");
  assert.equal(outcome(200), "done");
  assert.equal(outcome(0), "retry");
  assert.equal(outcome(500), "retry");
  assert.equal(outcome(503), "retry");
  assert.equal(outcome(429), "retry");
  assert.equal(outcome(409), "conflict");
  assert.equal(outcome(401), "reauth");
  for (const s of [400, 403, 404, 413, 415, 422]) assert.equal(outcome(s), "parked", String(s));
});

test("backoff doubles from the base, is capped and jittered by ±25 %", () => {
  assert.equal(backoffMs(1, { base: 1000 }, 0.5), 1000);
  assert.equal(backoffMs(2, { base: 1000 }, 0.5), 2000);
  assert.equal(backoffMs(5, { base: 1000 }, 0.5), 16000);
  assert.equal(backoffMs(40, { base: 1000, max: 60000 }, 0.5), 60000);
  assert.equal(backoffMs(3, { base: 1000 }, 0), 3000);
  assert.equal(backoffMs(3, { base: 1000 }, 0.999999), 5000);
  for (let n = 1; n < 20; n++) assert.ok(backoffMs(n + 1, {}, 0.5) >= backoffMs(n, {}, 0.5));
});

test("the outbox is sent in creation order and a waiting action blocks the later ones", () => {
  const q = [
    { seq: 3, state: "pending", path: "c" },
    { seq: 1, state: "done", path: "a" },
    { seq: 2, state: "pending", path: "b" },
    { seq: 4, state: "conflict", path: "d" },
    { seq: 5, state: "pending", path: "e" },
    { seq: 6, state: "parked", path: "f" },
  ];
  assert.deepEqual(sendOrder(q).map((a) => a.path), ["b", "c", "e"]);
  assert.deepEqual(readyToSend(q, 1000).map((a) => a.path), ["b", "c", "e"]);
  q[0].next_at = 5000; // "c" waits for its backoff: "e" may not overtake it
  assert.deepEqual(readyToSend(q, 1000).map((a) => a.path), ["b"]);
  assert.deepEqual(readyToSend(q, 5000).map((a) => a.path), ["b", "c", "e"]);
});

test("uploads are cut in chunks with Content-Range and resume at the server's offset", () => {
  assert.deepEqual(chunkRanges(10, 0, 4), [
    { start: 0, end: 4, header: "bytes 0-3/10" },
    { start: 4, end: 8, header: "bytes 4-7/10" },
    { start: 8, end: 10, header: "bytes 8-9/10" },
  ]);
  assert.deepEqual(chunkRanges(10, 8, 4), [{ start: 8, end: 10, header: "bytes 8-9/10" }]);
  assert.deepEqual(chunkRanges(10, 10, 4), []);
  assert.deepEqual(chunkRanges(3, 0, 100), [{ start: 0, end: 3, header: "bytes 0-2/3" }]);
  assert.throws(() => chunkRanges(10, 0, 0), RangeError);
  assert.equal(uploadOffset("262144"), 262144);
  assert.equal(uploadOffset(null), 0);
  assert.equal(uploadOffset("x"), 0);
});

test("sha256 in hex matches Node's own hash", async () => {
  assert.equal(hex(new Uint8Array([0, 15, 255])), "000fff");
  const data = new TextEncoder().encode("网格员上报 photo bytes");
  assert.equal(await sha256Hex(data), createHash("sha256").update(data).digest("hex"));
  assert.equal(await sha256Hex(new Uint8Array()),
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
});

test("coordinates pasted from a map app are read in either order", () => {
  assert.deepEqual(parseCoords("110.1521,22.6307"), { lon: 110.1521, lat: 22.6307 });
  assert.deepEqual(parseCoords("22.6307, 110.1521"), { lon: 110.1521, lat: 22.6307 });
  assert.deepEqual(parseCoords("经度110.1521，纬度22.6307"), { lon: 110.1521, lat: 22.6307 });
  assert.deepEqual(parseCoords(" 110.15 22.63 "), { lon: 110.15, lat: 22.63 });
  assert.equal(parseCoords("110.15"), null);
  assert.equal(parseCoords("1,2"), null);
  assert.equal(parseCoords("200,22"), null);
  assert.equal(parseCoords("110.1,22.6,3"), null);
  assert.equal(parseCoords(""), null);
});

test("photos are scaled to 1600 px on the long side, never enlarged", () => {
  assert.deepEqual(fitWithin(4000, 3000), { width: 1600, height: 1200, scaled: true });
  assert.deepEqual(fitWithin(3000, 4000), { width: 1200, height: 1600, scaled: true });
  assert.deepEqual(fitWithin(800, 600), { width: 800, height: 600, scaled: false });
  assert.deepEqual(fitWithin(1600, 10), { width: 1600, height: 10, scaled: false });
});

test("patrol fixes are kept when accurate enough and one interval apart", () => {
  const o = PATROL_DEFAULTS;
  assert.equal(keepFix(null, { lon: 110, lat: 22, at: 0, accuracy: 10 }, o), true);
  assert.equal(keepFix(null, { lon: 110, lat: 22, at: 0, accuracy: 80 }, o), false);
  assert.equal(keepFix(null, { lon: NaN, lat: 22, at: 0, accuracy: 5 }, o), false);
  const last = [110, 22, 1000, 5];
  assert.equal(keepFix(last, { lon: 110, lat: 22, at: 1000 + o.interval_s * 1000 - 1, accuracy: 5 }, o), false);
  assert.equal(keepFix(last, { lon: 110, lat: 22, at: 1000 + o.interval_s * 1000, accuracy: 5 }, o), true);
});

test("tasks: overdue first, then by due time, none last", () => {
  const now = Date.parse("2026-05-04T10:00:00Z");
  const tasks = [
    { id: 1, due_at: "2026-05-05T00:00:00Z" },
    { id: 2, due_at: null },
    { id: 3, due_at: "2026-05-04T08:00:00Z" },
    { id: 4, due_at: "2026-05-04T12:00:00Z" },
    { id: 5, due_at: "2026-05-03T08:00:00Z" },
    { id: 6, due_at: "2026-05-06T00:00:00Z", overdue: true },
  ];
  assert.deepEqual(sortTasks(tasks, now).map((t) => t.id), [5, 3, 6, 4, 1, 2]);
  assert.equal(tasks[0].id, 1); // the input is left as it was
});

test("the day of a time in the city's zone", () => {
  const d = new Date("2026-05-04T17:30:00Z");
  assert.equal(dayIn(d, "Asia/Shanghai"), "2026-05-05");
  assert.equal(dayIn(d, "UTC"), "2026-05-04");
});

test("API errors: flat or nested bodies, and a revoked device", () => {
  assert.deepEqual(apiError({ error: "Conflict", message: "changed" }, "x"), { code: "Conflict", message: "changed" });
  assert.deepEqual(apiError({ error: { code: "conflict", current: {} } }, "409"), { code: "conflict", message: "409" });
  assert.deepEqual(apiError("Bad Gateway", "502"), { code: "", message: "Bad Gateway" });
  assert.deepEqual(apiError(null, "offline"), { code: "", message: "offline" });
  assert.equal(isRevoked({ error: { code: "terminal_revoked", message: "this terminal was revoked" } }), true);
  assert.equal(isRevoked({ error: "Unauthorized", code: "terminal_revoked", message: "…" }), true);
  assert.equal(isRevoked({ error: "Unauthorized", message: "sign in" }), false);
});

test("the phone app's label tables have the same keys", () => {
  assert.deepEqual(Object.keys(en).sort(), Object.keys(zh).sort());
  for (const [k, v] of Object.entries(zh)) assert.ok(v && typeof v === "string", k);
});

test("every label the phone app uses exists", async () => {
  const { readdirSync, readFileSync } = await import("node:fs");
  const { fileURLToPath } = await import("node:url");
  const root = fileURLToPath(new URL("../../api/static/m/", import.meta.url));
  const used = new Set();
  const files = ["index.html", ...readdirSync(root + "js").map((f) => `js/${f}`)];
  for (const f of files) {
    const text = readFileSync(root + f, "utf8");
    for (const m of text.matchAll(/\bt\("(\w+)"[,)]/g)) used.add(m[1]);
    for (const m of text.matchAll(/data-i18n(?:-ph)?="(\w+)"/g)) used.add(m[1]);
    for (const m of text.matchAll(/photoPicker\("[\w-]+", "(\w+)"\)/g)) used.add(m[1]);
  }
  assert.ok(used.size > 50, `only ${used.size} labels found`);
  assert.deepEqual([...used].filter((k) => !(k in zh)), []);
});

test("the service worker precaches every module of the app", async () => {
  const { readdirSync, readFileSync } = await import("node:fs");
  const { fileURLToPath } = await import("node:url");
  const root = fileURLToPath(new URL("../../api/static/m/", import.meta.url));
  const sw = readFileSync(root + "sw.js", "utf8");
  for (const f of readdirSync(root + "js")) assert.ok(sw.includes(`"/m/js/${f}"`), f);
  for (const f of readdirSync(root + "i18n")) assert.ok(sw.includes(`"/m/i18n/${f}"`), f);
  for (const f of readdirSync(root + "icons")) assert.ok(sw.includes(`"/m/icons/${f}"`), f);
});
