// The technician's offline mode, on the page's side. Loaded after
// static/js/portal.js, and only on technicians' pages (templates/base.html):
//
// - registers the service worker (templates/offline/sw.js, served by
//   orders/offline.py) that keeps their pages readable offline, and keeps the
//   list and every order on it for the basement, at most every 10 minutes;
// - keeps the actions taken without network, or lost on a weak signal, or sent
//   after the session expired, in a queue on the phone (IndexedDB, through
//   static/js/queue.js, which the service worker shares: "n modifications en
//   attente"), and replays them in order, with their original time and key,
//   when the network returns (the server answers each replay in JSON: applied,
//   already applied, or refused with the reason and what to do next, which are
//   then shown until read); asks the browser for a Background Sync, so that the
//   worker sends them even if the portal is no longer in front;
// - shows an order as it will be once its waiting changes are sent, each marked
//   « en attente »: lines, progress, the state the next step leads to, notes;
// - forgets the orders no longer the technician's (a refusal said so, or the
//   list no longer has them): their pages kept, and any new action on them;
// - forgets the pages kept for another person signed in on this phone, and,
//   on signing out, asks before leaving actions unsent and forgets the pages;
// - says « Hors ligne » as soon as the phone has no network, even with nothing
//   waiting; keeps each order's report form too (static/js/report-form.js), and
//   sends the queue when another kind's script has added to it ("portal:queued").
//
// portal.js hands over, through `window.portal.keep`, the actions that cannot
// reach the server: the forms marked `data-offline` are kept here.
"use strict";

