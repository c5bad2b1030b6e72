// The overdue list's rows: sorting, paging and where each incident lies (pure: no DOM).

/**
 * The sort orders of the list, as GET /incidents/overdue's `sort` names them: key →
 * [[field, direction], ...] (the same order when a server without paging sorts nothing).
 */
export const SORTS = {
  overdue: [["hours_overdue", -1]],              // longest overdue first
  unit: [["grid_code", 1], ["due_at", 1]],        // by grid, then due time
  reported: [["reported_at", -1]],               // newest report first
};

function compare(a, b, field) {
  if (field.endsWith("_at")) return (Date.parse(a[field]) || 0) - (Date.parse(b[field]) || 0);
  if (field.endsWith("_code")) return String(a[field] || "").localeCompare(String(b[field] || ""));
  return (Number(a[field]) || 0) - (Number(b[field]) || 0);
}

/**
 * The rows sorted by one of {@link SORTS} (ties by incident id), without changing `rows`.
 *
 * @param {Array<Record<string, any>>} rows
 * @param {string} sort a key of SORTS
 * @returns {Array<Record<string, any>>}
 */
export function sortRows(rows, sort) {
  const keys = SORTS[sort] || SORTS.overdue;
  return [...rows].sort((a, b) => {
    for (const [field, dir] of keys) {
      const c = dir * compare(a, b, field);
      if (c) return c;
    }
    return a.id - b.id;
  });
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
 * A page the server cut (`limit`/`offset`, no total): `got` rows from `offset`; there may
 * be a next page while the page is full.
 *
 * @param {number} got rows in the page
 * @param {number} offset
 * @param {number} size the page size asked for
 * @returns {{from: number, to: number, total: null, prev: boolean, next: boolean}}
 */
export function serverPage(got, offset, size) {
  return { from: got ? offset + 1 : 0, to: got ? offset + got : 0, total: null, prev: offset > 0, next: got >= size };
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
