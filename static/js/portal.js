// The portal's own script, on every page: small, optional (every page works
// without it), and loaded from a file because the Content-Security-Policy
// forbids inline script.
//
// - fills each form's `client_at` with the moment the action is taken, so that
//   the history keeps the technician's time even if the request arrives late,
//   and its `idempotency_key`, so that an action sent twice is applied once;
// - asks for confirmation before the actions marked `data-confirm`;
// - shows the value of a range input next to it;
// - says so when an htmx request cannot reach the server (no network) or the
//   server fails, and shows the sign-in page whole when the session expired.
//
// The technician's offline mode is in static/js/offline.js, loaded after this
// script on their pages only. It uses `window.portal` below: it takes the
// actions that cannot reach the server (`keep`) to send them later.
"use strict";

(function () {
  var portal = (window.portal = {
    uuid4: uuid4,
    notify: notify,
    requester: requester,
    // An action that cannot reach the server now (no network, the request lost,
    // the session expired): true when it is kept to be sent later. Nothing is
    // kept here; offline.js replaces it.
    keep: function () {
      return false;
    }
  });

  // --- Small helpers ---------------------------------------------------------

  function uuid4() {
    // crypto.randomUUID needs a secure context; getRandomValues does not.
    var bytes = crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) { return (b + 0x100).toString(16).slice(1); }).join("");
    return hex.slice(0, 8) + "-" + hex.slice(8, 12) + "-" + hex.slice(12, 16) + "-" + hex.slice(16, 20) + "-" + hex.slice(20);
  }

  // --- Forms: confirmation, time and key of the action ---------------------

  // Capture phase on the document: runs before htmx's own submit handler, so
  // that htmx sends the filled-in values, and can stop a submission.
  document.addEventListener(
    "submit",
    function (event) {
      var form = event.target;
      var question = form.getAttribute("data-confirm");
      if (question && !window.confirm(question)) {
        event.preventDefault();
        event.stopPropagation();
        return;
      }
      var clientAt = form.querySelector("input[name=client_at]");
      if (clientAt) clientAt.value = new Date().toISOString();
      var key = form.querySelector("input[name=idempotency_key]");
      if (key && !key.value) key.value = uuid4();
      if (!navigator.onLine && portal.keep(form)) {
        event.preventDefault();
        event.stopPropagation();
      }
    },
    true
  );

  document.addEventListener("input", function (event) {
    var input = event.target;
    if (input.type !== "range" || !input.id) return;
    var output = document.querySelector('output[for="' + input.id + '"]');
    if (output) output.textContent = input.value + (output.getAttribute("data-suffix") || "");
  });

  // --- htmx requests that fail -----------------------------------------------

  function notify(text) {
    var box = document.getElementById("connection-notice");
    if (!box) {
      box = document.createElement("p");
      box.id = "connection-notice";
      box.className = "message error connection-notice";
      box.setAttribute("role", "alert");
      document.querySelector("main").prepend(box);
    }
    box.textContent = text;
    box.hidden = !text;
  }

  // The element that sent an htmx request (a form); `detail.elt` is the
  // swap's target in some events.
  function requester(event) {
    return (event.detail.requestConfig && event.detail.requestConfig.elt) || event.detail.elt;
  }

  function lostRequest(event) {
    var form = requester(event);
    if (form && portal.keep(form)) {
      notify("");
    } else {
      notify("Pas de réseau : l'action n'a pas été envoyée. Réessayez quand le réseau revient.");
    }
  }

  document.addEventListener("htmx:sendError", lostRequest);
  document.addEventListener("htmx:timeout", lostRequest);
  // Signed out meanwhile (the session expired): htmx followed the redirect to
  // the sign-in page. Show it whole, not inside the order; on a technician's
  // page, the action taken is kept and goes once they have signed in again.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var address = event.detail.xhr && event.detail.xhr.responseURL;
    if (!address || new URL(address).pathname !== "/connexion/") return;
    event.detail.shouldSwap = false;
    var form = requester(event);
    if (form) portal.keep(form);
    var signIn = "/connexion/?next=" + encodeURIComponent(window.location.pathname + window.location.search);
    // Once the action is kept (offline.js saves it in IndexedDB, which a page left too soon loses).
    var leave = function () { window.location.assign(signIn); };
    Promise.resolve(portal.kept).then(leave, leave);
  });
  document.addEventListener("htmx:responseError", function (event) {
    notify("Le serveur n'a pas pu traiter la demande (erreur " + event.detail.xhr.status + "). Rechargez la page.");
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.successful) notify("");
  });

  // --- Back and Forward: the filter forms follow the address ----------------

  // htmx restores the list of the address gone back to, but a form's fields
  // keep what was last typed (a snapshot holds attributes, not values): set
  // them from the address, so that the form says what the list shows.
  function followAddress() {
    var params = new URLSearchParams(window.location.search);
    document.querySelectorAll("form[method=get][data-hx-push-url]").forEach(function (form) {
      Array.prototype.forEach.call(form.elements, function (field) {
        if (!field.name || field.type === "submit" || field.type === "button") return;
        var values = params.getAll(field.name);
        if (field.type === "checkbox" || field.type === "radio") {
          field.checked = values.indexOf(field.value) !== -1;
        } else if (field.tagName === "SELECT") {
          Array.prototype.forEach.call(field.options, function (option, index) {
            option.selected = values.length ? values.indexOf(option.value) !== -1 : index === 0;
          });
        } else {
          field.value = values.length ? values[0] : "";
        }
      });
    });
  }

  document.addEventListener("htmx:historyRestore", followAddress);
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) followAddress();  // back from another page, from the browser's cache
  });
})();
