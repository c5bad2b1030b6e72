// Pure helpers of the phone app (no DOM, no IndexedDB, no network): the outbox's order and
// retry policy, resumable upload chunks, coordinate entry, hashing, image sizes, GPS
// sampling, task order. Unit tests: tests/js/mobile.test.js (`node --test tests/js/`).

/** Outbox states: waiting to be sent, sent, refused as a conflict (409), refused (4xx). */
export const STATES = ["pending", "done", "conflict", "parked"];

/**
 * What to do with an answer of `status` (0 = no answer: network error, aborted).
 *
 * @param {number} status
 * @returns {"done"|"retry"|"conflict"|"reauth"|"parked"}
 *   done: 2xx; retry: network error, 5xx, 408, 429 (later, with backoff);
 *   conflict: 409 (shown to the worker, never overwritten); reauth: 401 (enrol again);
 *   parked: any other 4xx (shown, kept, not retried)
 */
export function outcome(status) {
  if (status >= 200 && status < 300) return "done";
  if (status === 0 || status >= 500 || status === 408 || status === 429) return "retry";
  if (status === 409) return "conflict";
  if (status === 401) return "reauth";
  return "parked";
}

/**
 * The wait (ms) before attempt number `attempts + 1` of an action that failed `attempts`
 * times: exponential from `base`, capped at `max`, with ±25 % jitter (`rand` in [0, 1)).
 *
 * @param {number} attempts failures so far (≥ 1)
 * @param {{base?: number, max?: number}} [opts]
 * @param {number} [rand] a number in [0, 1) (Math.random() by default)
 * @returns {number}
 */
export function backoffMs(attempts, opts = {}, rand = Math.random()) {
  const base = opts.base ?? 1000;
  const max = opts.max ?? 300_000;
  const n = Math.max(1, attempts);
  const raw = Math.min(max, base * 2 ** Math.min(n - 1, 30));
  return Math.round(raw * (0.75 + 0.5 * rand));
}

/**
 * The pending actions in the order they must be sent (creation order: `seq`, then
 * `created_at`); done, conflicting and parked ones are left out.
 *
 * @param {Array<{seq: number, state: string, created_at?: string}>} actions
 * @returns {Array<object>}
 */
export function sendOrder(actions) {
  return actions
    .filter((a) => a.state === "pending")
    .sort((a, b) => a.seq - b.seq || String(a.created_at).localeCompare(String(b.created_at)));
}

/**
 * The actions to send now: the pending ones in order up to (not including) the first one
 * still waiting for its backoff — a later action never overtakes an earlier one.
 *
 * @param {Array<object>} actions
 * @param {number} now epoch ms
 * @returns {Array<object>}
 */
export function readyToSend(actions, now) {
  const out = [];
  for (const a of sendOrder(actions)) {
    if ((a.next_at || 0) > now) break;
    out.push(a);
  }
  return out;
}

/**
 * The byte ranges of a resumable upload of `size` bytes from `offset`, `chunk` bytes at a
 * time, with their Content-Range headers.
 *
 * @param {number} size
 * @param {number} offset bytes the server already has
 * @param {number} chunk
 * @returns {Array<{start: number, end: number, header: string}>} end exclusive
 */
export function chunkRanges(size, offset, chunk) {
  if (!(chunk > 0)) throw new RangeError("chunk must be positive");
  const out = [];
  for (let start = Math.max(0, offset); start < size; start += chunk) {
    const end = Math.min(size, start + chunk);
    out.push({ start, end, header: `bytes ${start}-${end - 1}/${size}` });
  }
  return out;
}

/**
 * The offset to resume at from a HEAD answer's Upload-Offset header (0 when absent or bad).
 *
 * @param {string|null} header
 * @returns {number}
 */
export function uploadOffset(header) {
  const n = Number.parseInt(header || "", 10);
  return Number.isFinite(n) && n > 0 ? n : 0;
}

