// The overdue list's rows: sorting, paging and where each incident lies (pure: no DOM).

/** The sort orders of the list: key → [field, direction]. */
export const SORTS = {
  overdue: ["hours_overdue", -1],   // longest overdue first
  due: ["due_at", 1],               // earliest due first
  reported: ["reported_at", 1],     // earliest reported first
};

/**
 * The rows sorted by one of {@link SORTS} (ties by incident id), without changing `rows`.
 *
 * @param {Array<Record<string, any>>} rows
 * @param {string} sort a key of SORTS
 * @returns {Array<Record<string, any>>}
 */
export function sortRows(rows, sort) {
  const [field, dir] = SORTS[sort] || SORTS.overdue;
  const value = (r) => (field.endsWith("_at") ? Date.parse(r[field]) || 0 : Number(r[field]) || 0);
  return [...rows].sort((a, b) => dir * (value(a) - value(b)) || a.id - b.id);
}

/**
 * One page of `total` rows: the first and last row numbers shown (1-based) and whether
 * there are pages before and after.
 *
 * @param {number} total
 * @param {number} offset
 * @param {number} size
 * @returns {{from: number, to: number, total: number, prev: boolean, next: boolean}}
 */
export function pageOf(total, offset, size) {
  const from = total ? Math.min(offset, Math.max(total - 1, 0)) + 1 : 0;
  const to = Math.min(offset + size, total);
  return { from, to, total, prev: offset > 0, next: offset + size < total };
}

/**
 * Where an overdue incident lies: its grid's full name and its street and community.
 *
 * @param {{grid_code?: string, community_code?: string, street_code?: string}} row
 * @param {(code: string) => string|undefined} nameOf a unit's name by code
 * @returns {{grid: string, within: string}} e.g. {grid: "江滨社区第1网格", within: "玉城街道 · 江滨社区"}
 */
export function placeOf(row, nameOf) {
  const grid = row.grid_code ? nameOf(row.grid_code) || row.grid_code : "";
  const within = [row.street_code, row.community_code].filter(Boolean)
    .map((c) => nameOf(c) || c).join(" · ");
  return { grid, within };
}
