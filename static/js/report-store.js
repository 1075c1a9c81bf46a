// The intervention report on the phone. Loaded after static/js/offline.js, on
// every page of a technician's (templates/base.html), because the queue may go
// from any of them:
//
// - keeps each report being written, and its photos (already shrunk by the
//   form), in IndexedDB ("portal-reports-<user>"): nothing typed or
//   photographed is lost to a closed tab, a flat battery or no network;
// - sends each photo as soon as it is chosen, two at a time, in parts of
//   512 KB (one, for most photos once shrunk), the first one opening its
//   upload, with its progress: the server answers each part with the offset
//   it has, and after a lost connection the photo resumes from there
//   (orders/report_photos.py) rather than from the start; a part that makes no
//   progress for 30 s is given up and tried again later (2 s, 5 s, 15 s, 30 s,
//   then every minute, and as soon as the network returns);
// - puts the report in the offline queue when it is saved (`queue`), held there
//   while its photos are on their way, and forgets it once the server has it;
//   a report the server refuses goes back to the form, photos and all.
//
// The form's side (what is typed, the photos chosen and shrunk, the progress
// shown) is static/js/report-form.js, on the report's page; it uses
// `window.portal.reports` below, and hears "report:photo", "report:sent" and
// "report:refused" on the document.
"use strict";

