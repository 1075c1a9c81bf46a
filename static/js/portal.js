// The portal's own script: small, optional (every page works without it), and
// loaded from a file because the Content-Security-Policy forbids inline script.
//
// - fills each form's `client_at` with the moment the action is taken, so that
//   the history keeps the technician's time even if the request arrives late;
// - asks for confirmation before the actions marked `data-confirm`;
// - shows the value of a range input next to it;
// - says so when an htmx request cannot reach the server (no network).
"use strict";

(function () {
  // Capture phase on the document: runs before htmx's own submit handler, so
  // that htmx sends the filled-in value, and can stop a submission unconfirmed.
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
      if (clientAt) {
        clientAt.value = new Date().toISOString();
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

  document.addEventListener("htmx:sendError", function () {
    notify("Pas de réseau : l'action n'a pas été envoyée. Réessayez quand le réseau revient.");
  });
  document.addEventListener("htmx:responseError", function (event) {
    notify("Le serveur n'a pas pu traiter la demande (erreur " + event.detail.xhr.status + "). Rechargez la page.");
  });
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.successful) notify("");
  });
})();
