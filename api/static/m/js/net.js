// Requests of the phone app to our API with the device's credential (a bearer token from
// enrolment) and its version (X-App-Version). Answers are never thrown: {status, body,
// headers}, status 0 when no answer came (offline, connection cut).

export const APP_VERSION = "m-1";
let token = "";
const listeners = new Set();

/** Use the device token `value` for every request ("" for none). */
export function setToken(value) {
  token = value || "";
}

/** Call `fn(status, body, path)` after every answer (the app watches for 401s). */
export function onAnswer(fn) {
  listeners.add(fn);
}

/**
 * One request.
 *
 * @param {string} method
 * @param {string} path e.g. "/incidents"
 * @param {{json?: unknown, raw?: Blob, headers?: Record<string, string>, anonymous?: boolean}} [opts]
 * @returns {Promise<{status: number, body: any, headers: Headers|null}>}
 */
export async function call(method, path, opts = {}) {
  const headers = { "X-App-Version": APP_VERSION, ...(opts.headers || {}) };
  if (token && !opts.anonymous) headers.Authorization = `Bearer ${token}`;
  let body;
  if (opts.json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(opts.json);
  } else if (opts.raw !== undefined) {
    body = opts.raw;
  }
  let r;
  try {
    r = await fetch(path, { method, headers, body, credentials: "omit", cache: "no-store" });
  } catch (e) {
    return { status: 0, body: { error: "NetworkError", message: String(e && e.message ? e.message : e) }, headers: null };
  }
  let parsed = null;
  if (method !== "HEAD") {
    let text = "";
    try {
      text = await r.text();
    } catch (e) { // the connection broke while the body was read
      return { status: 0, body: { error: "NetworkError", message: String(e) }, headers: null };
    }
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      parsed = text;
    }
  }
  for (const fn of listeners) fn(r.status, parsed, path);
  return { status: r.status, body: parsed, headers: r.headers };
}