(function () {
  var portal = window.portal;
  if (!portal || !portal.queue) return;
  var queue = portal.queue;
  if (!window.indexedDB) {
    // No place for the photos: the reports go with the form as it is (without JavaScript's help).
    queue.held = function () { return false; };
    return;
  }
  var script = document.currentScript;
  var userId = (script && script.getAttribute("data-user")) || "";
  var DATABASE = "portal-reports-" + userId;
  var PART = 512 * 1024; // a photo shrunk here is one part, most often
  var STALLED = 30000; // ms without a byte going up: the part is given up, and tried again later
  var RETRY = [2000, 5000, 15000, 30000, 60000];
  var LABEL = "Rapport d'intervention";

  function emit(name, detail) {
    document.dispatchEvent(new CustomEvent(name, {detail: detail}));
  }

  // --- IndexedDB, in promises --------------------------------------------------

  var opening = null;

  function database() {
    if (!opening) {
      opening = new Promise(function (resolve, reject) {
        var request = window.indexedDB.open(DATABASE, 1);
        request.onupgradeneeded = function () {
          var base = request.result;
          base.createObjectStore("drafts", {keyPath: "key"}).createIndex("order", "order");
          base.createObjectStore("photos", {keyPath: "key"}).createIndex("draft", "draft");
        };
        request.onsuccess = function () { resolve(request.result); };
        request.onerror = function () { reject(request.error); };
      });
    }
    return opening;
  }

  // `work` gets the store and returns a request (whose result the promise gives) or nothing.
  function run(store, mode, work) {
    return database().then(function (base) {
      return new Promise(function (resolve, reject) {
        var transaction = base.transaction(store, mode);
        var request = work(transaction.objectStore(store));
        transaction.oncomplete = function () { resolve(request ? request.result : undefined); };
        transaction.onerror = transaction.onabort = function () { reject(transaction.error); };
        // At once, not when the page gets round to it: it may be leaving (a reload, another app).
        if (mode === "readwrite" && request && transaction.commit) transaction.commit();
      });
    });
  }

  function get(store, key) { return run(store, "readonly", function (s) { return s.get(key); }); }
  function put(store, value) { return run(store, "readwrite", function (s) { return s.put(value); }); }
  function all(store) { return run(store, "readonly", function (s) { return s.getAll(); }); }
  function having(store, index, value) {
    return run(store, "readonly", function (s) { return s.index(index).getAll(value); });
  }

  // --- Reports being written --------------------------------------------------

  // `url`: the report's form; `page`: the order's, where the queue lists the report with the order's other actions.
  function newDraft(order, url, reference, page) {
    return {key: portal.uuid4(), order: String(order), url: url, page: page, reference: reference, fields: [],
            photos: [], status: "draft", reason: "", errors: null, savedAt: null, queuedAt: null};
  }

  function saveDraft(draft) {
    draft.savedAt = new Date().toISOString();
    return put("drafts", draft).then(function () { return draft; });
  }

  function draftsOf(order) {
    return having("drafts", "order", String(order)).then(function (drafts) {
      return drafts.sort(function (a, b) { return (a.savedAt || "").localeCompare(b.savedAt || ""); });
    });
  }

  // The report being written on this order (the latest), or the one sent back by the server.
  function draftFor(order) {
    return draftsOf(order).then(function (drafts) {
      var open = drafts.filter(function (draft) { return draft.status !== "queued"; });
      return open.length ? open[open.length - 1] : null;
    });
  }

  function queuedFor(order) {
    return draftsOf(order).then(function (drafts) {
      return drafts.filter(function (draft) { return draft.status === "queued"; });
    });
  }

  function photosOf(draft) {
    return having("photos", "draft", draft.key).then(function (photos) {
      var byKey = {};
      photos.forEach(function (photo) { byKey[photo.key] = photo; });
      return draft.photos.map(function (key) { return byKey[key]; }).filter(Boolean);
    });
  }

  function forget(draftKey) {
    return run("photos", "readwrite", function (store) {
      store.index("draft").openCursor(IDBKeyRange.only(draftKey)).onsuccess = function (event) {
        var cursor = event.target.result;
        if (cursor) {
          cursor.delete();
          cursor.continue();
        }
      };
    }).then(function () {
      return run("drafts", "readwrite", function (store) { store.delete(draftKey); });
    }).then(function () {
      delete ready[draftKey];
    });
  }

  // --- Photos -------------------------------------------------------------------

  // A photo chosen (already shrunk by the form): kept, then sent as soon as possible.
  function addPhoto(draft, photo) {
    var record = {
      key: portal.uuid4(), draft: draft.key, order: draft.order, opener: photo.opener, kind: photo.kind,
      name: photo.name, blob: photo.blob, size: photo.blob.size, width: photo.width, height: photo.height,
      state: "waiting", received: 0, error: "", addedAt: new Date().toISOString()
    };
    return put("photos", record).then(function () {
      draft.photos.push(record.key);
      return saveDraft(draft);
    }).then(function () {
      pump();
      return record;
    });
  }

  // « Retirer »: gone from the phone, and from the server if it had it (later, if not now).
  function removePhoto(draft, key) {
    if (sending[key]) removed[key] = true; // told to the server once its part is answered
    return get("photos", key).then(function (photo) {
      draft.photos = draft.photos.filter(function (kept) { return kept !== key; });
      return run("photos", "readwrite", function (store) { store.delete(key); }).then(function () {
        return saveDraft(draft);
      }).then(function () {
        if (photo && photo.state !== "waiting" && !sending[key]) forgetOnServer(photo);
      });
    });
  }

  function forgetOnServer(photo) {
    if (!navigator.onLine) return; // forgotten by the server after two weeks anyway
    post(photo.opener + photo.key + "/retirer/", new FormData(), {}).catch(function () {});
  }

  // --- The report queued --------------------------------------------------------

  // Which queued reports have all their photos up (or refused): sent by the queue.
  var ready = {};
  // Reports the form is sending itself (online, right after « Enregistrer »): not by the queue meanwhile.
  var driving = {};

  queue.held = function (entry) {
    if (entry.kind !== "report") return Boolean(entry.kind);
    if (!(entry.key in ready)) {
      checkReady(entry.key); // found out from what the phone has; then the queue goes again
      return true;
    }
    return Boolean(driving[entry.key]) || !ready[entry.key];
  };

  function done(photo) { return photo.state === "ready" || photo.state === "refused"; }

  // Whether the report `key`'s photos are all up; when one is queued and they are, the queue goes.
  function checkReady(key) {
    return get("drafts", key).then(function (draft) {
      if (!draft) {
        // Not (or no longer) on this phone: nothing to wait for; the server says if photos are missing.
        var known = key in ready;
        ready[key] = true;
        if (!known) queue.replay();
        return true;
      }
      return photosOf(draft).then(function (photos) {
        var before = ready[key];
        ready[key] = photos.length === draft.photos.length && photos.every(done);
        if (ready[key] && !before && draft.status === "queued" && !driving[key]) queue.replay();
        return ready[key];
      });
    });
  }

  function entryOf(draft) {
    return {key: draft.key, kind: "report", url: draft.url, fields: draft.entryFields, label: LABEL,
            order: draft.reference, page: draft.page || draft.url, at: draft.queuedAt};
  }

  // « Enregistrer le rapport »: the report, as typed, joins the queue (held until its photos are up).
  function queueReport(draft, fields, at) {
    draft.entryFields = fields;
    draft.queuedAt = at;
    draft.status = "queued";
    draft.reason = "";
    draft.errors = null;
    delete ready[draft.key];
    return saveDraft(draft).then(function () {
      if (!queue.add(entryOf(draft))) throw new Error("queue full");
      return checkReady(draft.key);
    });
  }

  // Sent back by the server with its reasons (the form sent it itself): to correct, photos and all.
  function reopen(draft, reason, errors) {
    queue.remove(draft.key);
    draft.status = "refused";
    draft.reason = reason;
    draft.errors = errors || null;
    return saveDraft(draft);
  }

  document.addEventListener("portal:sent", function (event) {
    var entry = event.detail.entry;
    var result = event.detail.result;
    if (entry.kind !== "report") return;
    if (result === "sent") {
      forget(entry.key).then(function () { emit("report:sent", {key: entry.key}); });
      return;
    }
    get("drafts", entry.key).then(function (draft) {
      if (!draft) return;
      draft.status = "refused";
      draft.reason = result.reason;
      return saveDraft(draft).then(function () {
        emit("report:refused", {key: draft.key, order: draft.order, reason: draft.reason});
      });
    });
  });

  // --- Sending the photos, two at a time, in parts ----------------------------

  var LANES = 2;
  var sending = {};  // key: on its way
  var removed = {};  // key: « Retirer » while on its way
  var looking = false;
  var resting = false;
  var failures = 0;
  var retryTimer = null;
  var progress = {};  // key: bytes up, the part on its way included (not kept)

  // A POST by XMLHttpRequest (fetch tells nothing of an upload's progress):
  // resolves with {status, answer} or "login"; rejects when nothing came back.
  function post(url, body, headers, onProgress) {
    return new Promise(function (resolve, reject) {
      var request = new XMLHttpRequest();
      var watchdog = null;
      function watch() {
        window.clearTimeout(watchdog);
        watchdog = window.setTimeout(function () { request.abort(); }, STALLED);
      }
      request.open("POST", url);
      request.setRequestHeader("X-CSRFToken", queue.token());
      Object.keys(headers).forEach(function (name) { request.setRequestHeader(name, headers[name]); });
      request.onprogress = watch; // the answer coming down
      request.upload.onprogress = function (event) {
        watch();
        if (onProgress) onProgress(event.loaded);
      };
      request.onload = function () {
        window.clearTimeout(watchdog);
        if (new URL(request.responseURL || url, window.location.href).pathname === "/connexion/") {
          resolve("login");
          return;
        }
        var answer = null;
        try {
          answer = JSON.parse(request.responseText);
        } catch (error) {
          answer = null;
        }
        resolve({status: request.status, answer: answer});
      };
      request.onerror = request.onabort = request.ontimeout = function () {
        window.clearTimeout(watchdog);
        reject(new Error("network"));
      };
      watch();
      request.send(body);
    });
  }

  function update(photo, changes) {
    Object.keys(changes).forEach(function (name) { photo[name] = changes[name]; });
    if (removed[photo.key]) return Promise.resolve(); // « Retirer » meanwhile: not brought back
    return put("photos", photo).then(function () {
      emit("report:photo", {photo: photo, sent: photo.received});
      if (done(photo)) return checkReady(photo.draft);
    });
  }

  // One request to the server, once more with a fresh token if it refused the old one.
  function ask(url, body, headers, onProgress, retried) {
    return post(url, body, headers, onProgress).then(function (reply) {
      if (reply !== "login" && reply.status === 403 && !retried) {
        return queue.refreshToken().then(function () { return ask(url, body, headers, onProgress, true); });
      }
      return reply;
    });
  }

  // What an answer means for the photo: "next" (go on from photo.received), "done", "later", "login".
  function follow(photo, reply) {
    if (reply === "login") return Promise.resolve("login");
    var answer = reply.answer || {};
    if (reply.status === 200 && answer.status) {
      if (answer.status === "ready") {
        performance.mark("report-photo-sent"); // read by bench/report_upload.py
        return update(photo, {state: "ready", received: photo.size}).then(function () { return "done"; });
      }
      if (answer.status === "refused") return update(photo, {state: "refused", error: answer.error}).then(function () { return "done"; });
      return update(photo, {state: "sending", received: answer.received}).then(function () { return "next"; });
    }
    if (reply.status === 409 && answer.status === "receiving") {
      // A part lost, or sent twice: the server says where it stands.
      return update(photo, {state: "sending", received: answer.received}).then(function () { return "next"; });
    }
    if (reply.status === 404 && answer.status === "unknown") {
      // Forgotten by the server (two weeks without a report): opened again, from the start.
      return update(photo, {state: "waiting", received: 0}).then(function () { return "next"; });
    }
    if ((reply.status === 400 || reply.status === 409 || reply.status === 413) && answer.error) {
      return update(photo, {state: "refused", error: answer.error}).then(function () { return "done"; });
    }
    if (reply.status === 404) {
      return update(photo, {state: "refused", error: "commande introuvable, ou qui ne vous est plus attribuée."})
        .then(function () { return "done"; });
    }
    return Promise.resolve("later"); // the server down, or busy
  }

  function sendPhoto(photo) {
    var offset = photo.state === "waiting" ? 0 : photo.received;
    var part = photo.blob.slice(offset, offset + PART);
    var headers = {"Upload-Offset": String(offset), "Content-Type": "application/octet-stream"};
    if (offset === 0) {
      // The first part opens the photo's upload: one request for a photo of one part.
      headers["Upload-Length"] = String(photo.size);
      headers["Upload-Kind"] = photo.kind;
      headers["Upload-Name"] = encodeURIComponent(photo.name || "");
    }
    return ask(photo.opener + photo.key + "/", part, headers, function (loaded) {
      progress[photo.key] = offset + Math.min(loaded, part.size);
      emit("report:photo", {photo: photo, sent: progress[photo.key]});
    }).then(function (reply) {
      return follow(photo, reply);
    }, function () {
      return "later"; // nothing came back: no network, or a part stalled
    }).then(function (outcome) {
      return outcome === "next" && !removed[photo.key] ? sendPhoto(photo) : outcome;
    });
  }

  // The photos still to send, the oldest first, but those on their way.
  function nextPhoto() {
    return all("photos").then(function (photos) {
      var waiting = photos.filter(function (photo) { return !done(photo) && !sending[photo.key]; });
      waiting.sort(function (a, b) { return a.addedAt.localeCompare(b.addedAt); });
      return waiting[0] || null;
    });
  }

  // Two photos on their way at once: while one waits for the server's answer
  // (a 3G link's half second, the photo checked), the other keeps the link busy.
  function pump() {
    if (resting || !navigator.onLine || Object.keys(sending).length >= LANES || looking) return;
    looking = true;
    nextPhoto().then(function (photo) {
      looking = false;
      if (!photo || resting || sending[photo.key]) return;
      sending[photo.key] = true;
      sendPhoto(photo).then(function (outcome) {
        delete sending[photo.key];
        if (removed[photo.key]) {
          forgetOnServer(photo);
        } else if (outcome === "login") {
          portal.notify("Votre session a expiré : reconnectez-vous pour envoyer les photos du rapport.");
          emit("report:stalled", {photo: photo, reason: "login"});
          return;
        } else if (outcome === "later") {
          emit("report:stalled", {photo: photo, reason: "network"});
          rest();
          return;
        } else {
          failures = 0;
        }
        pump();
      });
      pump(); // the other lane
    }).catch(function () {
      looking = false;
    });
  }

  // No network, or a part that stalled: everything waits a moment (longer each time).
  function rest() {
    if (resting) return;
    resting = true;
    window.clearTimeout(retryTimer);
    retryTimer = window.setTimeout(function () {
      resting = false;
      pump();
    }, RETRY[Math.min(failures, RETRY.length - 1)]);
    failures += 1;
  }

  // --- Starting ----------------------------------------------------------------

  function start() {
    // The queued reports this phone has: held until their photos are known to be up.
    var checks = queue.list().filter(function (entry) { return entry.kind === "report"; }).map(function (entry) {
      return checkReady(entry.key);
    });
    Promise.all(checks).then(function () { queue.replay(); }, function () {});
    pump();
  }

  window.addEventListener("online", function () {
    failures = 0;
    resting = false;
    window.clearTimeout(retryTimer);
    pump();
  });
  document.addEventListener("visibilitychange", function () { if (!document.hidden) pump(); });

  portal.reports = {
    newDraft: newDraft,
    saveDraft: saveDraft,
    draftFor: draftFor,
    queuedFor: queuedFor,
    photosOf: photosOf,
    addPhoto: addPhoto,
    removePhoto: removePhoto,
    queueReport: queueReport,
    reopen: reopen,
    forget: forget,
    isReady: function (key) { return checkReady(key); },
    // Photos the server no longer has (forgotten after two weeks): sent again.
    resend: function (keys) {
      return Promise.all(keys.map(function (key) {
        return get("photos", key).then(function (photo) {
          if (!photo) return;
          ready[photo.draft] = false; // held again until they are up
          return update(photo, {state: "waiting", received: 0});
        });
      })).then(pump);
    },
    drive: function (key, on) {
      if (on) driving[key] = true;
      else delete driving[key];
    },
    sent: function (key) { return progress[key] || 0; },
    pump: pump
  };

  start();
})();
