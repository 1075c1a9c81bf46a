// The intervention report on a technician's page (templates/base.html loads it
// after static/js/offline.js and static/js/report-queue.js, on every page of
// theirs: the photos go on from any of them):
//
// - the reports being written, kept on the phone (`window.portal.reports`, for
//   static/js/report-form.js): nothing typed or photographed is lost to a
//   closed tab, a flat battery or no network;
// - each photo sent as soon as it is chosen, two at a time (while one waits
//   for the server's answer, the other keeps the link busy), with its
//   progress ("report:photo" events): the parts and their offsets are
//   static/js/report-queue.js's; a part that makes no progress for 30 s is
//   given up ("report:stalled") and tried again after 2, 5, 15, 30 s, then
//   every minute, and as soon as the network returns;
// - « Enregistrer »: the report joins the offline queue (kind "report"), which
//   sends what is left of its photos, then the report, in order with the other
//   actions ("report:sent" with its page, or "report:refused").
"use strict";

(function () {
  var portal = window.portal;
  var queue = window.PortalQueue;
  var core = window.PortalReports;
  if (!portal || !queue || !core || !window.indexedDB) return;
  var script = document.currentScript;
  var user = (script && script.getAttribute("data-user")) || "";
  var STALLED = 30000; // ms without a byte going up
  var RETRY = [2000, 5000, 15000, 30000, 60000];
  var LANES = 2;
  var LABEL = "Rapport d'intervention";
  var body = document.body;

  function token() {
    try {
      return JSON.parse(body.getAttribute("data-hx-headers"))["X-CSRFToken"];
    } catch (error) {
      return "";
    }
  }

  function renewToken() {
    return queue.signedIn().then(function (session) {
      if (session) body.setAttribute("data-hx-headers", JSON.stringify({"X-CSRFToken": session.token}));
    });
  }

  // --- Reports being written --------------------------------------------------------

  // `url`: the report's form; `page`: the order's, where the queue lists the report among its other actions.
  function newDraft(order, url, reference, page) {
    return {key: portal.uuid4(), user: user, order: String(order), url: url, page: page, reference: reference,
            fields: [], photos: [], status: "draft", reason: "", errors: null, savedAt: null, queuedAt: null};
  }

  function saveDraft(draft) {
    draft.savedAt = new Date().toISOString();
    return core.put(user, "drafts", draft).then(function () { return draft; });
  }

  function draftsOf(order) {
    return core.having(user, "drafts", "order", String(order)).then(function (drafts) {
      return drafts.sort(function (a, b) { return (a.savedAt || "").localeCompare(b.savedAt || ""); });
    });
  }

  // The report being written on this order (the latest), or the one the server sent back.
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

  // A photo chosen (already shrunk by the form): kept, then sent as soon as possible.
  function addPhoto(draft, photo) {
    var record = {
      key: portal.uuid4(), user: user, draft: draft.key, order: draft.order, opener: photo.opener, kind: photo.kind,
      name: photo.name, blob: photo.blob, size: photo.blob.size, width: photo.width, height: photo.height,
      state: "waiting", received: 0, error: "", addedAt: new Date().toISOString()
    };
    return core.put(user, "photos", record).then(function () {
      draft.photos.push(record.key);
      return saveDraft(draft);
    }).then(function () {
      pump();
      return record;
    });
  }

  // « Retirer »: gone from the phone, and from the server if it had it (once its part is answered).
  function removePhoto(draft, key) {
    var onItsWay = core.inflight[key];
    if (onItsWay) core.removed[key] = true;
    return core.get(user, "photos", key).then(function (photo) {
      draft.photos = draft.photos.filter(function (kept) { return kept !== key; });
      return run(function (store) { store.delete(key); }).then(function () {
        return saveDraft(draft);
      }).then(function () {
        if (!photo) return;
        if (onItsWay) {
          onItsWay.then(function () { forgetOnServer(photo); });
        } else if (photo.state !== "waiting") {
          forgetOnServer(photo);
        }
      });
    });
  }

  function run(work) {
    return core.database(user).then(function (base) {
      return new Promise(function (resolve, reject) {
        var transaction = base.transaction("photos", "readwrite");
        work(transaction.objectStore("photos"));
        transaction.oncomplete = function () { resolve(); };
        transaction.onerror = transaction.onabort = function () { reject(transaction.error); };
      });
    });
  }

  function forgetOnServer(photo) {
    if (!navigator.onLine) return; // forgotten by the server after two weeks anyway
    var form = new FormData();
    fetch(photo.opener + photo.key + "/retirer/", {
      method: "POST", body: form, credentials: "same-origin", headers: {"X-CSRFToken": token()}
    }).catch(function () {});
  }

  // « Enregistrer le rapport »: the report, as typed, joins the queue, which sends its photos, then it.
  function queueReport(draft, fields, at) {
    draft.status = "queued";
    draft.queuedAt = at;
    draft.reason = "";
    draft.errors = null;
    return saveDraft(draft).then(function () {
      return queue.add({
        user: user, kind: "report", key: draft.key, url: draft.url, fields: fields, label: LABEL,
        order: draft.reference, page: draft.page || draft.url, at: at
      });
    }).then(function () {
      document.dispatchEvent(new CustomEvent("portal:queued")); // offline.js shows it, and sends the queue
      return draft;
    });
  }

  // Whether the report's photos are all up (or refused).
  function photosUp(draft) {
    return core.photosOf(draft).then(function (photos) {
      return photos.length === draft.photos.length && photos.every(core.done);
    });
  }

  // --- Sending the photos, two at a time --------------------------------------------

  // The page's POST: by XMLHttpRequest, which tells the upload's progress; a
  // part that makes no progress for 30 s is given up.
  core.post = function (url, content, headers, onProgress) {
    return new Promise(function (resolve, reject) {
      var request = new XMLHttpRequest();
      var watchdog = null;
      function watch() {
        window.clearTimeout(watchdog);
        watchdog = window.setTimeout(function () { request.abort(); }, STALLED);
      }
      request.open("POST", url);
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
        resolve({status: request.status, answer: answer, retryAfter: request.getResponseHeader("Retry-After")});
      };
      request.onerror = request.onabort = request.ontimeout = function () {
        window.clearTimeout(watchdog);
        reject(new Error("network"));
      };
      watch();
      request.send(content);
    });
  };

  var lanes = 0;
  var looking = false;
  var resting = false;
  var failures = 0;
  var retryTimer = null;
  var progress = {};  // key: bytes up, the part on its way included (not kept)
  var renewed = false;

  // The photos still to send, the oldest first, but those on their way.
  function nextPhoto() {
    return core.all(user, "photos").then(function (photos) {
      var waiting = photos.filter(function (photo) { return !core.done(photo) && !core.inflight[photo.key]; });
      waiting.sort(function (a, b) { return a.addedAt.localeCompare(b.addedAt); });
      return waiting[0] || null;
    });
  }

  function pump() {
    if (resting || !navigator.onLine || lanes >= LANES || looking) return;
    looking = true;
    nextPhoto().then(function (photo) {
      looking = false;
      if (!photo || resting || core.inflight[photo.key]) return;
      lanes += 1;
      core.sendPhoto(photo, token(), function (sent) {
        progress[photo.key] = sent;
        core.emit("report:photo", {photo: photo, sent: sent});
      }).then(function (outcome) {
        lanes -= 1;
        if (outcome === "token" && !renewed) {
          renewed = true;
          return renewToken().then(pump);
        }
        if (outcome === "login") {
          portal.notify("Votre session a expiré : reconnectez-vous pour envoyer les photos du rapport.");
          core.emit("report:stalled", {photo: photo, reason: "login"});
          return;
        }
        if (outcome === "later" || outcome === "token") {
          core.emit("report:stalled", {photo: photo, reason: "network"});
          rest();
          return;
        }
        failures = 0;
        goWhenUp(photo.draft);
        pump();
      });
      pump(); // the other lane
    }).catch(function () {
      looking = false;
    });
  }

  // A queued report whose photos are now all up: the queue goes (it may have stopped on them).
  function goWhenUp(draftKey) {
    core.get(user, "drafts", draftKey).then(function (draft) {
      if (!draft || draft.status !== "queued") return;
      return photosUp(draft).then(function (up) {
        if (up) document.dispatchEvent(new CustomEvent("portal:queued"));
      });
    }).catch(function () {});
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

  window.addEventListener("online", function () {
    failures = 0;
    resting = false;
    window.clearTimeout(retryTimer);
    pump();
  });
  document.addEventListener("visibilitychange", function () { if (!document.hidden) pump(); });
  // A photo the server no longer had, set to be sent again (report-queue.js): sent.
  document.addEventListener("report:photo", function (event) {
    if (event.detail.photo.state === "waiting" && !core.inflight[event.detail.photo.key]) pump();
  });

  portal.reports = {
    newDraft: newDraft,
    saveDraft: saveDraft,
    draftFor: draftFor,
    queuedFor: queuedFor,
    photosOf: core.photosOf,
    addPhoto: addPhoto,
    removePhoto: removePhoto,
    queueReport: queueReport,
    photosUp: photosUp,
    sent: function (key) { return progress[key] || 0; },
    pump: pump
  };

  pump();
})();