(function () {
  var portal = window.portal;
  var queue = window.PortalQueue;
  if (!portal || !queue || !("indexedDB" in window)) return;
  var body = document.body;
  var script = document.currentScript;
  var userId = (script && script.getAttribute("data-user")) || "";
  // Pages of orders no longer the technician's (localStorage: read at once when an action is kept).
  var GONE = "portal-gone-" + userId;
  // Shared with templates/offline/sw.js (orders/offline.py gives it its name).
  var PAGES_CACHE = "portal-pages";
  var PRECACHED_AT = "portal-precached-" + userId;
  var PRECACHE_EVERY = 10 * 60 * 1000;
  var notify = portal.notify;

  // --- Small helpers ---------------------------------------------------------

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

  function gonePages() {
    try {
      return JSON.parse(window.localStorage.getItem(GONE)) || [];
    } catch (error) {
      return [];
    }
  }

  function setGonePages(pages) {
    try {
      window.localStorage.setItem(GONE, JSON.stringify(pages));
    } catch (error) {
      // No room: the server refuses the actions all the same.
    }
  }

  function isGone(page) {
    return gonePages().indexOf(page) !== -1;
  }

  // --- Actions that cannot reach the server: kept -----------------------------

  // Called by portal.js: no network when the form is sent, the request lost,
  // or the session expired meanwhile. True when the action is this queue's.
  portal.keep = function (form) {
    if (!form.hasAttribute || !form.hasAttribute("data-offline")) return false;
    if (isGone(window.location.pathname)) {
      notify("Cette commande ne vous est plus attribuée : l'action n'est pas gardée. Appelez votre conducteur de travaux.");
      return true;
    }
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
      user: userId,
      kind: "form",
      key: key && key.value ? key.value : portal.uuid4(),
      url: form.getAttribute("action"),
      fields: fields,
      label: form.getAttribute("data-offline"),
      state: form.getAttribute("data-offline-state") || "",
      order: heading ? heading.textContent.trim() : "",
      page: window.location.pathname,
      at: clientAt && clientAt.value ? clientAt.value : new Date().toISOString()
    };
    // What the page shows at once; the queue, a moment later.
    showQueued(form, entry);
    // portal.js waits for it before leaving the page (the session expired).
    portal.kept = queue.add(entry).then(function () {
      askForSync();
      render();
    }, function () {
      notify("La mémoire du téléphone est pleine : l'action n'a pas pu être gardée. Réessayez avec du réseau.");
    });
  }

  // The browser sends the queue when the network returns, through the service
  // worker, even if the portal is no longer in front (where it has Background Sync).
  function askForSync() {
    if (!("serviceWorker" in navigator)) return;
    navigator.serviceWorker.ready.then(function (registration) {
      if (registration.sync) return registration.sync.register("portal-queue");
    }).catch(function () {
      // No Background Sync: the queue goes from the next page, or the worker's next page served.
    });
  }

  function field(entry, name) {
    var found = (entry.fields || []).filter(function (pair) { return pair[0] === name; });
    return found.length ? found[found.length - 1][1] : null;
  }

  // What the page shows of a queued action until it is sent: the order as it will be.
  function showQueued(form, entry) {
    var key = form.querySelector("input[name=idempotency_key]");
    var toggle = form.querySelector("button.line-toggle");
    if (toggle) {
      // A line: shown in its new state; tapped again, it is a new action.
      var done = form.querySelector("input[name=done]");
      var nowDone = field(entry, "done") === "on";
      toggle.setAttribute("aria-pressed", nowDone ? "true" : "false");
      toggle.classList.add("is-pending");
      var status = toggle.querySelector(".line-status");
      if (status) status.textContent = (nowDone ? "Réalisée" : "À faire") + " · en attente";
      if (done) done.value = nowDone ? "" : "on";
      if (key) key.value = "";
      countLines();
      return;
    }
    if (form.querySelector("textarea") || form.querySelector("input[type=range]")) {
      // A note or the progress: another one may follow.
      var text = form.querySelector("textarea");
      if (text) text.value = "";
      var range = form.querySelector("input[type=range]");
      var progress = field(entry, "progress");
      if (range && progress !== null) {
        range.value = progress;
        var output = form.querySelector("output.range-value");
        if (output) output.textContent = progress + " % · en attente";
      }
      if (key) key.value = "";
      return;
    }
    form.classList.add("is-queued");
    Array.prototype.forEach.call(form.querySelectorAll("button"), function (button) {
      button.disabled = true;
    });
    if (entry.state) {
      var badge = document.querySelector(".order-title .badge");
      if (badge) {
        badge.textContent = entry.state + " · en attente";
        badge.classList.add("is-pending");
      }
    }
  }

  function countLines() {
    var count = document.querySelector("#lines-title .count");
    var toggles = document.querySelectorAll("button.line-toggle");
    if (!count || !toggles.length) return;
    var done = Array.prototype.filter.call(toggles, function (toggle) { return toggle.getAttribute("aria-pressed") === "true"; }).length;
    count.textContent = done + " / " + toggles.length + " réalisée" + (done > 1 ? "s" : "");
    askBeforeFinishing();
  }

  // A report for this order waiting in the queue (written offline): it will be sent before the end of the works.
  var reportWaiting = false;

  // What « Terminer les travaux » asks, from the order as it will be once the queue is sent: the lines
  // ticked offline count as done, a report waiting counts as written (the server's wording, orders/actions.py).
  function askBeforeFinishing() {
    var lines = Array.prototype.slice.call(document.querySelectorAll("[data-line]"));
    var left = lines.filter(function (line) {
      return (line.getAttribute("aria-pressed") || line.getAttribute("data-done")) !== "true";
    });
    var missing = [];
    if (left.length) {
      missing.push(left.length + " ligne" + (left.length > 1 ? "s" : "") + " sur " + lines.length + " " +
        (left.length === 1 ? "n'est pas réalisée" : "ne sont pas réalisées") + " (" +
        left.map(function (line) { return line.getAttribute("data-line"); }).join(", ") + ")");
    }
    Array.prototype.forEach.call(document.querySelectorAll("form[data-finish]"), function (form) {
      var question = form.getAttribute("data-finish-question");
      var gaps = missing.slice();
      if (form.getAttribute("data-finish") !== "report" && !reportWaiting) gaps.push("aucun rapport d'intervention n'est saisi");
      form.setAttribute("data-confirm", gaps.length
        ? "Attention : " + gaps.join(" et ") + ". Terminer quand même les travaux ? " + question.replace(/^Terminer les travaux \? /, "")
        : question);
    });
  }

  // The changes waiting for this order, on its page shown again (from the copy
  // kept offline, or fresh while they wait): each in its place, and at the top
  // of the history, marked « en attente d'envoi ».
  function showPending(entries) {
    var here = entries.filter(function (entry) { return entry.page === window.location.pathname; });
    reportWaiting = here.some(function (entry) { return entry.kind === "report"; });
    askBeforeFinishing();
    if (!here.length) return;
    var forms = document.querySelectorAll("form[data-offline]");
    here.forEach(function (entry) {
      Array.prototype.forEach.call(forms, function (form) {
        if (form.getAttribute("action") === entry.url) showQueued(form, entry);
      });
    });
    var history = document.querySelector("ol.history");
    if (!history) return;
    Array.prototype.forEach.call(history.querySelectorAll("li.is-pending"), function (item) { item.remove(); });
    here.forEach(function (entry) {
      var item = document.createElement("li");
      item.className = "is-pending";
      var time = document.createElement("time");
      time.setAttribute("datetime", entry.at);
      time.textContent = timeOf(entry.at);
      var what = document.createElement("span");
      what.textContent = describe(entry);
      var status = document.createElement("small");
      status.className = "pending-mark";
      status.textContent = "en attente d'envoi";
      item.appendChild(time);
      item.appendChild(what);
      item.appendChild(status);
      history.prepend(item);
    });
  }

  // An action as people read it: « Ligne L1 réalisée », « Avancement : 60 % », « Note : … ».
  function describe(entry) {
    var note = field(entry, "text");
    var progress = field(entry, "progress");
    var done = field(entry, "done");
    if (note !== null) return "Note : " + note;
    if (progress !== null) return "Avancement : " + progress + " %";
    if (done !== null) return entry.label + (done === "on" ? " réalisée" : " non réalisée");
    return entry.label;
  }

  var waiting = 0;

  function render() {
    return Promise.all([queue.entries(userId), queue.refusals(userId)]).then(function (found) {
      draw(found[0], found[1]);
    }).catch(function () {});
  }

  function draw(entries, refused) {
    waiting = entries.length;
    refused.forEach(function (refusal) {
      if (refusal.gone && !isGone(refusal.page)) setGonePages(gonePages().concat([refusal.page]));
    });
    hideGoneCards();
    var box = document.getElementById("offline-queue");
    if (!entries.length && !refused.length) {
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
    if (entries.length) {
      var title = document.createElement("p");
      title.className = "offline-count";
      title.textContent = entries.length === 1 ? "1 modification en attente d'envoi" : entries.length + " modifications en attente d'envoi";
      if (!navigator.onLine) title.textContent += " (pas de réseau)";
      box.appendChild(title);
      var here = entries.filter(function (entry) { return entry.page === window.location.pathname; });
      if (here.length) box.appendChild(list(here, function (entry) { return describe(entry) + " – " + timeOf(entry.at); }));
      if (navigator.onLine) {
        var send = document.createElement("button");
        send.type = "button";
        send.className = "button";
        send.textContent = "Envoyer maintenant";
        send.addEventListener("click", replay);
        box.appendChild(send);
      }
    }
    if (refused.length) drawRefused(box, refused);
  }

  // What the server did not apply: why, and what to do next, until read.
  function drawRefused(box, refused) {
    var warning = document.createElement("p");
    warning.className = "error";
    warning.textContent = refused.length === 1 ? "Non appliqué par le serveur :" : refused.length + " actions non appliquées par le serveur :";
    box.appendChild(warning);
    var items = document.createElement("ul");
    items.className = "refusals";
    refused.forEach(function (entry) {
      var item = document.createElement("li");
      var what = document.createElement("strong");
      what.textContent = (entry.order ? entry.order + " · " : "") + describe(entry) + " (" + timeOf(entry.at) + ")";
      var reason = document.createElement("span");
      reason.className = "refusal-reason";
      reason.textContent = " : " + entry.reason;
      item.appendChild(what);
      item.appendChild(reason);
      if (entry.advice) {
        var advice = document.createElement("p");
        advice.className = "refusal-advice";
        advice.textContent = "À faire : " + entry.advice;
        item.appendChild(advice);
      }
      items.appendChild(item);
    });
    box.appendChild(items);
    var told = document.createElement("p");
    told.className = "muted small";
    told.textContent = "Le portail l'a gardé et votre conducteur de travaux en est prévenu.";
    box.appendChild(told);
    var ok = document.createElement("button");
    ok.type = "button";
    ok.className = "button";
    ok.textContent = "J'ai compris";
    ok.addEventListener("click", function () {
      queue.forgetRefusals(userId).then(render);
    });
    box.appendChild(ok);
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

  // The list, shown from the copy kept offline: no card for an order no longer theirs.
  function hideGoneCards() {
    var gone = gonePages();
    Array.prototype.forEach.call(document.querySelectorAll("a.order-card"), function (link) {
      if (gone.indexOf(new URL(link.getAttribute("href"), window.location.href).pathname) !== -1) {
        var card = link.closest("li") || link;
        card.hidden = true;
      }
    });
  }

  function refreshToken() {
    return queue.signedIn().then(function (session) {
      if (session) body.setAttribute("data-hx-headers", JSON.stringify({"X-CSRFToken": session.token}));
    });
  }

  var session = {
    token: function () { return Promise.resolve(csrfToken()); },
    renew: refreshToken
  };

  var replaying = false;

  function replay() {
    if (replaying || !navigator.onLine) return;
    replaying = true;
    queue.replay(userId, session).then(finish, function () { return finish({}); });
  }

  // After a replay (this page's, or the worker's): show what is left, and the order as it is now.
  function finish(summary) {
    replaying = false;
    if (summary.stopped === "login") notify("Votre session a expiré : reconnectez-vous pour envoyer les modifications en attente.");
    return render().then(function () {
      if (!summary.changed) return;
      if ((summary.gone || []).indexOf(window.location.pathname) !== -1) {
        // This order is no longer theirs: their list, with the explanation above it.
        window.location.assign("/mes-commandes/");
        return;
      }
      if (!waiting && PAGE.test(window.location.pathname)) window.location.reload();
    });
  }

  var PAGE = /^\/(mes-commandes\/|commandes\/\d+\/)$/;

  // --- Pages kept for offline reading ----------------------------------------

  // The list and every order on it, so that an order never opened before is
  // readable in the basement too; at most every 10 minutes. The orders no
  // longer on the list are forgotten.
  function keepPages() {
    if (!("caches" in window) || !navigator.onLine || window.location.pathname !== "/mes-commandes/") return;
    var last = Number(window.localStorage.getItem(PRECACHED_AT) || 0);
    var urls = Array.prototype.map.call(document.querySelectorAll("a.order-card"), function (link) {
      return new URL(link.getAttribute("href"), window.location.href).href;
    });
    // Given back to them: no longer gone.
    setGonePages(gonePages().filter(function (page) {
      return !urls.some(function (url) { return new URL(url).pathname === page; });
    }));
    // Each order's report form too: a report is written where there is no network.
    urls = urls.concat(urls.map(function (url) { return url + "rapport/"; }));
    // The list itself too: on the first visit, the worker was not there to keep it.
    urls.unshift(window.location.origin + window.location.pathname);
    var fresh = Date.now() - last < PRECACHE_EVERY;
    caches.open(PAGES_CACHE).then(function (cache) {
      return forgetOthers(cache, urls).then(function () {
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
      });
    }).then(function () {
      if (!fresh) window.localStorage.setItem(PRECACHED_AT, String(Date.now()));
    }).catch(function () {
      // No room left on the phone: the pages opened stay kept by the worker.
    });
  }

  // The orders kept that the list (fresh from the server) no longer has: given to
  // someone else, or finished long ago. Their pages are not kept any more.
  function forgetOthers(cache, urls) {
    var ORDER = /^\/commandes\/(\d+)\//;
    return cache.keys().then(function (requests) {
      return Promise.all(requests.map(function (request) {
        var url = new URL(request.url);
        var found = ORDER.exec(url.pathname);
        if (!found) return null;
        var onList = urls.some(function (kept) { return ORDER.exec(new URL(kept).pathname) && ORDER.exec(new URL(kept).pathname)[1] === found[1]; });
        return onList ? null : cache.delete(request);
      }));
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
    if (waiting && !window.confirm(waiting + " modification(s) pas encore envoyée(s) : elles le seront à votre prochaine connexion sur ce téléphone. Se déconnecter quand même ?")) {
      return false;
    }
    if ("caches" in window) caches.delete(PAGES_CACHE);
    window.localStorage.removeItem("portal-user");
    window.localStorage.removeItem(PRECACHED_AT);
    return true;
  }

  // --- Without network: said at once, even with nothing waiting ----------------

  function showConnection() {
    var banner = document.getElementById("offline-banner");
    if (!banner) {
      banner = document.createElement("p");
      banner.id = "offline-banner";
      banner.className = "offline-banner";
      banner.setAttribute("role", "status");
      document.querySelector("main").before(banner);
    }
    banner.textContent = navigator.onLine ? "" : "Hors ligne : tout reste sur le téléphone";
    banner.hidden = navigator.onLine;
  }

  showConnection();
  window.addEventListener("online", showConnection);
  window.addEventListener("offline", showConnection);
  // Another kind added to the queue by its own script (the report, static/js/report-store.js): shown, and sent.
  document.addEventListener("portal:queued", function () {
    askForSync();
    render();
    replay();
  });

  // The page shown again (from the copy kept, or fresh): the changes still waiting, in place.
  queue.entries(userId).then(showPending).catch(function () {});
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
    // The worker sent the queue (Background Sync, or a page it served): show what is left.
    navigator.serviceWorker.addEventListener("message", function (event) {
      if (event.data && event.data.type === "portal-queue" && String(event.data.user) === userId) finish(event.data);
    });
  }
})();
