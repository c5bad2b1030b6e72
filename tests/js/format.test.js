// Number and date formatting (api/static/js/format.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  formatValue, formatBound, isoDate, daysBefore, localDateTime, MISSING,
} from "../../api/static/js/format.js";

const f = (v, key) => formatValue(v, key, "en-US");

test("missing values are a dash", () => {
  for (const v of [null, undefined, NaN, Infinity, -Infinity]) assert.equal(f(v), MISSING);
});

test("integers get thousands separators", () => {
  assert.equal(f(0), "0");
  assert.equal(f(1234567), "1,234,567");
  assert.equal(f(-42), "-42");
});

test("other numbers get fewer decimals the larger they are", () => {
  assert.equal(f(0.123456), "0.123");
  assert.equal(f(3.14159), "3.14");
  assert.equal(f(123.456), "123.5");
  assert.equal(f(12345.678), "12,346");
});

test("areas in m² are shown in km², shares as percentages", () => {
  assert.equal(f(437450003.519, "area_m2"), "437.45");
  assert.equal(f(0.8766, "resolved_within_limit_share"), "87.7%");
});

test("class bounds keep enough digits to tell them apart", () => {
  const b = (v, key) => formatBound(v, key, "en-US");
  assert.equal(b(0.0012), "0.0012");
  assert.equal(b(0.0015), "0.0015");
  assert.equal(b(0.097), "0.097");
  assert.equal(b(12345.6), "12,346");
  assert.equal(b(42), "42");
  assert.equal(b(45000, "area_m2"), "0.045");
  assert.equal(b(0.955, "resolved_within_limit_share"), "95.5%");
  assert.equal(b(null), MISSING);
});

test("text stays text", () => {
  assert.equal(f("450902"), "450902");
});

test("dates are calendar dates of the city's time zone", () => {
  const t = new Date("2026-03-01T20:30:00Z"); // 04:30 on 2 March in China
  assert.equal(isoDate(t, "Asia/Shanghai"), "2026-03-02");
  assert.equal(isoDate(t, "UTC"), "2026-03-01");
  assert.equal(daysBefore(t, 30, "Asia/Shanghai"), "2026-01-31");
});

test("times are shown in the city's time zone", () => {
  assert.equal(localDateTime("2026-03-01T08:00:00+00:00", "Asia/Shanghai"), "2026-03-01 16:00");
  assert.equal(localDateTime("2026-03-01T23:59:00Z", "Asia/Shanghai"), "2026-03-02 07:59");
  assert.equal(localDateTime("", "Asia/Shanghai"), "");
  assert.equal(localDateTime(null, "UTC"), "");
});
