// Synchronisation: the outbox goes up (drain), the worker's data comes down (pull).
//
// drain(): the pending actions are sent in creation order, each with its own
// Idempotency-Key (made once, when the action was created), so a retry after a lost
// answer gives the first answer back instead of a second record. Photos and videos go
// first, PUT /media/{sha256} in chunks with Content-Range; an upload cut off resumes at
// the server's Upload-Offset (HEAD). Then, by the answer (pure.js outcome()):
//   2xx → done; no answer / 5xx / 408 / 429 → retried later with exponential backoff, and
//   nothing after it is sent before it (order kept); 409 → a conflict, shown to the worker
//   with the server's current record, never overwritten; 401 → the device must enrol again
//   (revoked: told so), the action stays; other 4xx → parked and shown.
//
// pull(): GET /sync (the grid boundary, buildings, tasks, notifications, categories) kept
// in IndexedDB for offline use; GET /config and GET /tasks when /sync is not there.
import * as store from "./store.js";
import { call } from "./net.js";
import { outcome, backoffMs, readyToSend, chunkRanges, uploadOffset, apiError } from "./pure.js";

/** Bytes per upload request. */
export const CHUNK = 256 * 1024;

const listeners = new Set();
let running = null;
let timer = null;
let blocked = false; // 401: nothing is sent until the device enrols again

/** Call `fn()` whenever the outbox changed. */
export function onChange(fn) {
  listeners.add(fn);
}

function changed() {
  for (const fn of listeners) fn();
}

/** Stop or resume sending (while the device has no valid credential). */
export function setBlocked(value) {
  blocked = value;
}

/**
 * Put an action in the outbox and try to send it at once.
 *
 * @param {{kind: string, method: string, path: string, body?: unknown, media?: string[]}} action
 * @returns {Promise<object>} the stored action
 */
export async function submit(action) {
  const a = await store.enqueue(action);
  changed();
  drain();
  return a;
}

/**
 * Upload one photo or video (resuming a partial upload).
 *
 * @param {string} sha256
 * @param {number} [known] bytes the server was known to have before (progress is news)
 * @returns {Promise<{status: number, body: any, offset?: number, progressed?: boolean}>}
 *   2xx when the server has it; offset: bytes the server has; progressed: more than known
 */
export async function upload(sha256, known = 0) {
  const path = `/media/${sha256}`;
  const head = await call("HEAD", path);
  if (head.status === 200) return head;
  if (head.status === 0 || head.status >= 500 || head.status === 401) return head;
  const blob = await store.getBlob(sha256);
  if (!blob) return { status: 410, body: { error: "Gone", message: `photo ${sha256.slice(0, 12)} is no longer on this phone` } };
  const offset = head.status === 404 && head.headers ? uploadOffset(head.headers.get("Upload-Offset")) : 0;
  let have = offset;
  let last = { status: 200, body: null };
  for (const r of chunkRanges(blob.size, offset, CHUNK)) {
    last = await call("PUT", path, {
      raw: blob.slice(r.start, r.end),
      headers: { "Content-Type": blob.type || "application/octet-stream", "Content-Range": r.header },
    });
    if (last.status < 200 || last.status >= 300) break;
    have = r.end;
  }
  return { ...last, offset: have, progressed: have > known };
}

// the updated_at this phone last saw of each incident (from /sync and its own answers)
async function seen() {
  return (await store.get("seen")) || {};
}

/** Remember the updated_at of incidents seen in a task list or an answer. */
export async function remember(incidents) {
  const s = await seen();
  for (const i of incidents) if (i && i.id && i.updated_at) s[i.id] = i.updated_at;
  await store.set("seen", s);
}

async function sendOne(a) {
  if (a.expect && !a.frozen) {
    // expected_updated_at: what the worker's change builds on (their earlier actions on
    // the same incident included); fixed at the first attempt so every retry is the same
    const at = (await seen())[a.expect];
    if (at) a.body.expected_updated_at = at;
    a.frozen = true;
    await store.saveAction(a);
  }
  a.offsets = a.offsets || {};
  let progressed = false;
  for (const sha of a.media || []) {
    const up = await upload(sha, a.offsets[sha] || 0);
    if (up.offset !== undefined) a.offsets[sha] = up.offset;
    progressed = progressed || Boolean(up.progressed);
    if (up.status < 200 || up.status >= 300) return { ...up, progressed };
  }
  return call(a.method, a.path, { json: a.body, headers: { "Idempotency-Key": a.key } });
}

