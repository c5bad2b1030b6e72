// The phone's own storage (IndexedDB "geogrid-m"): the outbox of actions waiting to be
// sent, the photos they carry (by SHA-256), and a key-value store for the device's
// credential and the cached grid boundary, buildings, tasks, categories and notifications.
//
// Every action gets its idempotency key once, here, when it is created
// (crypto.randomUUID()); every retry sends that same key, so the server makes it once.

const DB_NAME = "geogrid-m";
const DB_VERSION = 1;
let dbPromise = null;

function req(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

/** The database (opened once). */
export function db() {
  if (!dbPromise) {
    dbPromise = new Promise((resolve, reject) => {
      const r = indexedDB.open(DB_NAME, DB_VERSION);
      r.onupgradeneeded = () => {
        const d = r.result;
        if (!d.objectStoreNames.contains("outbox")) d.createObjectStore("outbox", { keyPath: "seq", autoIncrement: true });
        if (!d.objectStoreNames.contains("kv")) d.createObjectStore("kv");
        if (!d.objectStoreNames.contains("blobs")) d.createObjectStore("blobs");
      };
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
  }
  return dbPromise;
}

async function store(name, mode = "readonly") {
  return (await db()).transaction(name, mode).objectStore(name);
}

/** The value kept under `key` (undefined when none). */
export async function get(key) {
  return req((await store("kv")).get(key));
}

/** Keep `value` under `key`. */
export async function set(key, value) {
  return req((await store("kv", "readwrite")).put(value, key));
}

/** Forget `key`. */
export async function del(key) {
  return req((await store("kv", "readwrite")).delete(key));
}

/** A new idempotency key. */
export function newKey() {
  return globalThis.crypto.randomUUID();
}

/**
 * Put an action in the outbox.
 *
 * @param {{kind: string, method: string, path: string, body?: unknown, media?: string[],
 *   label?: string}} action the HTTP request to make, and the photos (SHA-256) to upload first
 * @returns {Promise<object>} the stored action (with seq and key)
 */
export async function enqueue(action) {
  const a = {
    media: [],
    ...action,
    key: newKey(),
    state: "pending",
    attempts: 0,
    next_at: 0,
    error: null,
    created_at: new Date().toISOString(),
  };
  a.seq = await req((await store("outbox", "readwrite")).add(a));
  return a;
}

/** Every action of the outbox, in creation order. */
export async function outbox() {
  return req((await store("outbox")).getAll());
}

/** Save an action's new state. */
export async function saveAction(action) {
  return req((await store("outbox", "readwrite")).put(action));
}

/** Drop an action (the worker dismissed a conflict or a refusal). */
export async function dropAction(seq) {
  return req((await store("outbox", "readwrite")).delete(seq));
}

/** Keep a photo or video under its SHA-256. */
export async function putBlob(sha256, blob) {
  return req((await store("blobs", "readwrite")).put(blob, sha256));
}

/** The photo or video kept under `sha256` (undefined when none). */
export async function getBlob(sha256) {
  return req((await store("blobs")).get(sha256));
}

/** Forget a photo once it is on the server. */
export async function delBlob(sha256) {
  return req((await store("blobs", "readwrite")).delete(sha256));
}
