// The phone app's service worker (scope /m/). It keeps the app shell — the page, its
// modules, labels, icons and the vendored MapLibre — so the app starts without a network
// after the first visit.
//
// Fetches: the shell and our own static files are network-first with the cached copy as
// the fallback (a new version is picked up while online; offline the copy answers).
// API reads (GET) are network-first too, the last good answer kept as the fallback. API
// writes are never answered here: the page's outbox (IndexedDB, js/sync.js) is their
// offline fallback — an action stays queued until the server has answered it, and its
// retries carry the same Idempotency-Key.
const VERSION = "geogrid-m-v1";
const SHELL = [
  "/m/",
  "/m/app.css",
  "/m/manifest.webmanifest",
  "/m/icons/icon-192.png",
  "/m/icons/icon-512.png",
  "/m/icons/maskable-192.png",
  "/m/icons/maskable-512.png",
  "/m/i18n/zh.js",
  "/m/i18n/en.js",
  "/m/js/app.js",
  "/m/js/enrol.js",
  "/m/js/i18n.js",
  "/m/js/map.js",
  "/m/js/media.js",
  "/m/js/net.js",
  "/m/js/notifications.js",
  "/m/js/patrol.js",
  "/m/js/position.js",
  "/m/js/pure.js",
  "/m/js/register.js",
  "/m/js/report.js",
  "/m/js/state.js",
  "/m/js/store.js",
  "/m/js/sync.js",
  "/m/js/tasks.js",
  "/static/js/dom.js",
  "/static/vendor/maplibre-gl/maplibre-gl.js",
  "/static/vendor/maplibre-gl/maplibre-gl.css",
];
// API reads whose last answer is kept for offline starts (the page keeps its own copy of
// the /sync bundle in IndexedDB as well)
const API_READS = ["/config", "/sync", "/tasks", "/notifications"];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(VERSION).then((c) => c.addAll(SHELL)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(caches.keys()
    .then((keys) => Promise.all(keys.filter((k) => k.startsWith("geogrid-m-") && k !== VERSION).map((k) => caches.delete(k))))
    .then(() => self.clients.claim()));
});

async function networkFirst(request, key) {
  const cache = await caches.open(VERSION);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(key || request, response.clone());
    return response;
  } catch (e) {
    const hit = await cache.match(key || request, { ignoreVary: true });
    if (hit) return hit;
    throw e;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return; // writes: the page's outbox handles them
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && url.pathname.startsWith("/m/")) {
    event.respondWith(networkFirst(request, "/m/"));
  } else if (SHELL.includes(url.pathname) || url.pathname.startsWith("/static/")) {
    event.respondWith(networkFirst(request, url.pathname));
  } else if (API_READS.includes(url.pathname)) {
    event.respondWith(networkFirst(request, url.pathname + url.search));
  }
});
