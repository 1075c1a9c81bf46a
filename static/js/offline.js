// The technician's offline mode, on the page's side. Loaded after
// static/js/portal.js, and only on technicians' pages (templates/base.html):
//
// - registers the service worker (templates/offline/sw.js, served by
//   orders/offline.py) that keeps their pages readable offline, and keeps the
//   list and every order on it for the basement, at most every 10 minutes;
// - keeps the actions taken without network, or lost on a weak signal, or sent
//   after the session expired, in a queue on the phone ("n modifications en
//   attente"), and replays them in order, with their original time and key,
//   when the network returns (the server answers each replay in JSON: applied,
//   already applied, or refused with the reason, which is then shown);
// - forgets the pages kept for another person signed in on this phone, and,
//   on signing out, asks before leaving actions unsent and forgets the pages.
//
// portal.js hands over, through `window.portal.keep`, the actions that cannot
// reach the server: the forms marked `data-offline` are kept here.
"use strict";

(function () {
  var portal = window.portal;
  if (!portal) return;
  var body = document.body;
  var script = document.currentScript;
  var userId = (script && script.getAttribute("data-user")) || "";
  var QUEUE = "portal-queue-" + userId;
  var REFUSED = "portal-refused-" + userId;
  // Shared with templates/offline/sw.js (orders/offline.py gives it its name).
  var PAGES_CACHE = "portal-pages";
  var PRECACHED_AT = "portal-precached-" + userId;
  var PRECACHE_EVERY = 10 * 60 * 1000;
  var notify = portal.notify;

  // --- Small helpers ---------------------------------------------------------

  function load(name) {
    try {
      return JSON.parse(window.localStorage.getItem(name)) || [];
    } catch (error) {
      return [];
    }
  }

  function save(name, list) {
    try {
      window.localStorage.setItem(name, JSON.stringify(list));
      return true;
    } catch (error) {
      return false;
    }
  }

  function timeOf(iso) {
    var moment = new Date(iso);
    return moment.toLocaleString("fr-FR", {weekday: "short", day: "numeric", month: "short", hour: "2-digit", minute: "2-digit"});
  }

  function csrfToken() {
    try {
      return JSON.parse(body.getAttribute("data-hx-headers"))["X-CSRFToken"];
    } catch (error) {
      return "";
    }
  }

  // --- Actions that cannot reach the server: kept -----------------------------

  // Called by portal.js: no network when the form is sent, the request lost,
  // or the session expired meanwhile. True when the action is this queue's.
  portal.keep = function (form) {
    if (!form.hasAttribute || !form.hasAttribute("data-offline")) return false;
    enqueue(form);
    return true;
  };

  // A weak signal should not keep the technician waiting: past 20 s, the action
  // goes to the queue (its key makes a late arrival of the first harmless).
  document.addEventListener("htmx:beforeSend", function (event) {
    var form = portal.requester(event);
    if (form && form.hasAttribute && form.hasAttribute("data-offline")) {
      event.detail.xhr.timeout = 20000;
    }
  });

  // Signing out: the actions still waiting, and the pages kept. Capture phase
  // on the document, like portal.js's (which runs first): before the form goes.
  document.addEventListener(
    "submit",
    function (event) {
      if (event.defaultPrevented || !event.target.hasAttribute("data-logout")) return;
      if (!confirmLogout()) {
        event.preventDefault();
        event.stopPropagation();
      }
    },
    true
  );

  // --- The queue of actions taken offline ------------------------------------

  function enqueue(form) {
    var fields = [];
    new FormData(form).forEach(function (value, name) {
      if (name !== "csrfmiddlewaretoken" && typeof value === "string") fields.push([name, value]);
    });
    var key = form.querySelector("input[name=idempotency_key]");
    var clientAt = form.querySelector("input[name=client_at]");
    var heading = document.querySelector("h1");
    var entry = {
      key: key ? key.value : portal.uuid4(),
      url: form.getAttribute("action"),
      fields: fields,
      label: form.getAttribute("data-offline"),
      order: heading ? heading.textContent.trim() : "",
      page: window.location.pathname,
      at: clientAt && clientAt.value ? clientAt.value : new Date().toISOString()
    };
    var queue = load(QUEUE);
    if (queue.some(function (queued) { return queued.key === entry.key; })) return;
    queue.push(entry);
    if (!save(QUEUE, queue)) {
      notify("La mémoire du téléphone est pleine : l'action n'a pas pu être gardée. Réessayez avec du réseau.");
      return;
    }
    showQueued(form);
    render();
  }

  // What the page shows of a queued action until it is sent.
  function showQueued(form) {
    var key = form.querySelector("input[name=idempotency_key]");
    var toggle = form.querySelector("button.line-toggle");
    if (toggle) {
      // A line: shown in its new state; tapped again, it is a new action.
      var done = form.querySelector("input[name=done]");
      var nowDone = toggle.getAttribute("aria-pressed") !== "true";
      toggle.setAttribute("aria-pressed", nowDone ? "true" : "false");
      var status = toggle.querySelector(".line-status");
      if (status) status.textContent = (nowDone ? "Réalisée" : "À faire") + " · en attente";
      if (done) done.value = nowDone ? "" : "on";
      if (key) key.value = "";
      return;
    }
    if (form.querySelector("textarea") || form.querySelector("input[type=range]")) {
      // A note or the progress: another one may follow.
      var text = form.querySelector("textarea");
      if (text) text.value = "";
      if (key) key.value = "";
      return;
    }
    form.classList.add("is-queued");
    Array.prototype.forEach.call(form.querySelectorAll("button"), function (button) {
      button.disabled = true;
    });
  }

  function render() {
    var queue = load(QUEUE);
    var refused = load(REFUSED);
    var box = document.getElementById("offline-queue");
    if (!queue.length && !refused.length) {
      if (box) box.remove();
      return;
    }
    if (!box) {
      box = document.createElement("section");
      box.id = "offline-queue";
      box.className = "card offline-queue";
      box.setAttribute("role", "status");
      box.setAttribute("aria-live", "polite");
      document.querySelector("main").prepend(box);
    }
    box.textContent = "";
    if (queue.length) {
      var title = document.createElement("p");
      title.className = "offline-count";
      title.textContent = queue.length === 1 ? "1 modification en attente d'envoi" : queue.length + " modifications en attente d'envoi";
      if (!navigator.onLine) title.textContent += " (pas de réseau)";
      box.appendChild(title);
      var here = queue.filter(function (entry) { return entry.page === window.location.pathname; });
      if (here.length) box.appendChild(list(here, function (entry) { return entry.label + " – " + timeOf(entry.at); }));
      if (navigator.onLine) {
        var send = document.createElement("button");
        send.type = "button";
        send.className = "button";
        send.textContent = "Envoyer maintenant";
        send.addEventListener("click", replay);
        box.appendChild(send);
      }
    }
    if (refused.length) {
      var warning = document.createElement("p");
      warning.className = "error";
      warning.textContent = "Non appliqué par le serveur :";
      box.appendChild(warning);
      box.appendChild(list(refused, function (entry) {
        return (entry.order ? entry.order + " · " : "") + entry.label + " (" + timeOf(entry.at) + ") : " + entry.reason;
      }));
      var ok = document.createElement("button");
      ok.type = "button";
      ok.className = "button";
      ok.textContent = "J'ai compris";
      ok.addEventListener("click", function () {
        save(REFUSED, []);
        render();
      });
      box.appendChild(ok);
    }
  }

  function list(entries, text) {
    var items = document.createElement("ul");
    entries.forEach(function (entry) {
      var item = document.createElement("li");
      item.textContent = text(entry);
      items.appendChild(item);
    });
    return items;
  }

  function refreshToken() {
    return fetch("/mes-commandes/", {credentials: "same-origin", cache: "no-store", redirect: "manual"})
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        var found = /"X-CSRFToken": "([^"]+)"/.exec(html);
        if (found) body.setAttribute("data-hx-headers", JSON.stringify({"X-CSRFToken": found[1]}));
      });
  }

  // One queued action to the server: "sent" (applied, or had been), a refusal
  // ({reason}), "login" (signed out: keep it), or "later" (no network, server down).
  function send(entry, retried) {
    var data = new FormData();
    entry.fields.forEach(function (field) { data.append(field[0], field[1]); });
    return fetch(entry.url, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      redirect: "manual",
      headers: {"X-CSRFToken": csrfToken(), "X-Portal-Replay": "1"}
    }).then(function (response) {
      if (response.type === "opaqueredirect") return "login";
      if (response.status === 200) return "sent";
      if (response.status === 409) {
        return response.json().then(function (answer) {
          return {reason: (answer.errors || []).join(" ") || "action refusée."};
        }, function () { return {reason: "action refusée."}; });
      }
      if (response.status === 404) return {reason: "commande introuvable, ou qui ne vous est plus attribuée."};
      if (response.status === 403 && !retried) {
        return refreshToken().then(function () { return send(entry, true); });
      }
      if (response.status === 400 || response.status === 413) return {reason: "demande refusée (" + response.status + ")."};
      return "later";
    }, function () {
      return "later";
    });
  }

  var replaying = false;

  function replay() {
    if (replaying || !navigator.onLine || !load(QUEUE).length) return;
    replaying = true;
    var changed = false;
    function next() {
      var queue = load(QUEUE);
      if (!queue.length) return finish("");
      var entry = queue[0];
      send(entry, false).then(function (result) {
        if (result === "later") return finish("");
        if (result === "login") return finish("Votre session a expiré : reconnectez-vous pour envoyer les modifications en attente.");
        save(QUEUE, load(QUEUE).filter(function (queued) { return queued.key !== entry.key; }));
        if (result !== "sent") {
          var refused = load(REFUSED);
          refused.push({label: entry.label, order: entry.order, at: entry.at, reason: result.reason});
          save(REFUSED, refused);
        }
        changed = true;
        render();
        next();
      });
    }
    function finish(message) {
      replaying = false;
      if (message) notify(message);
      render();
      // The page shows the order as it was: show it as it is now.
      if (changed && !load(QUEUE).length && PAGE.test(window.location.pathname)) window.location.reload();
    }
    next();
  }

  var PAGE = /^\/(mes-commandes\/|commandes\/\d+\/)$/;

  // --- Pages kept for offline reading ----------------------------------------

  // The list and every order on it, so that an order never opened before is
  // readable in the basement too; at most every 10 minutes.
  function keepPages() {
    if (!("caches" in window) || !navigator.onLine || window.location.pathname !== "/mes-commandes/") return;
    var last = Number(window.localStorage.getItem(PRECACHED_AT) || 0);
    var urls = Array.prototype.map.call(document.querySelectorAll("a.order-card"), function (link) {
      return new URL(link.getAttribute("href"), window.location.href).href;
    });
    // The list itself too: on the first visit, the worker was not there to keep it.
    urls.unshift(window.location.origin + window.location.pathname);
    var fresh = Date.now() - last < PRECACHE_EVERY;
    caches.open(PAGES_CACHE).then(function (cache) {
      return urls.reduce(function (previous, url) {
        return previous.then(function () {
          return (fresh ? cache.match(url, {ignoreVary: true}) : Promise.resolve(null)).then(function (kept) {
            if (kept) return null;
            return fetch(url, {credentials: "same-origin"}).then(function (response) {
              if (!response.ok || response.redirected) return null;
              // Read whole before it is kept: a page left meanwhile keeps nothing half-written.
              return response.blob().then(function (content) {
                return cache.put(url, new Response(content, {status: response.status, headers: response.headers}));
              });
            }).catch(function () { return null; });
          });
        });
      }, Promise.resolve());
    }).then(function () {
      if (!fresh) window.localStorage.setItem(PRECACHED_AT, String(Date.now()));
    }).catch(function () {
      // No room left on the phone: the pages opened stay kept by the worker.
    });
  }

  // Another person signed in on this phone: the pages kept are not theirs.
  function forgetPagesOfOthers() {
    if (!("caches" in window) || window.localStorage.getItem("portal-user") === userId) return Promise.resolve();
    window.localStorage.removeItem(PRECACHED_AT);
    return caches.delete(PAGES_CACHE).then(function () {
      window.localStorage.setItem("portal-user", userId);
    });
  }

  function confirmLogout() {
    var waiting = load(QUEUE).length;
    if (waiting && !window.confirm(waiting + " modification(s) pas encore envoyée(s) : elles le seront à votre prochaine connexion sur ce téléphone. Se déconnecter quand même ?")) {
      return false;
    }
    if ("caches" in window) caches.delete(PAGES_CACHE);
    window.localStorage.removeItem("portal-user");
    window.localStorage.removeItem(PRECACHED_AT);
    return true;
  }

  // Forms of actions still in the queue, on a page shown again from the copy kept.
  function markQueuedForms() {
    var queue = load(QUEUE);
    Array.prototype.forEach.call(document.querySelectorAll("form.action-form[data-offline]"), function (form) {
      var url = form.getAttribute("action");
      if (queue.some(function (entry) { return entry.url === url; })) showQueued(form);
    });
  }

  markQueuedForms();
  render();
  window.addEventListener("online", function () { render(); replay(); });
  window.addEventListener("offline", render);
  document.addEventListener("visibilitychange", function () { if (!document.hidden) replay(); });
  // The network may come back without the phone telling (a weak signal).
  window.setInterval(replay, 30000);
  replay();
  forgetPagesOfOthers().then(keepPages);

  var worker = script && script.getAttribute("data-service-worker");
  if (worker && "serviceWorker" in navigator) {
    navigator.serviceWorker.register(worker, {scope: "/"}).catch(function () {
      // No worker (private browsing, an old phone): the portal still works online.
    });
  }
})();
