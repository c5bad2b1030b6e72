// The languages of the page (api/static/i18n/*.js, api/static/js/i18n.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { TABLES, LANGS, translate } from "../../api/static/js/i18n.js";

const STATIC = fileURLToPath(new URL("../../api/static/", import.meta.url));

test("every language has the same keys", () => {
  const files = readdirSync(STATIC + "i18n").filter((f) => f.endsWith(".js")).map((f) => f.slice(0, -3));
  assert.deepEqual([...files].sort(), [...LANGS].sort());
  const [first, ...others] = LANGS;
  for (const other of others) {
    const a = Object.keys(TABLES[first]);
    const b = Object.keys(TABLES[other]);
    assert.deepEqual(a.filter((k) => !b.includes(k)), [], `keys of ${first} missing in ${other}`);
    assert.deepEqual(b.filter((k) => !a.includes(k)), [], `keys of ${other} missing in ${first}`);
  }
});

test("no label is empty and placeholders match between languages", () => {
  const vars = (s) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
  for (const key of Object.keys(TABLES.zh)) {
    for (const l of LANGS) assert.ok(TABLES[l][key].trim(), `${l}.${key} is empty`);
    assert.deepEqual(vars(TABLES.en[key]), vars(TABLES.zh[key]), key);
  }
});

test("translate fills placeholders and falls back to the default language, then the key", () => {
  assert.equal(translate(TABLES.en, "title", { city: "Wuzhou" }), "Wuzhou grid management");
  assert.equal(translate(TABLES.zh, "title", { city: "梧州市" }), "梧州市网格化管理");
  assert.equal(translate({}, "mode_map"), TABLES.zh.mode_map);
  assert.equal(translate(TABLES.en, "no_such_key"), "no_such_key");
  assert.equal(translate(TABLES.en, "title"), "{city} grid management");
});

test("every key used by the page exists", () => {
  const used = new Set();
  const scan = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) {
        // the phone app (m/) has its own label tables (tests/js/mobile.test.js)
        if (e.name !== "vendor" && !(dir === STATIC && e.name === "m")) scan(`${dir}${e.name}/`);
      } else if (/\.(js|html)$/.test(e.name) && !dir.endsWith("/i18n/")) {
        const text = readFileSync(dir + e.name, "utf8");
        for (const m of text.matchAll(/\bt\("(\w+)"[,)]/g)) used.add(m[1]);
        for (const m of text.matchAll(/data-i18n(?:-ph|-title)?="(\w+)"/g)) used.add(m[1]);
      }
    }
  };
  scan(STATIC);
  const missing = [...used].filter((k) => !(k in TABLES.zh));
  assert.deepEqual(missing, []);
});

test("the page names no city: its name comes from GET /config", () => {
  const literal = /玉林|Yulin/;
  const scan = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) {
        if (e.name !== "vendor") scan(`${dir}${e.name}/`);
      } else {
        assert.ok(!literal.test(readFileSync(dir + e.name, "utf8")), `${dir}${e.name} names the city`);
      }
    }
  };
  scan(STATIC);
});
