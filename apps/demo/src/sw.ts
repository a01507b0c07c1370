/// <reference lib="webworker" />
// Serves the app shell and the worker script from a cache, so the app starts offline after
// the first visit (a Worker cannot be created offline unless a service worker serves it).
declare const BUILD_ID: string;

const sw = self as unknown as ServiceWorkerGlobalScope;
const CACHE = `edgelog-demo-${BUILD_ID}`;
const SHELL = ['/', '/index.html', '/app.js', '/worker.js', '/styles.css', '/manifest.webmanifest'];

sw.addEventListener('install', (event: ExtendableEvent) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((c) => c.addAll(SHELL))
      .then(() => sw.skipWaiting()),
  );
});

sw.addEventListener('activate', (event: ExtendableEvent) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => sw.clients.claim()),
  );
});

sw.addEventListener('fetch', (event: FetchEvent) => {
  const url = new URL(event.request.url);
  if (event.request.method !== 'GET' || url.origin !== location.origin) return;
  if (url.pathname.startsWith('/v1/') || url.pathname.startsWith('/demo/') || url.pathname === '/health')
    return;
  const key = SHELL.includes(url.pathname) ? url.pathname : '/';
  // Network first keeps a deployed change visible at once; the cache answers when offline.
  event.respondWith(
    fetch(event.request)
      .then(async (res) => {
        if (res.ok && SHELL.includes(url.pathname)) await (await caches.open(CACHE)).put(key, res.clone());
        return res;
      })
      .catch(async () => (await caches.match(key)) ?? (await caches.match('/')) ?? Response.error()),
  );
});
