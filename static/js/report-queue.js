// The intervention report as a kind of the offline queue (static/js/queue.js),
// shared like it by the pages and the service worker (importScripts), so that
// a report goes with the queue even when no page of the portal is in front.
//
// - The reports being written and their photos (already shrunk on the phone by
//   static/js/report-form.js) are kept in IndexedDB, "portal-reports-<user>":
//   "drafts" (a report's fields, its photos' keys, its state) and "photos"
//   (each photo's Blob, and how much of it the server has).
// - A photo goes up in parts of 512 KB (one, for most photos once shrunk),
//   each with the offset it starts at (`Upload-Offset`), the first one also
//   with the photo's size, kind and name (which open its upload): the server
//   answers each part with the offset it has, and after a lost connection the
//   photo resumes from there (orders/report_photos.py) rather than from the
//   start. `sendPhoto` is shared by the page's uploader (two photos at a time,
//   with their progress: static/js/report-store.js) and the queue's sender;
//   one page or worker at a time sends a photo (a Web Lock of its own), from
//   the state the other left in IndexedDB. Every answer of the server is acted
//   on: 409, on from its offset; 404 "unknown", again from the start; 410
//   "taken" (its report has it), done; 503 "busy" (another request held it),
//   the same part again after Retry-After, a few times, then later.
// - The queue's sender of kind "report" (PortalQueue.SENDERS.report) sends
//   what is left of the report's photos, then the report itself, posted as an
//   action is (its key, its time): once the server has it, the report is
//   forgotten on the phone; refused, it goes back to the form with its reasons,
//   photos and all; if the server no longer has a photo (forgotten after two
//   weeks: 424), the photo is sent again before the next try.
"use strict";

