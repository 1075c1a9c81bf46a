// The intervention report's form on a technician's phone
// (templates/orders/report_form.html), with `window.portal.reports`
// (static/js/report-store.js, which keeps it on the phone and sends it):
//
// - what is typed is kept on the phone as it is typed, and found again when
//   the page opens, offline too (the service worker keeps the page);
// - each photo, taken or chosen in the gallery, is shrunk here before it
//   leaves (at most 1600 px, JPEG: drawn on a canvas, which writes no EXIF, so
//   no GPS position leaves the phone) and sent at once, shown with its
//   thumbnail, its progress and « Retirer »;
// - « Enregistrer » checks what must be filled in and says so by each field;
//   the report then joins the offline queue. With network the page sends it
//   itself as soon as its photos are up, then opens it; without, it says that
//   the report waits on the phone, and what becomes of it.
//
// Without this script (supervisors, an old phone) the form is a plain one.
"use strict";

(function () {
  var portal = window.portal;
  var reports = portal && portal.reports;
  var form = document.querySelector("form[data-report-form]");
  if (!form || !reports) return;

  var MAX_SIDE = 1600; // as the server's (orders/images.py)
  var QUALITY = 0.82;
  var MAX_PER_KIND = 8;
  var SKIP = ["csrfmiddlewaretoken", "client_at", "idempotency_key", "photo_keys"];
  var KIND_LABELS = {before: "avant travaux", after: "après travaux"};
  var order = form.getAttribute("data-order");
  var reference = form.getAttribute("data-reference");
  var opener = form.getAttribute("data-photos");
  var orderPage = form.getAttribute("data-order-page");
  var url = window.location.pathname;
  var keyInput = form.querySelector("input[name=idempotency_key]");
  var clientAt = form.querySelector("input[name=client_at]");
  var submit = form.querySelector("button[type=submit]");
  var draftLine = form.querySelector("[data-report-draft]");
  var draft = reports.newDraft(order, url, reference, orderPage);
  var shrinking = Promise.resolve();
  var thumbnails = {};
  keyInput.value = draft.key;
  form.classList.add("is-enhanced");

  // --- Small helpers -----------------------------------------------------------

  function element(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  function two(number) { return (number < 10 ? "0" : "") + number; }

  function hour(iso) {
    var moment = new Date(iso);
    return two(moment.getHours()) + " h " + two(moment.getMinutes());
  }

  // « ven. 5 déc. à 10 h 12 », as the server writes it (portal/moments.py).
  function when(iso) {
    var day = new Date(iso).toLocaleDateString("fr-FR", {weekday: "short", day: "numeric", month: "short"});
    return day + " à " + hour(iso);
  }

  function photos(count) { return count + (count > 1 ? " photos" : " photo"); }

  // --- What is typed: kept on the phone as it is typed --------------------------

  function typed() {
    var fields = [];
    new FormData(form).forEach(function (value, name) {
      if (typeof value === "string" && SKIP.indexOf(name) === -1) fields.push([name, value]);
    });
    return fields;
  }

  function restore(fields) {
    var values = {};
    fields.forEach(function (field) { (values[field[0]] = values[field[0]] || []).push(field[1]); });
    // The supplies' rows added with « Ajouter une fourniture » (static/js/report_materials.js): added again.
    var total = form.querySelector("input[name$='-TOTAL_FORMS']");
    var add = form.querySelector("[data-material-add]");
    if (total && add && values[total.name]) {
      for (var count = Number(total.value); count < Number(values[total.name][0]); count += 1) add.click();
    }
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!field.name || SKIP.indexOf(field.name) !== -1 || field.type === "file" || field.type === "submit") return;
      var kept = values[field.name] || [];
      if (field.type === "checkbox" || field.type === "radio") {
        field.checked = kept.indexOf(field.value) !== -1;
        field.dispatchEvent(new Event("change"));
      } else if (kept.length) {
        field.value = kept[0];
      }
    });
    var signature = form.querySelector("input[name=signature]");
    if (signature) signature.dispatchEvent(new Event("signature:restore"));
  }

  var saveTimer = null;

  function save() {
    window.clearTimeout(saveTimer);
    saveTimer = null;
    if (draft.status === "queued") return;
    draft.fields = typed();
    reports.saveDraft(draft).then(function () {
      draftLine.textContent = "Brouillon gardé sur le téléphone à " + hour(draft.savedAt);
      draftLine.hidden = false;
    }, function () {
      portal.notify("La mémoire du téléphone est pleine : le brouillon n'est plus gardé.");
    });
  }

  // Kept a moment after the last key pressed, and at once when the page goes (a reload, another app).
  function keep() {
    window.clearTimeout(saveTimer);
    saveTimer = window.setTimeout(save, 300);
  }

  function flush() {
    if (saveTimer) save();
  }

  form.addEventListener("input", function (event) { if (event.target.type !== "file") keep(); });
  form.addEventListener("change", function (event) { if (event.target.type !== "file") keep(); });
  window.addEventListener("pagehide", flush);
  document.addEventListener("visibilitychange", function () { if (document.hidden) flush(); });

  // --- Photos: shrunk here, sent at once, shown with their progress -------------

  // Drawn at most 1600 px on its long side, upright (the EXIF orientation
  // applied), then encoded as a JPEG: the canvas writes no metadata at all. A
  // file this browser cannot draw (HEIC on some phones) goes as it is: the
  // server shrinks it, or says why not.
  function shrink(file) {
    if (!window.createImageBitmap) return Promise.resolve({blob: file, width: 0, height: 0});
    return window.createImageBitmap(file, {imageOrientation: "from-image"}).then(function (bitmap) {
      var scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
      var canvas = element("canvas");
      canvas.width = Math.max(1, Math.round(bitmap.width * scale));
      canvas.height = Math.max(1, Math.round(bitmap.height * scale));
      var context = canvas.getContext("2d");
      context.imageSmoothingQuality = "high";
      context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
      bitmap.close();
      return new Promise(function (resolve) {
        canvas.toBlob(resolve, "image/jpeg", QUALITY);
      }).then(function (blob) {
        var size = {width: canvas.width, height: canvas.height};
        canvas.width = canvas.height = 0; // its memory back at once (a 12 MP photo is 48 MB drawn)
        if (!blob) throw new Error("not encoded");
        return {blob: blob, width: size.width, height: size.height};
      });
    }).catch(function () {
      return {blob: file, width: 0, height: 0};
    });
  }

  function listOf(kind) { return form.querySelector('[data-photo-list="' + kind + '"]'); }

  function photoItem(kind, name) {
    var item = element("li", "photo-item is-preparing");
    var thumb = element("img", "photo-thumb");
    thumb.alt = "";
    var meta = element("div", "photo-meta");
    var bar = element("progress", "photo-progress");
    bar.max = 100;
    bar.value = 0;
    bar.setAttribute("aria-label", "Envoi de « " + name + " »");
    var state = element("span", "photo-state", "Préparation…");
    meta.appendChild(bar);
    meta.appendChild(state);
    var remove = element("button", "link photo-remove", "Retirer");
    remove.type = "button";
    remove.disabled = true;
    var hidden = element("input");
    hidden.type = "hidden";
    hidden.name = "photo_keys";
    item.appendChild(thumb);
    item.appendChild(meta);
    item.appendChild(remove);
    item.appendChild(hidden);
    if (kind) listOf(kind).appendChild(item);
    return item;
  }

  function showPhoto(item, photo, sent) {
    var bar = item.querySelector("progress");
    var state = item.querySelector(".photo-state");
    var percent = photo.size ? Math.floor(100 * Math.min(sent, photo.size) / photo.size) : 0;
    item.classList.remove("is-preparing", "is-ready", "is-refused", "is-stalled");
    if (photo.state === "ready") {
      item.classList.add("is-ready");
      bar.value = 100;
      state.textContent = "Envoyée";
    } else if (photo.state === "refused") {
      item.classList.add("is-refused");
      bar.value = 0;
      state.textContent = "Refusée : " + photo.error + " Elle ne partira pas avec le rapport.";
      var hidden = item.querySelector("input[type=hidden]");
      if (hidden) hidden.disabled = true;
    } else if (!navigator.onLine) {
      bar.value = percent;
      state.textContent = "En attente du réseau" + (percent ? " (" + percent + " % envoyés)" : "");
    } else {
      bar.value = percent;
      state.textContent = "Envoi : " + percent + " %";
    }
  }

  function fillPhoto(item, photo) {
    item.setAttribute("data-photo", photo.key);
    var hidden = item.querySelector("input[type=hidden]");
    if (hidden) hidden.value = photo.key;
    var thumb = item.querySelector("img");
    thumbnails[photo.key] = thumbnails[photo.key] || URL.createObjectURL(photo.blob);
    thumb.src = thumbnails[photo.key];
    thumb.alt = "Photo « " + photo.name + " » (" + KIND_LABELS[photo.kind] + ")";
    var remove = item.querySelector(".photo-remove");
    if (remove) {
      remove.disabled = false;
      remove.setAttribute("aria-label", "Retirer la photo « " + photo.name + " »");
    }
    showPhoto(item, photo, Math.max(photo.received, reports.sent(photo.key)));
  }

  function choose(input) {
    var kind = input.closest("[data-photo-kind]").getAttribute("data-photo-kind");
    var files = Array.prototype.slice.call(input.files);
    input.value = "";
    files.forEach(function (file) {
      if (listOf(kind).querySelectorAll(".photo-item").length >= MAX_PER_KIND) {
        // Said by the photos, where the thumb is.
        var fieldset = input.closest("[data-photo-kind]");
        var said = fieldset.querySelector(".photo-limit") || fieldset.appendChild(element("p", "field-error photo-limit"));
        said.setAttribute("role", "alert");
        said.textContent = MAX_PER_KIND + " photos au plus " + KIND_LABELS[kind] + " : « " + file.name + " » n'est pas gardée.";
        return;
      }
      var item = photoItem(kind, file.name);
      shrinking = shrinking.then(function () {
        return shrink(file);
      }).then(function (shrunk) {
        return reports.addPhoto(draft, {kind: kind, name: file.name, blob: shrunk.blob, width: shrunk.width,
                                        height: shrunk.height, opener: opener});
      }).then(function (photo) {
        performance.mark("report-photo-kept"); // read by bench/report_upload.py
        fillPhoto(item, photo);
      }, function () {
        item.remove();
        portal.notify("La mémoire du téléphone est pleine : « " + file.name + " » n'a pas pu être gardée.");
      });
    });
  }

  Array.prototype.forEach.call(form.querySelectorAll("input.photo-input"), function (input) {
    input.addEventListener("change", function () { choose(input); });
  });

  form.addEventListener("click", function (event) {
    var button = event.target.closest(".photo-remove");
    if (!button) return;
    var item = button.closest(".photo-item");
    var key = item.getAttribute("data-photo");
    item.remove();
    if (thumbnails[key]) URL.revokeObjectURL(thumbnails[key]);
    delete thumbnails[key];
    reports.removePhoto(draft, key);
  });

  document.addEventListener("report:photo", function (event) {
    var photo = event.detail.photo;
    document.querySelectorAll('[data-photo="' + photo.key + '"]').forEach(function (item) {
      showPhoto(item, photo, event.detail.sent);
    });
    showSending();
  });

  document.addEventListener("report:stalled", function (event) {
    var photo = event.detail.photo;
    document.querySelectorAll('[data-photo="' + photo.key + '"] .photo-state').forEach(function (state) {
      state.textContent = "Réseau trop faible : l'envoi reprendra de lui-même là où il s'est arrêté.";
      state.closest(".photo-item").classList.add("is-stalled");
    });
  });

  window.addEventListener("offline", function () {
    document.querySelectorAll(".photo-item[data-photo]:not(.is-ready):not(.is-refused) .photo-state").forEach(function (state) {
      state.textContent = "En attente du réseau";
    });
  });

  // --- Checked before it goes, said by each field --------------------------------

  function value(name) {
    var field = form.elements[name];
    return field && typeof field.value === "string" ? field.value.trim() : "";
  }

  function check() {
    var problems = [];
    if (!value("works_done")) problems.push(["works_done", "Décrivez les travaux réalisés."]);
    var minutes = value("time_on_site_minutes"); // empty: counted by the server from the start of the works
    if (minutes && (!/^\d+$/.test(minutes) || Number(minutes) < 1 || Number(minutes) > 1440)) {
      problems.push(["time_on_site_minutes", "Le temps passé sur place doit être compris entre 1 minute et 24 heures."]);
    }
    var status = form.querySelector("input[name=signature_status]:checked");
    if (!status) {
      problems.push(["signature_status", "Indiquez si l'occupant a signé, était absent ou a refusé de signer."]);
    } else if (status.value === "signed" && !value("signature")) {
      problems.push(["signature_status", "Faites signer l'occupant dans le cadre, ou choisissez un autre cas."]);
    }
    var quote = form.elements.quote_needed;
    if (quote && quote.checked && !value("quote_description")) {
      problems.push(["quote_description", "Décrivez les travaux qui demandent un devis."]);
    }
    return problems;
  }

  function clearErrors() {
    form.querySelectorAll("[data-report-errors], .field-error").forEach(function (node) { node.remove(); });
    form.querySelectorAll("[aria-invalid]").forEach(function (field) { field.removeAttribute("aria-invalid"); });
  }

  // `problems`: [field name, message] pairs; a name the form has not ("__all__") goes at the top.
  function showErrors(problems, heading) {
    clearErrors();
    var box = element("div", "error");
    box.setAttribute("role", "alert");
    box.setAttribute("data-report-errors", "");
    box.tabIndex = -1;
    box.appendChild(element("p", "", heading || "Le rapport n'est pas enregistré : corrigez ce qui est indiqué ci-dessous."));
    var first = null;
    problems.forEach(function (problem) {
      var named = form.querySelector('[name="' + problem[0] + '"]');
      var place = form.querySelector('[data-field="' + problem[0] + '"]') || (named && named.closest(".field"));
      if (!place) {
        box.appendChild(element("p", "", problem[1]));
        return;
      }
      var message = element("p", "field-error", problem[1]);
      var after = place.querySelector(".choices") || place.querySelector("input, textarea, select");
      if (after && after.nextSibling) after.parentNode.insertBefore(message, after.nextSibling);
      else place.appendChild(message);
      var fields = place.querySelectorAll('[name="' + problem[0] + '"]');
      fields.forEach(function (field) { field.setAttribute("aria-invalid", "true"); });
      first = first || fields[0];
    });
    form.prepend(box);
    (first || box).focus({preventScroll: true});
    (first ? first.closest("[data-field]") : box).scrollIntoView({block: "center"});
  }

  // --- Saved: queued, and sent by the page itself when it can ---------------------

  var progressLine = element("div", "report-progress");
  progressLine.setAttribute("role", "status");
  progressLine.hidden = true;
  submit.before(progressLine);

  function sendingPhotos() {
    return Array.prototype.filter.call(form.querySelectorAll(".photo-item[data-photo]"), function (item) {
      return !item.classList.contains("is-refused");
    });
  }

  function showSending() {
    if (progressLine.hidden) return;
    var items = sendingPhotos();
    var up = items.filter(function (item) { return item.classList.contains("is-ready"); }).length;
    progressLine.textContent = items.length && up < items.length
      ? "Enregistrement : envoi des photos, " + up + " sur " + items.length + "…"
      : "Enregistrement du rapport…";
  }

  // With network, right after « Enregistrer »: the queue sends the photos left, then the report;
  // the page follows it and opens the report once saved. A stall, or no network, and it says the
  // report waits on the phone (the queue goes on by itself).
  var following = null;

  function follow(saved) {
    progressLine.hidden = false;
    showSending();
    following = saved.key;
    var quiet = null;
    function stop(queued) {
      following = null;
      window.clearTimeout(quiet);
      document.removeEventListener("report:stalled", stalled);
      document.removeEventListener("report:photo", moving);
      window.removeEventListener("offline", offline);
      if (queued) {
        progressLine.hidden = true;
        showQueued(saved);
      }
    }
    // Nothing moving for a while (another action ahead of it waits for the server): said as waiting.
    function moving() {
      window.clearTimeout(quiet);
      quiet = window.setTimeout(function () { stop(true); }, 45000);
    }
    function stalled(event) { if (event.detail.photo.draft === saved.key) stop(true); }
    function offline() { stop(true); }
    document.addEventListener("report:stalled", stalled);
    document.addEventListener("report:photo", moving);
    window.addEventListener("offline", offline);
    moving();
    return stop;
  }

  var stopFollowing = null;

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var problems = check();
    if (problems.length) {
      showErrors(problems);
      keep();
      return;
    }
    clearErrors();
    submit.disabled = true;
    var saved = draft;
    shrinking.then(function () {
      saved.fields = typed();
      var keys = new FormData(form).getAll("photo_keys");
      var at = clientAt.value || new Date().toISOString();
      var fields = saved.fields.concat(keys.map(function (key) { return ["photo_keys", key]; }), [
        ["client_at", at],
        ["idempotency_key", saved.key]
      ]);
      if (navigator.onLine) stopFollowing = follow(saved);
      return reports.queueReport(saved, fields, at).then(function () {
        if (!stopFollowing) showQueued(saved);
      });
    }).catch(function () {
      if (stopFollowing) stopFollowing(false);
      stopFollowing = null;
      submit.disabled = false;
      progressLine.hidden = true;
      portal.notify("La mémoire du téléphone est pleine : le rapport n'a pas pu être gardé. Réessayez avec du réseau.");
    });
  });

  // --- Reports waiting on the phone ------------------------------------------------

  function card(saved) {
    var box = document.querySelector('[data-queued="' + saved.key + '"]');
    if (box) return box;
    box = element("section", "card report-queued");
    box.setAttribute("data-queued", saved.key);
    box.setAttribute("role", "status");
    form.before(box);
    return box;
  }

  function showQueued(saved) {
    var box = card(saved);
    box.textContent = "";
    box.appendChild(element("h2", "", "Rapport gardé sur le téléphone"));
    box.appendChild(element("p", "", "Enregistré le " + when(saved.queuedAt) + ", avec " + photos(saved.photos.length) +
      " : il partira de lui-même dès que le réseau le permettra, avec cette heure-là. Rien n'est à refaire."));
    var list = element("ul", "photo-list");
    box.appendChild(list);
    reports.photosOf(saved).then(function (kept) {
      kept.forEach(function (photo) {
        var item = photoItem(null, photo.name);
        item.querySelector(".photo-remove").remove();
        item.querySelector("input").remove();
        list.appendChild(item);
        fillPhoto(item, photo);
      });
    });
    var actions = element("p", "button-row");
    var back = element("a", "button", "Retour à la commande");
    back.href = orderPage;
    var another = element("button", "button", "Saisir un autre rapport");
    another.type = "button";
    another.addEventListener("click", startAnother);
    actions.appendChild(back);
    actions.appendChild(another);
    box.appendChild(actions);
    form.hidden = true;
    if (saved === draft) draft = reports.newDraft(order, url, reference, orderPage);
  }

  function showSent(key) {
    var box = document.querySelector('[data-queued="' + key + '"]');
    if (!box) return;
    box.classList.add("is-sent");
    box.textContent = "";
    box.appendChild(element("h2", "", "Rapport envoyé"));
    box.appendChild(element("p", "", "Le portail l'a reçu ; son PDF est en cours de production."));
    var back = element("a", "button", "Voir la commande");
    back.href = orderPage;
    box.appendChild(back);
  }

  function clearForm() {
    form.reset();
    clearErrors();
    form.querySelectorAll(".photo-item").forEach(function (item) { item.remove(); });
    var signature = form.querySelector("input[name=signature]");
    if (signature) {
      signature.value = "";
      signature.dispatchEvent(new Event("signature:restore"));
    }
    submit.disabled = false;
    progressLine.hidden = true;
    draftLine.hidden = true;
  }

  function startAnother() {
    clearForm();
    draft = reports.newDraft(order, url, reference, orderPage);
    keyInput.value = draft.key;
    form.hidden = false;
    form.querySelector("textarea").focus();
  }

  // A report, or the one being written, found on the phone: shown as it was left.
  function reload(found) {
    draft = found;
    keyInput.value = draft.key;
    restore(draft.fields);
    if (draft.savedAt) {
      draftLine.textContent = "Brouillon gardé sur le téléphone à " + hour(draft.savedAt);
      draftLine.hidden = false;
    }
    reports.photosOf(draft).then(function (kept) {
      kept.forEach(function (photo) { fillPhoto(photoItem(photo.kind, photo.name), photo); });
    });
    if (draft.status === "refused") {
      var problems = [];
      var fields = draft.errors || {};
      Object.keys(fields).forEach(function (name) {
        fields[name].forEach(function (message) { problems.push([name, message]); });
      });
      if (!problems.length && draft.reason) problems.push(["__all__", draft.reason]);
      showErrors(problems, "Le rapport enregistré le " + when(draft.queuedAt) + " a été refusé par le serveur : corrigez-le, puis enregistrez-le à nouveau.");
    }
  }

  document.addEventListener("report:sent", function (event) {
    if (event.detail.key === following) {
      // Saved while the page followed it: the report's own page, its PDF on the way.
      stopFollowing(false);
      window.location.assign(event.detail.url || orderPage);
      return;
    }
    showSent(event.detail.key);
  });

  document.addEventListener("report:refused", function (event) {
    if (String(event.detail.order) !== String(order)) return;
    if (event.detail.key === following) stopFollowing(false);
    progressLine.hidden = true;
    var box = document.querySelector('[data-queued="' + event.detail.key + '"]');
    if (box) box.remove();
    reports.draftFor(order).then(function (found) {
      if (!found || found.key !== event.detail.key) return;
      clearForm();
      form.hidden = false;
      reload(found);
    });
  });

  // The service worker sent the queue (no page of the portal in front): what became of the reports waiting here.
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", function (event) {
      if (!event.data || event.data.type !== "portal-queue") return;
      Promise.all([reports.queuedFor(order), reports.draftFor(order)]).then(function (found) {
        var still = found[0].map(function (saved) { return saved.key; });
        document.querySelectorAll("[data-queued]").forEach(function (box) {
          var key = box.getAttribute("data-queued");
          if (still.indexOf(key) !== -1) return;
          if (found[1] && found[1].key === key && found[1].status === "refused") {
            box.remove();
            clearForm();
            form.hidden = false;
            reload(found[1]);
          } else {
            showSent(key);
          }
        });
      });
    });
  }

  Promise.all([reports.queuedFor(order), reports.draftFor(order)]).then(function (found) {
    var queued = found[0];
    queued.forEach(showQueued);
    if (found[1]) {
      form.hidden = false;
      reload(found[1]);
    } else {
      form.hidden = queued.length > 0;
    }
  });
})();
