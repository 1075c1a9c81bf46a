// The portal's service worker (rendered by orders/offline.py): the technician's
// pages stay readable without network. Static files: cache first. The list of
// orders and each order: network first, then the copy kept at the last visit.
// Everything else (sign-in, forms sent, admin): the network, untouched.
// The page's side (the queue of actions taken offline, the registration of
// this worker, the pages kept ahead) is static/js/offline.js. The queue itself
// (IndexedDB) and its replay are static/js/queue.js, which this worker shares:
// it sends the queue when the browser says the network is back (Background
// Sync, "portal-queue"), even with no page of the portal open, and after each
// page it serves from the network (where the browser has no Background Sync).
// A report in the queue goes with its photos (static/js/report-queue.js, the
// queue's kind "report", which this worker shares too).
"use strict";

importScripts({{ queue_script|safe }}, {{ report_queue_script|safe }});

var VERSION = "{{ version }}";
var STATIC_CACHE = "portal-static-" + VERSION;
var PAGES_CACHE = {{ pages_cache|safe }};
var ASSETS = {{ assets|safe }};
var PAGES = /^\/(mes-commandes\/|commandes\/\d+\/(rapports\/\d+\/|rapport\/)?)$/;
var NETWORK_WAIT = 8000;  // ms: a basement's weak signal, then the kept copy

self.addEventListener("install", function (event) {
  event.waitUntil(
    caches.open(STATIC_CACHE).then(function (cache) {
      return cache.addAll(ASSETS);
    }).then(function () {
      return self.skipWaiting();
    })
  );
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (names) {
      return Promise.all(names.filter(function (name) {
        return name.indexOf("portal-static-") === 0 && name !== STATIC_CACHE;
      }).map(function (name) {
        return caches.delete(name);
      }));
    }).then(function () {
      return self.clients.claim();
    })
  );
});

function withinTime(promise, ms) {
  return new Promise(function (resolve, reject) {
    var timer = setTimeout(function () { reject(new Error("timeout")); }, ms);
    promise.then(function (value) { clearTimeout(timer); resolve(value); },
                 function (error) { clearTimeout(timer); reject(error); });
  });
}

function offlinePage() {
  var html = '<!doctype html><html lang="fr"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    '<title>Hors ligne – Portail prestataire</title><link rel="stylesheet" href="' + ASSETS[0] + '"></head>' +
    '<body><header class="topbar"><a class="brand" href="/mes-commandes/">Portail prestataire</a></header>' +
    '<main class="page"><section class="card"><h1>Pas de réseau</h1>' +
    "<p>Cette page n'a pas encore été ouverte sur ce téléphone : elle n'est pas disponible hors ligne.</p>" +
    '<p><a class="button" href="/mes-commandes/">Mes commandes</a></p></section></main></body></html>';
  return new Response(html, {status: 503, headers: {"Content-Type": "text/html; charset=utf-8"}});
}

// An order no longer the technician's: sent back to their list, or not found.
function gone(response) {
  return response.status === 404 || (response.redirected && new URL(response.url).pathname === "/mes-commandes/");
}

function page(request) {
  var url = new URL(request.url);
  return caches.open(PAGES_CACHE).then(function (cache) {
    return withinTime(fetch(request), NETWORK_WAIT).then(function (response) {
      // A redirect (to the sign-in page) or an error is shown, not kept.
      if (response.ok && !response.redirected && response.type === "basic") {
        cache.put(url.href, response.clone());
      } else if (url.pathname !== "/mes-commandes/" && gone(response)) {
        cache.delete(url.href, {ignoreSearch: true, ignoreVary: true});
      }
      return response;
    }).catch(function () {
      return cache.match(url.href, {ignoreVary: true}).then(function (kept) {
        return kept || cache.match(url.origin + url.pathname, {ignoreSearch: true, ignoreVary: true});
      }).then(function (kept) {
        return kept || offlinePage();
      });
    });
  });
}

function asset(request) {
  return caches.open(STATIC_CACHE).then(function (cache) {
    return cache.match(request).then(function (kept) {
      return kept || fetch(request);
    });
  });
}

// --- The queue, sent from here --------------------------------------------------

var sending = null;

// The queue of the person signed in, sent in order (PortalQueue.replay), then
// every page of the portal told what became of it; unless a page of the portal
// is in front, which sends it itself.
function sendQueue() {
  if (sending) return sending;
  sending = Promise.all([PortalQueue.count(), self.clients.matchAll({type: "window"})]).then(function (found) {
    // A page of the portal in front sends it itself (static/js/offline.js), and shows how it went.
    var inFront = found[1].some(function (client) { return client.visibilityState === "visible"; });
    if (!found[0] || inFront) return null;
    return PortalQueue.signedIn().then(function (session) {
      if (!session) return null;  // signed out, or no network: the next time
      var current = session;
      return PortalQueue.replay(session.user, {
        token: function () { return Promise.resolve(current.token); },
        renew: function () {
          return PortalQueue.signedIn().then(function (fresh) { if (fresh) current = fresh; });
        }
      }).then(function (summary) {
        return self.clients.matchAll({type: "window"}).then(function (windows) {
          var message = {type: "portal-queue", user: session.user, changed: summary.changed, gone: summary.gone, stopped: summary.stopped};
          windows.forEach(function (client) { client.postMessage(message); });
          // Still waiting (no network after all): Background Sync tries again.
          if (summary.stopped === "later") throw new Error("network");
        });
      });
    });
  }).then(function (value) {
    sending = null;
    return value;
  }, function (error) {
    sending = null;
    throw error;
  });
  return sending;
}

self.addEventListener("sync", function (event) {
  if (event.tag === "portal-queue") event.waitUntil(sendQueue());
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  if (ASSETS.indexOf(url.pathname) !== -1) {
    event.respondWith(asset(request));
  } else if (request.mode === "navigate" && PAGES.test(url.pathname)) {
    var served = page(request);
    event.respondWith(served);
    // A page served: the network may be back, and the queue goes (without Background Sync too).
    event.waitUntil(served.then(function () { return sendQueue(); }).catch(function () {}));
  } else if (request.mode === "navigate") {
    event.waitUntil(sendQueue().catch(function () {}));
  }
});
