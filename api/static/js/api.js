// Requests to our own API: building query strings and URLs (pure) and fetching JSON.

/**
 * The query string of a time window and category filter, with extra parameters first.
 *
 * @param {{from?: string, to?: string, category?: string}} filter dates YYYY-MM-DD, a category code
 * @param {Record<string, string>} [extra]
 * @returns {string} without the leading "?" ("" when empty)
 */
export function windowQuery(filter, extra) {
  const q = new URLSearchParams(extra || {});
  if (filter.from) q.set("from", filter.from);
  if (filter.to) q.set("to", filter.to);
  if (filter.category) q.set("category", filter.category);
  return q.toString();
}

/**
 * A key naming a filter (for caches of data fetched under it).
 *
 * @param {{from?: string, to?: string, category?: string}} filter
 * @returns {string}
 */
export function windowKey(filter) {
  return `${filter.from || ""}|${filter.to || ""}|${filter.category || ""}`;
}

/**
 * `url` with its query string replaced by `query` (a tile template keeps its {z}/{x}/{y}).
 *
 * @param {string} url
 * @param {string} query without "?"
 * @returns {string}
 */
export function withQuery(url, query) {
  const base = url.split("?")[0];
  return query ? `${base}?${query}` : base;
}

/**
 * A path with its segments URL-encoded and an optional query.
 *
 * @param {string[]} segments e.g. ["metrics", "grid", "450902001001001", "trend"]
 * @param {Record<string, string|null|undefined>} [params] empty values are left out
 * @returns {string} e.g. "/metrics/grid/450902001001001/trend?interval=week"
 */
export function apiPath(segments, params) {
  const path = "/" + segments.map((s) => encodeURIComponent(s)).join("/");
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== null && v !== undefined && v !== "") q.set(k, String(v));
  }
  const qs = q.toString();
  return qs ? `${path}?${qs}` : path;
}

/**
 * The message of an error body of our API ({message}, or FastAPI's {detail}).
 *
 * @param {unknown} body
 * @param {string} fallback e.g. the status text
 * @returns {string}
 */
export function errorMessage(body, fallback) {
  if (body && typeof body === "object") {
    if (body.message) return String(body.message);
    if (body.detail) return typeof body.detail === "string" ? body.detail : JSON.stringify(body.detail);
  }
  return fallback;
}

/** An HTTP error of our API, with its status and parsed body. */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(`${status}: ${message}`);
    this.status = status;
    this.body = body;
  }
}

const UNSAFE = new Set(["POST", "PUT", "PATCH", "DELETE"]);
let csrfToken = "";

/** Keep the CSRF token of the signed-in session (login.js; "" when signed out). */
export function setCsrf(value) {
  csrfToken = value || "";
}

/** Whether someone is signed in on this page (a session cookie with its CSRF token). */
export function signedIn() {
  return csrfToken !== "";
}

/**
 * Request options with the session cookie (same origin) and, on writes while signed in,
 * the X-CSRF-Token header.
 *
 * @param {RequestInit} [opts]
 * @returns {RequestInit}
 */
export function withSession(opts) {
  const o = { credentials: "same-origin", ...(opts || {}) };
  if (csrfToken && UNSAFE.has(String(o.method || "GET").toUpperCase())) {
    o.headers = { ...(o.headers || {}), "X-CSRF-Token": csrfToken };
  }
  return o;
}

/**
 * Fetch `url` and parse its JSON body; throws {@link ApiError} unless the status is 2xx.
 * The session cookie goes along, and the CSRF header on writes ({@link withSession}).
 *
 * @param {string} url
 * @param {RequestInit} [opts]
 * @returns {Promise<any>}
 */
export async function request(url, opts) {
  const r = await fetch(url, withSession(opts));
  const text = await r.text();
  let body = null;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {
    body = text;
  }
  if (!r.ok) throw new ApiError(r.status, errorMessage(body, r.statusText), body);
  return body;
}

/**
 * POST a JSON body (or none) with the bearer token.
 *
 * @param {string} url
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
export function postJson(url, body) {
  return request(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...authHeaders() },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

const TOKEN_KEY = "geogrid.token";

/** The bearer token of this browser tab ("" when none). */
export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

/** Keep a bearer token for this browser tab. */
export function setToken(value) {
  sessionStorage.setItem(TOKEN_KEY, value || "");
}

/** The Authorization header of the token, if any. */
export function authHeaders() {
  return token() ? { Authorization: "Bearer " + token() } : {};
}
