// Class breaks of the choropleth and their legend (api/static/js/classes.js).
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  niceRound, quantileBreaks, classColors, classOf, legendClasses, classLabel, colorExpression,
  PALETTE, NO_DATA,
} from "../../api/static/js/classes.js";
import { formatBound } from "../../api/static/js/format.js";

// a deterministic pseudo-random sequence (no Math.random in tests)
function lcg(seed) {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return s / 2147483648;
  };
}

const SAMPLES = {
  "counts with many zeros": [...Array(40).fill(0), ...Array.from({ length: 60 }, (_, i) => 1 + (i * 7) % 53)],
  "large counts": Array.from({ length: 500 }, (_, i) => 1000 + ((i * 7919) % 12345)),
  "small rates": Array.from({ length: 200 }, (_, i) => 0.01 + ((i * 37) % 101) / 997),
  "rates with many zeros": [...Array(30).fill(0), ...Array.from({ length: 70 }, (_, i) => 0.0456 + i / 13)],
  "random floats": Array.from({ length: 300 }, lcg(42)).map((v) => v * 250 - 20),
  "random integers": Array.from({ length: 300 }, lcg(7)).map((v) => Math.floor(v * 40)),
  "tiny densities": Array.from({ length: 150 }, (_, i) => 0.0004 + ((i * 13) % 71) / 9000),
  "negative changes": Array.from({ length: 120 }, (_, i) => ((i * 31) % 90) - 45),
};

test("niceRound keeps two significant digits and integers exact", () => {
  assert.equal(niceRound(7), 7);
  assert.equal(niceRound(1234), 1200);
  assert.equal(niceRound(0.04567), 0.046);
  assert.equal(niceRound(-123), -120);
  assert.equal(niceRound(0), 0);
  for (let v = 1; v < 2000; v += 1) assert.ok(Number.isInteger(niceRound(v)), `niceRound(${v})`);
});

for (const [name, values] of Object.entries(SAMPLES)) {
  test(`breaks of ${name}: increasing, inside the data, at most six classes`, () => {
    const q = quantileBreaks(values);
    assert.ok(q.breaks.length >= 1 && q.breaks.length <= PALETTE.length - 1, JSON.stringify(q.breaks));
    for (let i = 1; i < q.breaks.length; i++) assert.ok(q.breaks[i] > q.breaks[i - 1]);
    assert.ok(q.breaks[0] > q.min && q.breaks[q.breaks.length - 1] <= q.max);
    assert.equal(q.integers, values.every(Number.isInteger));
  });

  test(`classes of ${name}: every value in exactly one, no shared edges`, () => {
    const q = quantileBreaks(values);
    const classes = legendClasses(q);
    assert.equal(classes.length, q.breaks.length + 1);
    const inClass = (c, v) => (c.closed ? v >= c.lo && v <= c.hi
      : (c.lo === null || v >= c.lo) && (c.hi === null || v < c.hi));
    for (const v of values) {
      const hits = classes.map((c, i) => (inClass(c, v) ? i : -1)).filter((i) => i >= 0);
      assert.deepEqual(hits, [classOf(v, q.breaks)], `value ${v} in classes ${hits}`);
    }
    for (let i = 1; i < classes.length; i++) {
      const [a, b] = [classes[i - 1], classes[i]];
      if (a.closed && b.closed) assert.ok(a.hi < b.lo, `${a.hi} < ${b.lo}`);
      else assert.ok(a.hi === null || b.lo === null || a.hi <= b.lo);
      if (q.integers) assert.ok(a.closed && b.closed && a.hi + 1 <= b.lo);
    }
    for (const fmt of [String, (v) => formatBound(v, undefined, "en-US")]) {
      const labels = classes.map((c) => classLabel(c, fmt));
      assert.equal(new Set(labels).size, labels.length, labels.join(" | "));
    }
  });
}

test("the minimum shared by many units is a class of its own", () => {
  const q = quantileBreaks(SAMPLES["rates with many zeros"]);
  assert.ok(q.minClass);
  assert.ok(q.breaks[0] <= 0.0456, `first break ${q.breaks[0]} above the smallest non-zero value`);
  const [first] = legendClasses(q);
  assert.deepEqual([first.lo, first.hi, first.closed], [0, 0, true]);
  assert.equal(classLabel(first, String), "0");
});

test("integer classes read as ranges of integers", () => {
  const q = { breaks: [1, 5, 10], min: 0, max: 42, minClass: true, integers: true };
  const labels = legendClasses(q).map((c) => classLabel(c, String));
  assert.deepEqual(labels, ["0", "1 – 4", "5 – 9", "10 – 42"]);
});

test("continuous classes read as half-open ranges", () => {
  const q = { breaks: [0.5, 1.5], min: 0.1, max: 3.2, minClass: false, integers: false };
  const labels = legendClasses(q).map((c) => classLabel(c, String));
  assert.deepEqual(labels, ["< 0.5", "0.5 – < 1.5", "≥ 1.5"]);
});

test("too few distinct values give no breaks and one class", () => {
  assert.deepEqual(quantileBreaks([]).breaks, []);
  assert.deepEqual(legendClasses(quantileBreaks([])), []);
  const one = quantileBreaks([3, 3, 3, null, "x"]);
  assert.deepEqual(one.breaks, []);
  assert.deepEqual(legendClasses(one).map((c) => classLabel(c, String)), ["3"]);
});

test("class colours spread over the palette and the colour expression steps at the breaks", () => {
  assert.deepEqual(classColors(2), [PALETTE[0], PALETTE[5]]);
  assert.deepEqual(classColors(6), PALETTE);
  const expr = colorExpression(["get", "incidents"], [1, 5]);
  assert.deepEqual(expr, ["case", ["==", ["typeof", ["get", "incidents"]], "number"],
    ["step", ["get", "incidents"], PALETTE[0], 1, PALETTE[3], 5, PALETTE[5]], NO_DATA]);
  assert.equal(colorExpression(["get", "x"], null)[2], PALETTE[2]);
});
