// The technician's offline queue: the actions taken without network (or lost on
// a weak signal, or sent after the session expired), kept on the phone in
// IndexedDB, and their replay. Shared by the page (static/js/offline.js, which
// shows them) and the service worker (templates/offline/sw.js, importScripts),
// so that the queue goes as soon as the network returns even when no page of
// the portal is in front (Background Sync), or on the next page the worker
// serves, or from any open page.
//
// An entry: {seq, user, key, kind, url, fields, label, order, page, at}. Kind
// "form" (an action's form, posted again with its key and time); each kind has
// its sender in SENDERS, so another kind (a report with its photos) adds its own.
// A refusal the server kept (orders/conflicts.py) comes back as {reason, advice,
// gone}: it is stored for the page to show until the technician has read it.
"use strict";

(function (scope) {
  var DB_NAME = "portal-offline";
  var STORES = ["queue", "refused"];
  // Shared with orders/offline.py (PAGES_CACHE): the pages kept for offline reading.
  var PAGES_CACHE = "portal-pages";
  var opening = null;

  // --- IndexedDB, in promises -----------------------------------------------------

  function open() {
    if (!opening) {
      opening = new Promise(function (resolve, reject) {
        var request = indexedDB.open(DB_NAME, 1);
        request.onupgradeneeded = function () {
          STORES.forEach(function (name) {
            // `seq` keeps the order the actions were taken in; `user` whose they are.
            request.result.createObjectStore(name, {keyPath: "seq", autoIncrement: true}).createIndex("user", "user");
          });
        };
        request.onsuccess = function () { resolve(request.result); };
        request.onerror = function () { reject(request.error); };
      });
      opening.catch(function () { opening = null; });
    }
    return opening;
  }

  // Runs work(store, done) in one transaction; resolves with what done() was given.
  function transact(name, mode, work) {
    return open().then(function (base) {
      return new Promise(function (resolve, reject) {
        var tx = base.transaction(name, mode);
        var result;
        tx.oncomplete = function () { resolve(result); };
        tx.onerror = tx.onabort = function () { reject(tx.error); };
        work(tx.objectStore(name), function (value) { result = value; });
      });
    });
  }

  function list(name, user) {
    return transact(name, "readonly", function (store, done) {
      var request = store.index("user").getAll(String(user));
      request.onsuccess = function () {
        done(request.result.sort(function (a, b) { return a.seq - b.seq; }));
      };
    });
  }

  function count() {
    return transact("queue", "readonly", function (store, done) {
      var request = store.count();
      request.onsuccess = function () { done(request.result); };
    });
  }

  // --- The queue ------------------------------------------------------------------

  // Keeps `entry` (unless its key is already there): resolves true when kept.
  function add(entry) {
    entry.user = String(entry.user);
    entry.kind = entry.kind || "form";
    return transact("queue", "readwrite", function (store, done) {
      var request = store.index("user").getAll(entry.user);
      request.onsuccess = function () {
        if (request.result.some(function (queued) { return queued.key === entry.key; })) return done(false);
        store.add(entry);
        done(true);
      };
    });
  }

  function remove(seq) {
    return transact("queue", "readwrite", function (store) { store.delete(seq); });
  }

  function keepRefusal(entry, result) {
    var refusal = {
      user: entry.user, key: entry.key, label: entry.label, fields: entry.fields, order: entry.order, page: entry.page, at: entry.at,
      reason: result.reason, advice: result.advice || "", gone: !!result.gone
    };
    return transact("refused", "readwrite", function (store) { store.add(refusal); });
  }

  function forgetRefusals(user) {
    return list("refused", user).then(function (refusals) {
      return transact("refused", "readwrite", function (store) {
        refusals.forEach(function (refusal) { store.delete(refusal.seq); });
      });
    });
  }

  // A page of an order no longer the technician's: not kept for offline reading.
  function forgetPage(page) {
    if (typeof caches === "undefined" || !page) return Promise.resolve();
    return caches.open(PAGES_CACHE).then(function (cache) {
      return cache.delete(new URL(page, scope.location.href).href, {ignoreSearch: true, ignoreVary: true});
    }).catch(function () {});
  }

  // --- Sending ----------------------------------------------------------------------

  // The server's answer to a replay, as the queue reads it: "sent" (applied, or had
  // been), a refusal {reason, advice, gone}, "login" (signed out: keep it), "token"
  // (the CSRF token is stale: ask again), or "later" (no network, server down).
  function outcome(response) {
    if (response.type === "opaqueredirect") return "login";
    if (response.status === 200) return "sent";
    if (response.status === 409) {
      return response.json().then(function (answer) {
        return {
          reason: answer.reason || (answer.errors || []).join(" ") || "action refusée.",
          advice: answer.advice || "",
          gone: !!answer.gone
        };
      }, function () { return {reason: "action refusée.", advice: ""}; });
    }
    if (response.status === 404) {
      return {reason: "commande introuvable, ou qui ne vous est plus attribuée.", advice: "Appelez votre conducteur de travaux.", gone: true};
    }
    if (response.status === 403) return "token";
    if (response.status === 400 || response.status === 413) return {reason: "demande refusée (" + response.status + ").", advice: "Appelez votre conducteur de travaux."};
    return "later";
  }

  var SENDERS = {
    form: function (entry, token) {
      var data = new FormData();
      entry.fields.forEach(function (field) { data.append(field[0], field[1]); });
      return fetch(entry.url, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        redirect: "manual",
        headers: {"X-CSRFToken": token, "X-Portal-Replay": "1"}
      });
    }
  };

  function send(entry, session) {
    var sender = SENDERS[entry.kind || "form"];
    if (!sender) return Promise.resolve("later");
    function attempt(retried) {
      return session.token().then(function (token) {
        return sender(entry, token);
      }).then(outcome, function () { return "later"; }).then(function (result) {
        if (result !== "token") return result;
        if (retried) return {reason: "demande refusée (403).", advice: "Rechargez la page, puis recommencez."};
        return session.renew().then(function () { return attempt(true); });
      });
    }
    return attempt(false);
  }

  // The signed-in person, and a fresh CSRF token, from their list of orders (a
  // service worker has no page to read them from).
  function signedIn() {
    return fetch("/mes-commandes/", {credentials: "same-origin", cache: "no-store", redirect: "manual"}).then(function (response) {
      return response.ok ? response.text() : "";
    }).then(function (html) {
      var token = /"X-CSRFToken": "([^"]+)"/.exec(html);
      var user = /data-user="(\d+)"/.exec(html);
      return token && user ? {token: token[1], user: user[1]} : null;
    }, function () { return null; });
  }

  // Sends `user`'s queue, in order, once at a time on this phone (a page and the
  // worker may both try: the key makes a second arrival harmless anyway).
  // Resolves with {changed, stopped ("login", "later" or ""), gone: [pages]}.
  function replay(user, session) {
    user = String(user);
    var summary = {changed: false, stopped: "", gone: [], busy: false};
    function next() {
      return list("queue", user).then(function (queue) {
        if (!queue.length) return summary;
        var entry = queue[0];
        return send(entry, session).then(function (result) {
          if (result === "later" || result === "login") {
            summary.stopped = result;
            return summary;
          }
          summary.changed = true;
          var settled = remove(entry.seq);
          if (result !== "sent") {
            settled = settled.then(function () { return keepRefusal(entry, result); });
            if (result.gone && summary.gone.indexOf(entry.page) === -1) {
              summary.gone.push(entry.page);
              settled = settled.then(function () { return forgetPage(entry.page); });
            }
          }
          return settled.then(next);
        });
      });
    }
    var locks = scope.navigator && scope.navigator.locks;
    if (!locks) return next();
    return locks.request("portal-queue-" + user, {ifAvailable: true}, function (lock) {
      if (!lock) {
        summary.busy = true;
        return summary;
      }
      return next();
    });
  }

  scope.PortalQueue = {
    add: add,
    entries: function (user) { return list("queue", String(user)); },
    refusals: function (user) { return list("refused", String(user)); },
    forgetRefusals: function (user) { return forgetRefusals(String(user)); },
    forgetPage: forgetPage,
    count: count,
    replay: replay,
    signedIn: signedIn,
    SENDERS: SENDERS
  };
})(self);
