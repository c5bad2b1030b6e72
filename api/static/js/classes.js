// Class breaks of the choropleth and their legend (pure: no DOM, no state).
//
// A value v is in class i when breaks[i-1] <= v < breaks[i] (class 0: v < breaks[0], the
// last class: v >= breaks[breaks.length - 1]), which is how MapLibre's "step" expression
// colours it. The legend labels the classes so that no two share an edge.

/** Colours of the classes, light to dark (at most six classes). */
export const PALETTE = ["#fff3e0", "#fdd49e", "#fdbb84", "#fc8d59", "#e34a33", "#b30000"];
/** Colour of a unit without a value. */
export const NO_DATA = "#d9dde3";

/**
 * A number rounded to two significant digits (integers stay integers).
 *
 * @param {number} v
 * @returns {number}
 */
export function niceRound(v) {
  if (v === 0 || !Number.isFinite(v)) return v;
  return Number(v.toPrecision(2));
}

/**
 * Quantile class breaks of `values`: at most `maxClasses - 1` strictly increasing breaks,
 * rounded to two significant digits. When many values share the minimum (e.g. grids with
 * no incident) the minimum is a class of its own and the other values are split into
 * quantiles.
 *
 * @param {Array<unknown>} values the values (non-numbers are ignored)
 * @param {number} [maxClasses] default: the palette's length
 * @returns {{breaks: number[], min: number|undefined, max: number|undefined,
 *            minClass: boolean, integers: boolean}}
 */
export function quantileBreaks(values, maxClasses = PALETTE.length) {
  const vals = values.filter((v) => typeof v === "number" && Number.isFinite(v)).sort((a, b) => a - b);
  const integers = vals.every(Number.isInteger);
  const min = vals[0];
  const max = vals[vals.length - 1];
  if (vals.length < 2 || min === max) return { breaks: [], min, max, minClass: false, integers };
  const rest = vals.filter((v) => v > min);
  const breaks = [];
  let pool = vals;
  const minClass = vals.length - rest.length >= vals.length / maxClasses;
  if (minClass) {
    // the first break lies in (min, rest[0]] so that class 0 holds the minimum only
    const nice = niceRound(rest[0]);
    breaks.push(nice > min && nice <= rest[0] ? nice : rest[0]);
    pool = rest;
  }
  const k = Math.min(maxClasses - breaks.length, pool.length);
  for (let i = 1; i < k; i++) {
    const b = niceRound(pool[Math.floor((i * pool.length) / k)]);
    if (b > min && b <= max && (!breaks.length || b > breaks[breaks.length - 1])) breaks.push(b);
  }
  return { breaks, min, max, minClass, integers };
}

/**
 * `n` colours of the palette, spread over it when there are fewer classes than colours.
 *
 * @param {number} n
 * @param {string[]} [palette]
 * @returns {string[]}
 */
export function classColors(n, palette = PALETTE) {
  if (n >= palette.length) return palette.slice(0, n);
  const out = [];
  for (let i = 0; i < n; i++) out.push(palette[Math.round((i * (palette.length - 1)) / Math.max(n - 1, 1))]);
  return out;
}

/**
 * The class of a value under `breaks` (the index of its colour).
 *
 * @param {number} v
 * @param {number[]} breaks
 * @returns {number}
 */
export function classOf(v, breaks) {
  let i = 0;
  while (i < breaks.length && v >= breaks[i]) i++;
  return i;
}

/**
 * The classes of a classification, for the legend. Integer data get closed ranges of
 * integers ([lo, hi], e.g. 0, 1–4, 5–9, ≥ 10 shown as 10–max); other data half-open
 * ranges [lo, hi) with `lo` null below the first break and `hi` null above the last.
 * Consecutive classes never share an edge.
 *
 * @param {{breaks: number[], min?: number, max?: number, minClass?: boolean,
 *          integers?: boolean}} q the result of {@link quantileBreaks}
 * @param {string[]} [palette]
 * @returns {Array<{color: string, lo: number|null, hi: number|null, closed: boolean}>}
 */
export function legendClasses(q, palette = PALETTE) {
  const { breaks, min, max } = q;
  if (min === undefined || min === null) return [];
  const colors = classColors(breaks.length + 1, palette);
  if (!breaks.length) return [{ color: colors[0], lo: min, hi: max, closed: true }];
  const out = [];
  for (let i = 0; i <= breaks.length; i++) {
    const lo = i === 0 ? null : breaks[i - 1];
    const hi = i === breaks.length ? null : breaks[i];
    if (q.integers) {
      out.push({ color: colors[i], lo: lo === null ? min : lo, hi: hi === null ? max : hi - 1, closed: true });
    } else if (i === 0 && q.minClass) {
      out.push({ color: colors[i], lo: min, hi: min, closed: true });
    } else {
      out.push({ color: colors[i], lo, hi, closed: false });
    }
  }
  return out;
}

/**
 * The legend label of a class from {@link legendClasses}.
 *
 * @param {{lo: number|null, hi: number|null, closed: boolean}} c
 * @param {(v: number) => string} fmt the number formatter
 * @returns {string}
 */
export function classLabel(c, fmt) {
  if (c.closed) return c.lo === c.hi ? fmt(c.lo) : `${fmt(c.lo)} – ${fmt(c.hi)}`;
  if (c.lo === null) return `< ${fmt(c.hi)}`;
  if (c.hi === null) return `≥ ${fmt(c.lo)}`;
  return `${fmt(c.lo)} – < ${fmt(c.hi)}`;
}

/**
 * The MapLibre "fill-color" expression of a choropleth.
 *
 * @param {Array<unknown>} value the expression of the value, e.g. ["get", "incidents"]
 * @param {number[]|null} breaks
 * @param {string[]} [palette]
 * @returns {Array<unknown>}
 */
export function colorExpression(value, breaks, palette = PALETTE) {
  const isNumber = ["==", ["typeof", value], "number"];
  if (!breaks || !breaks.length) return ["case", isNumber, palette[2], NO_DATA];
  const colors = classColors(breaks.length + 1, palette);
  const step = ["step", value, colors[0]];
  breaks.forEach((b, i) => step.push(b, colors[i + 1]));
  return ["case", isNumber, step, NO_DATA];
}