(function (scope) {
  var PART = 512 * 1024; // a photo shrunk on the phone is one part, most often
  var STALLED = 30000; // ms without a byte going up: the part is given up, and tried again later
  var BUSY_TRIES = 5; // 503s in a row for one part before it waits with the others (later)
  var bases = {};

  // --- IndexedDB, in promises -----------------------------------------------------

  function database(user) {
    if (!bases[user]) {
      bases[user] = new Promise(function (resolve, reject) {
        var request = indexedDB.open("portal-reports-" + user, 1);
        request.onupgradeneeded = function () {
          var base = request.result;
          base.createObjectStore("drafts", {keyPath: "key"}).createIndex("order", "order");
          base.createObjectStore("photos", {keyPath: "key"}).createIndex("draft", "draft");
        };
        request.onsuccess = function () { resolve(request.result); };
        request.onerror = function () { reject(request.error); };
      });
      bases[user].catch(function () { delete bases[user]; });
    }
    return bases[user];
  }

  // `work` gets the store and returns a request (whose result the promise gives) or nothing.
  function run(user, store, mode, work) {
    return database(user).then(function (base) {
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

  function get(user, store, key) { return run(user, store, "readonly", function (s) { return s.get(key); }); }
  function put(user, store, value) { return run(user, store, "readwrite", function (s) { return s.put(value); }); }
  function all(user, store) { return run(user, store, "readonly", function (s) { return s.getAll(); }); }
  function having(user, store, index, value) {
    return run(user, store, "readonly", function (s) { return s.index(index).getAll(value); });
  }

  // A report's photos, in its order.
  function photosOf(draft) {
    return having(draft.user, "photos", "draft", draft.key).then(function (photos) {
      var byKey = {};
      photos.forEach(function (photo) { byKey[photo.key] = photo; });
      return draft.photos.map(function (key) { return byKey[key]; }).filter(Boolean);
    });
  }

  // A report gone to the server: off the phone, its photos too.
  function forget(user, draftKey) {
    return run(user, "photos", "readwrite", function (store) {
      store.index("draft").openCursor(IDBKeyRange.only(draftKey)).onsuccess = function (event) {
        var cursor = event.target.result;
        if (cursor) {
          cursor.delete();
          cursor.continue();
        }
      };
    }).then(function () {
      return run(user, "drafts", "readwrite", function (store) { store.delete(draftKey); });
    });
  }

  function done(photo) { return photo.state === "ready" || photo.state === "refused"; }

  // Told to the page, where there is one (the worker tells it by its own message after the queue).
  function emit(name, detail) {
    if (typeof document !== "undefined") document.dispatchEvent(new CustomEvent(name, {detail: detail}));
  }

  // --- A photo, part after part ----------------------------------------------------

  // A POST; the page replaces it with one that tells the upload's progress
  // (XMLHttpRequest: fetch tells nothing of it). Resolves with {status, answer},
  // or "login"; rejects when nothing came back (or a part stalled for 30 s).
  function post(url, body, headers) {
    var controller = typeof AbortController !== "undefined" ? new AbortController() : null;
    // No progress to watch here: given up once far longer than the part takes at 3 KB/s.
    var timer = controller ? setTimeout(function () { controller.abort(); }, STALLED + body.size / 3) : null;
    return fetch(url, {
      method: "POST",
      body: body,
      headers: headers,
      credentials: "same-origin",
      redirect: "manual",
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      clearTimeout(timer);
      if (response.type === "opaqueredirect") return "login";
      var retryAfter = response.headers.get("Retry-After");
      return response.json().then(function (answer) {
        return {status: response.status, answer: answer, retryAfter: retryAfter};
      }, function () {
        return {status: response.status, answer: null, retryAfter: retryAfter};
      });
    }, function (error) {
      clearTimeout(timer);
      throw error;
    });
  }

  // The photo's new state, kept; unless it is no longer on the phone (« Retirer »
  // meanwhile, or its report sent and forgotten by the worker): not brought back.
  function update(photo, changes) {
    Object.keys(changes).forEach(function (name) { photo[name] = changes[name]; });
    if (api.removed[photo.key]) return Promise.resolve();
    return database(photo.user).then(function (base) {
      return new Promise(function (resolve, reject) {
        var transaction = base.transaction("photos", "readwrite");
        var store = transaction.objectStore("photos");
        var kept = false;
        store.get(photo.key).onsuccess = function (event) {
          if (!event.target.result) return;
          kept = true;
          store.put(photo);
        };
        transaction.oncomplete = function () { resolve(kept); };
        transaction.onerror = transaction.onabort = function () { reject(transaction.error); };
      });
    }).then(function (kept) {
      if (kept) emit("report:photo", {photo: photo, sent: photo.received});
    });
  }

  // What an answer means for the photo: "next" (go on from photo.received), "done",
  // "busy" (the same part again, shortly), "later", "login", "token".
  function follow(photo, reply) {
    if (reply === "login") return Promise.resolve("login");
    var answer = reply.answer || {};
    if (reply.status === 200 && answer.status) {
      if (answer.status === "ready") {
        if (scope.performance && scope.performance.mark) scope.performance.mark("report-photo-sent"); // bench/report_upload.py
        return update(photo, {state: "ready", received: photo.size, error: ""}).then(function () { return "done"; });
      }
      if (answer.status === "refused") {
        return update(photo, {state: "refused", error: answer.error}).then(function () { return "done"; });
      }
      return update(photo, {state: "sending", received: answer.received}).then(function () { return "next"; });
    }
    if (reply.status === 409 && answer.status === "receiving") {
      // A part lost, or sent twice: the server says where it stands.
      return update(photo, {state: "sending", received: answer.received}).then(function () { return "next"; });
    }
    if (reply.status === 410 && answer.status === "taken") {
      // Its report took it (this part sent twice, or by the page and the worker): nothing more to send.
      return update(photo, {state: "ready", received: photo.size, error: ""}).then(function () { return "done"; });
    }
    if (reply.status === 503 && answer.status === "busy") return Promise.resolve("busy");
    if (reply.status === 404 && answer.status === "unknown") {
      // Forgotten by the server (two weeks without a report): sent again, from the start.
      return update(photo, {state: "waiting", received: 0}).then(function () { return "next"; });
    }
    if (reply.status === 403) return Promise.resolve("token");
    if ((reply.status === 400 || reply.status === 413) && answer.error) {
      return update(photo, {state: "refused", error: answer.error}).then(function () { return "done"; });
    }
    if (reply.status === 404) {
      var gone = "commande introuvable, ou qui ne vous est plus attribuée.";
      return update(photo, {state: "refused", error: gone}).then(function () { return "done"; });
    }
    return Promise.resolve("later"); // the server down, or busy
  }

  var inflight = {};

  function pause(seconds) {
    var ms = Math.min(Math.max(parseInt(seconds, 10) || 1, 1), 30) * 1000;
    return new Promise(function (resolve) { setTimeout(resolve, ms); });
  }

  // `work` alone for this photo among the pages and the worker (Web Locks), where the browser has them.
  function alone(photo, work) {
    var locks = scope.navigator && scope.navigator.locks;
    return locks ? locks.request("portal-photo-" + photo.key, work) : work();
  }

  // Sends `photo` until it is whole (or refused): resolves with "done", "later",
  // "login" or "token". One at a time per photo in this page or worker, and
  // among them (alone): each goes on from what the other kept.
  function sendPhoto(photo, token, onProgress) {
    if (inflight[photo.key]) return inflight[photo.key];
    var busy = 0;
    var retryAfter = null;
    function step() {
      if (api.removed[photo.key]) return Promise.resolve("done");
      var offset = photo.state === "waiting" ? 0 : photo.received;
      var part = photo.blob.slice(offset, offset + PART);
      var headers = {"X-CSRFToken": token, "Upload-Offset": String(offset), "Content-Type": "application/octet-stream"};
      if (offset === 0) {
        // The first part opens the photo's upload: one request for a photo of one part.
        headers["Upload-Length"] = String(photo.size);
        headers["Upload-Kind"] = photo.kind;
        headers["Upload-Name"] = encodeURIComponent(photo.name || "");
      }
      return api.post(photo.opener + photo.key + "/", part, headers, onProgress && function (loaded) {
        onProgress(offset + Math.min(loaded, part.size));
      }).then(function (reply) {
        retryAfter = reply && reply.retryAfter;
        return follow(photo, reply);
      }, function () {
        return "later"; // nothing came back: no network, or a part stalled
      }).then(function (outcome) {
        if (outcome === "busy") {
          busy += 1;
          return busy > BUSY_TRIES ? "later" : pause(retryAfter).then(step);
        }
        busy = 0;
        return outcome === "next" ? step() : outcome;
      });
    }
    inflight[photo.key] = alone(photo, function () {
      // As kept: the other page or the worker may have sent it meanwhile, or its report gone with it.
      return get(photo.user, "photos", photo.key).then(function (kept) {
        if (!kept) return "done";
        photo.state = kept.state;
        photo.received = kept.received;
        photo.error = kept.error;
        return done(photo) ? "done" : step();
      });
    }).catch(function () {
      return "later";
    }).then(function (outcome) {
      delete inflight[photo.key];
      return outcome;
    });
    return inflight[photo.key];
  }

  // Every photo of the report up (or refused): "ready", else "later", "login" or "token".
  function sendPhotos(user, draftKey, token) {
    return get(user, "drafts", draftKey).then(function (draft) {
      if (!draft) return "ready"; // not on this phone: the server says what is missing
      return photosOf(draft).then(function (photos) {
        var left = photos.filter(function (photo) { return !done(photo); });
        if (!left.length) return "ready";
        var photo = left[0];
        return (inflight[photo.key] || sendPhoto(photo, token)).then(function (outcome) {
          return outcome === "done" ? sendPhotos(user, draftKey, token) : outcome;
        });
      });
    });
  }

  // --- The report, as a kind of the queue ------------------------------------------

  // What the server's answer to the report means for the phone.
  function settle(entry, response) {
    if (response.status === 200) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        return forget(entry.user, entry.key).then(function () {
          emit("report:sent", {key: entry.key, url: answer.url || ""});
        });
      });
    }
    if (response.status === 409) {
      return response.json().catch(function () { return {}; }).then(function (answer) {
        return get(entry.user, "drafts", entry.key).then(function (draft) {
          if (!draft) return null;
          draft.status = "refused";
          draft.reason = (answer.errors || []).join(" ") || "rapport refusé.";
          draft.errors = answer.fields || null;
          return put(entry.user, "drafts", draft).then(function () {
            emit("report:refused", {key: draft.key, order: draft.order, reason: draft.reason});
          });
        });
      });
    }
    if (response.status === 424) {
      // Photos the server no longer has: sent again before the next try.
      return response.json().catch(function () { return {}; }).then(function (answer) {
        return Promise.all((answer.missing || []).map(function (key) {
          return get(entry.user, "photos", key).then(function (photo) {
            if (photo && done(photo)) return update(photo, {state: "waiting", received: 0});
          });
        }));
      });
    }
    return Promise.resolve();
  }

  var SERVER_BUSY = 503; // what the queue reads as "later"

  // `again`: sent once more right away after a 424 (photos the server forgot, e.g. after
  // two weeks: static/js/report-store.js keeps them), rather than at the queue's next try,
  // which for the service worker alone is Background Sync's next retry, minutes later.
  function sendReport(entry, token, again) {
    return sendPhotos(entry.user, entry.key, token).then(function (state) {
      if (state === "token") return new Response(null, {status: 403}); // the queue renews it, and tries again
      if (state !== "ready") return new Response(null, {status: SERVER_BUSY});
      var data = new FormData();
      entry.fields.forEach(function (field) { data.append(field[0], field[1]); });
      return fetch(entry.url, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        redirect: "manual",
        headers: {"X-CSRFToken": token, "X-Portal-Replay": "1"}
      }).then(function (response) {
        return settle(entry, response.clone()).then(function () {
          if (response.status === 424 && !again) return sendReport(entry, token, true);
          return response;
        });
      });
    });
  }

  var api = {
    database: database,
    get: get,
    put: put,
    all: all,
    having: having,
    photosOf: photosOf,
    forget: forget,
    done: done,
    emit: emit,
    update: update,
    sendPhoto: sendPhoto,
    sendPhotos: sendPhotos,
    post: post,
    removed: {},
    inflight: inflight
  };
  scope.PortalReports = api;
  if (scope.PortalQueue) scope.PortalQueue.SENDERS.report = sendReport;
})(self);
