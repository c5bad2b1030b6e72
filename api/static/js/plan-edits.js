// The planner's edit kinds and the bodies of POST /plans/{id}/edits (pure: no DOM, no map).

/**
 * The edit kinds: the grids each needs ("slots", filled by clicking grids on the map or
 * with the selects, in order) and the shapes it can draw on the map.
 */
export const EDIT_TOOLS = {
  merge: { slots: ["grid_a", "grid_b"], draw: [] },
  split: { slots: ["grid_one"], draw: ["line"] },
  move_edge: { slots: ["grid_a", "grid_b"], draw: ["polyline"] },
  reassign: { slots: ["from_grid", "to_grid"], draw: ["polygon", "rect"] },
  rename: { slots: ["grid_one"], draw: [] },
};
/** Clicks after which a drawing ends by itself (0: it ends with the edit's button). */
export const DRAW_CLICKS = { line: 2, rect: 2, polyline: 0, polygon: 0 };

/**
 * The drawn geometry (GeoJSON, WGS84), or null while it is incomplete.
 *
 * @param {string|null} shape "line", "polyline", "polygon" or "rect"
 * @param {Array<[number, number]>} pts the clicked points (lon, lat)
 * @returns {object|null}
 */
export function drawnGeometry(shape, pts) {
  if ((shape === "line" || shape === "polyline") && pts.length >= 2) {
    return { type: "LineString", coordinates: pts.slice() };
  }
  if (shape === "polygon" && pts.length >= 3) {
    return { type: "Polygon", coordinates: [[...pts, pts[0]]] };
  }
  if (shape === "rect" && pts.length === 2) {
    const [[x0, y0], [x1, y1]] = pts;
    return { type: "Polygon", coordinates: [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]] };
  }
  return null;
}

/**
 * Whether `code` can be the new code of grid `old`: the same length, the same community
 * (all digits but the last three) and digits only (the server checks it too).
 */
export function validRecode(old, code) {
  return code.length === old.length && code.startsWith(old.slice(0, -3)) && /^\d+$/.test(code);
}

/**
 * The params of an edit, or null while it is incomplete.
 *
 * @param {string} kind a key of {@link EDIT_TOOLS}
 * @param {string[]} picked the grid codes in the slots ("" for an empty slot)
 * @param {object|null} shape the drawn geometry
 * @param {{name: string, code: string}} form the rename inputs
 * @returns {object|null}
 */
export function editParams(kind, picked, shape, form) {
  const [a, b] = picked;
  const codes = picked.filter(Boolean);
  switch (kind) {
    case "merge":
      return codes.length >= 2 ? { codes } : null;
    case "split":
      return a && shape ? { code: a, line: shape } : null;
    case "move_edge":
      return a && b && a !== b && shape ? { a, b, line: shape } : null;
    case "reassign":
      return a && b && a !== b && shape ? { from: a, to: b, polygon: shape } : null;
    case "rename": {
      const name = form.name.trim();
      const code = form.code.trim();
      if (!a || (!name && !code)) return null;
      if (code && !validRecode(a, code)) return null;
      return { code: a, ...(name ? { new_name: name } : {}), ...(code ? { new_code: code } : {}) };
    }
    default:
      return null;
  }
}

/**
 * The slots after a grid is clicked on the map: it fills the first free slot (or replaces
 * the oldest pick); clicking a picked grid again frees its slot.
 *
 * @param {string[]} picked
 * @param {number} nSlots
 * @param {string} code
 * @returns {string[]}
 */
export function togglePicked(picked, nSlots, code) {
  const out = Array.from({ length: nSlots }, (_, k) => picked[k] || "");
  const i = out.indexOf(code);
  if (i >= 0) out[i] = "";
  else if (out.includes("")) out[out.indexOf("")] = code;
  else {
    out.shift();
    out.push(code);
  }
  return out;
}

/** The longest common prefix of unit codes ("none" when empty: it matches no code). */
export function commonPrefix(codes) {
  if (!codes.length) return "none";
  let p = codes[0];
  for (const c of codes) while (!c.startsWith(p)) p = p.slice(0, -1);
  return p || "none";
}