/** Lowercase hex of bytes. */
export function hex(buffer) {
  const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/**
 * The SHA-256 of `data` in lowercase hex (Web Crypto: browsers and Node ≥ 18).
 *
 * @param {ArrayBuffer|Uint8Array} data
 * @returns {Promise<string>}
 */
export async function sha256Hex(data) {
  return hex(await globalThis.crypto.subtle.digest("SHA-256", data));
}

/** Coordinate systems a position may be entered in. */
export const CRS = ["wgs84", "gcj02", "bd09"];

// longitudes and latitudes of China do not overlap (lat ≤ 54 < 73 ≤ lon), so the order of
// two numbers pasted from a map app (AMap/Baidu give "lon,lat", Tencent "lat,lon") is known
const LON = [73, 136];
const LAT = [3, 54];
const inRange = (v, [lo, hi]) => v >= lo && v <= hi;

/**
 * A position typed or pasted from a map app: two decimal numbers separated by a comma
 * (also "，"), semicolon or spaces, in either order; "lng:"/"经度" labels are ignored.
 *
 * @param {string} text e.g. "110.1521,22.6307" or "22.6307, 110.1521"
 * @returns {{lon: number, lat: number}|null} null when it is not a position in China
 */
export function parseCoords(text) {
  const nums = String(text || "").match(/-?\d+(?:\.\d+)?/g);
  if (!nums || nums.length !== 2) return null;
  const [a, b] = nums.map(Number);
  if (inRange(a, LON) && inRange(b, LAT)) return { lon: a, lat: b };
  if (inRange(b, LON) && inRange(a, LAT)) return { lon: b, lat: a };
  return null;
}

/**
 * The size of an image of `width`×`height` scaled to fit `max` px on its long side (never
 * enlarged).
 *
 * @returns {{width: number, height: number, scaled: boolean}}
 */
export function fitWithin(width, height, max = 1600) {
  const long = Math.max(width, height);
  if (long <= max) return { width, height, scaled: false };
  const k = max / long;
  return { width: Math.max(1, Math.round(width * k)), height: Math.max(1, Math.round(height * k)), scaled: true };
}

/** Patrol sampling defaults, the server's (GEOGRID_PATROL_MIN_INTERVAL_S, _MAX_ACCURACY_M); GET /config's `patrol` overrides them. */
export const PATROL_DEFAULTS = { interval_s: 5, max_accuracy_m: 50 };

/**
 * Whether a GPS fix is kept in a track: accurate enough, and at least the sampling
 * interval after the last kept one.
 *
 * @param {[number, number, number, number]|null} last [lon, lat, epoch_ms, accuracy_m]
 * @param {{lon: number, lat: number, at: number, accuracy: number}} fix
 * @param {{interval_s: number, max_accuracy_m: number}} opts
 * @returns {boolean}
 */
export function keepFix(last, fix, opts) {
  if (!Number.isFinite(fix.lon) || !Number.isFinite(fix.lat)) return false;
  if (!(fix.accuracy <= opts.max_accuracy_m)) return false;
  return !last || fix.at - last[2] >= opts.interval_s * 1000;
}

/**
 * Tasks in the order a worker does them: overdue first (longest overdue first), then by
 * due time (none last), then oldest report first.
 *
 * @param {Array<{due_at?: string|null, reported_at?: string, overdue?: boolean}>} tasks
 * @param {number} now epoch ms
 * @returns {Array<object>} a new array
 */
export function sortTasks(tasks, now) {
  const due = (t) => (t.due_at ? Date.parse(t.due_at) : Infinity);
  const late = (t) => t.overdue === true || due(t) < now;
  return [...tasks].sort((a, b) => (late(b) - late(a)) || (due(a) - due(b))
    || String(a.reported_at || "").localeCompare(String(b.reported_at || "")));
}

/** The worker's next moves from each status (the server's lifecycle decides). */
export const NEXT_MOVES = {
  reported: ["accepted"],
  accepted: ["in_progress"],
  dispatched: ["in_progress"],
  in_progress: ["resolved"],
};

/**
 * The calendar day (YYYY-MM-DD) of `date` in the time zone `tz`.
 *
 * @param {Date} date
 * @param {string} tz e.g. "Asia/Shanghai"
 * @returns {string}
 */
export function dayIn(date, tz) {
  const parts = new Intl.DateTimeFormat("en-CA", { timeZone: tz, year: "numeric", month: "2-digit", day: "2-digit" })
    .formatToParts(date);
  const get = (type) => parts.find((p) => p.type === type).value;
  return `${get("year")}-${get("month")}-${get("day")}`;
}

/**
 * A one-line summary of an outbox action for the worker's list.
 *
 * @param {{method: string, path: string}} action
 * @returns {string} e.g. "POST /incidents"
 */
export function actionLabel(action) {
  return `${action.method} ${action.path.split("?")[0]}`;
}

/**
 * The error code and message of an API error body: ours is flat ({"error": "Conflict",
 * "message": …, "code"?: …}); the field contract also allows {"error": {code, message}}.
 *
 * @param {unknown} body
 * @param {string} fallback
 * @returns {{code: string, message: string}}
 */
export function apiError(body, fallback) {
  if (body && typeof body === "object") {
    const nested = body.error && typeof body.error === "object" ? body.error : null;
    const e = nested || body;
    const detail = typeof e.detail === "string" ? e.detail : "";
    return {
      code: String(e.code || (nested ? "" : body.error) || ""),
      message: String(e.message || detail || fallback),
    };
  }
  return { code: "", message: typeof body === "string" && body ? body.slice(0, 300) : fallback };
}

/** Whether an error body says the device was revoked (terminal_revoked). */
export function isRevoked(body) {
  const { code, message } = apiError(body, "");
  return code === "terminal_revoked" || /terminal_revoked|revoked/i.test(code) || /terminal.*revoked/i.test(message);
}