async function afterChange(id, body) {
  let inc = body && body.updated_at && (body.id === id || body.incident_id === undefined) ? body : null;
  if (!inc) {
    const r = await call("GET", `/incidents/${id}`);
    inc = r.status === 200 ? r.body : null;
  }
  if (inc) await remember([{ ...inc, id }]);
}

async function drainOnce() {
  let sent = 0;
  if (navigator.onLine === false) return 0; // the "online" event wakes the outbox again
  for (const a of readyToSend(await store.outbox(), Date.now())) {
    if (blocked) break;
    const res = await sendOne(a);
    const what = outcome(res.status);
    const err = apiError(res.body, String(res.status || "offline"));
    if (what === "done") {
      a.state = "done";
      a.result = res.body && typeof res.body === "object" ? { id: res.body.id ?? res.body.terminal_id ?? null } : null;
      a.done_at = new Date().toISOString();
      a.error = null;
      await store.saveAction(a);
      for (const sha of a.media || []) await store.delBlob(sha);
      if (a.expect) await afterChange(a.expect, res.body);
      sent += 1;
      changed();
      continue;
    }
    if (what === "reauth") {
      blocked = true;
      a.error = err.message;
      await store.saveAction(a);
      changed();
      break;
    }
    if (what === "retry") {
      // an upload that moved on since the last attempt starts its backoff again
      a.attempts = res.progressed ? 1 : a.attempts + 1;
      a.next_at = Date.now() + backoffMs(a.attempts);
      a.error = err.message;
      await store.saveAction(a);
      changed();
      break; // later actions wait: the order is kept
    }
    a.state = what; // conflict or parked
    a.status = res.status;
    a.error = err.message;
    if (what === "conflict") {
      const e = res.body && typeof res.body === "object" ? res.body.error : null;
      a.current = (e && typeof e === "object" && e.current) || (res.body && res.body.current) || null;
    }
    await store.saveAction(a);
    changed();
  }
  return sent;
}

/**
 * Send what is ready in the outbox (one drain at a time); schedules the next attempt.
 *
 * @returns {Promise<number>} actions sent
 */
export function drain() {
  if (running) return running;
  running = drainOnce()
    .catch((e) => {
      console.warn("drain", e);
      return 0;
    })
    .finally(() => {
      running = null;
      schedule();
    });
  return running;
}

async function schedule() {
  clearTimeout(timer);
  const pending = (await store.outbox()).filter((a) => a.state === "pending");
  if (!pending.length || blocked || navigator.onLine === false) return;
  const next = Math.min(...pending.map((a) => a.next_at || 0));
  timer = setTimeout(drain, Math.max(250, next - Date.now()));
}

/** Whether nothing is waiting to be sent. */
export async function idle() {
  return !running && (await store.outbox()).every((a) => a.state !== "pending");
}

/**
 * Fetch the worker's data for offline use (GET /sync; /config and /tasks as fallbacks).
 *
 * @returns {Promise<boolean>} whether fresh data came
 */
export async function pull() {
  if (navigator.onLine === false) return false; // the service worker would answer from its cache
  const config = await call("GET", "/config");
  if (config.status === 200) await store.set("config", config.body);
  const r = await call("GET", "/sync");
  const cache = (await store.get("cache")) || {};
  if (r.status === 200 && r.body) {
    const b = r.body;
    Object.assign(cache, {
      grids: b.grids || cache.grids || null,
      buildings: b.buildings || cache.buildings || null,
      tasks: b.tasks || [],
      notifications: b.notifications || [],
      categories: b.categories || cache.categories || [],
      care: b.care || [],
      server_time: b.server_time || null,
    });
  } else if (r.status === 0) {
    return false;
  } else {
    const tasks = await call("GET", "/tasks");
    if (tasks.status === 200) cache.tasks = tasks.body;
  }
  if ((!cache.categories || !cache.categories.length) && config.status === 200) {
    cache.categories = config.body.categories;
  }
  await remember(cache.tasks || []);
  cache.synced_at = new Date().toISOString();
  await store.set("cache", cache);
  return true;
}
