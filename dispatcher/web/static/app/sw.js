// The agent app's service worker.  The shell (page, scripts, styles, icons) is cached on
// install so the app opens without network; every request is network-first (a deploy shows at
// once) and falls back to the cache when offline.  Of the API, only the GETs the app reads
// at start (its orders, the catalogue, place names) are kept, so the last known list shows
// offline; everything else (claims, actions, websockets) goes to the network only.
const SHELL = "bangban-shell-v2";
const API = "bangban-api";
const FILES = [
  "/app/",
  "/app/app.js",
  "/app/points.js",
  "/app/app.css",
  "/app/manifest.json",
  "/static/common/api.js",
  "/static/common/live.js",
  "/static/common/fmt.js",
  "/static/common/base.css",
  "/static/icons/icon.svg",
  "/static/icons/icon-192.png",
  "/static/icons/icon-512.png",
];
const CACHED_API = [/^\/v1\/agent\/orders$/, /^\/v1\/agent\/points$/, /^\/v1\/catalog(\/|$)/, /^\/v1\/places$/];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches.keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== SHELL && k !== API).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

async function networkFirst(request, cacheName) {
  const cache = await caches.open(cacheName);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (err) {
    const hit = await cache.match(request, { ignoreSearch: cacheName === SHELL });
    if (hit) return hit;
    throw err;
  }
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== location.origin) return;
  if (url.pathname.startsWith("/v1/")) {
    if (CACHED_API.some((re) => re.test(url.pathname))) event.respondWith(networkFirst(request, API));
    return;
  }
  if (url.pathname.startsWith("/app/") || url.pathname.startsWith("/static/")) {
    event.respondWith(networkFirst(request, SHELL));
  }
});
