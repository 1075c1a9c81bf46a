// The dispatch board (orders/board.html, orders/supervisor/board.py): an order
// of the backlog « À planifier » dragged onto a technician's half-hour slot.
// Optional: without it, the form beside the backlog does the same (choose the
// order, the technician, the time, « Planifier »), by mouse or keyboard.
//
// Dragging uses SortableJS (static/js/vendor/Sortable.min.js, MIT) in its
// fallback mode (mouse and touch events rather than the browser's drag and
// drop); the slot under the pointer is found here, the rows are no lists.
// While the order is over a slot, it is checked here, from what the page
// already holds, against the same rules as the server's `check_slot`: the
// row's visits it would overlap (each drawn with its start, end and label)
// and its due date; a preview of the visit shows on the row and the status
// line above the board says what is wrong, before the order is let go.
// Letting it go on a slot fills the form and submits it through htmx (after
// a confirmation when something is wrong); the server checks again, saves,
// and answers with the technician's row drawn again and the order taken out
// of the backlog.
//
// A visit of the board that can still be moved (`data-movable`: an appointment
// not begun) is dragged the same way, to another time or another technician's
// row, checked the same way (never against itself). When its time changes it
// is a reschedule: the dialog #move-dialog asks the reason (required, relayed
// to the client) and confirms what it breaks, before the form is submitted
// with the visit chosen in « Visite à déplacer »; the server answers with the
// row it left and the row it went to drawn again.
"use strict";

(function () {
  var board = document.getElementById("tableau");
  var form = document.getElementById("dispatch-form");
  if (!board || !form || !window.Sortable || !window.htmx) return;

  var SLOT = Number(board.getAttribute("data-slot-minutes")) * 60000;
  var QUARTERS = 48;
  var GRACE = 30 * 60000; // a past appointment is refused beyond it (orders/states.py)
  var opening = Number(board.getAttribute("data-opening"));
  var skew = Number(board.getAttribute("data-now")) - Date.now(); // the server's clock, not the computer's
  var field = form.elements;

  function status() {
    return document.getElementById("board-status");
  }

  function clock(minutes) {
    var hours = Math.floor(minutes / 60) % 24;
    var rest = minutes % 60;
    return hours + " h " + (rest < 10 ? "0" : "") + rest;
  }

  function minutesOf(time) {
    var parts = time.split(":");
    return Number(parts[0]) * 60 + Number(parts[1]);
  }

  function numberOrNull(element, name) {
    var value = element.getAttribute(name);
    return value ? Number(value) : null;
  }

  // The dragged backlog order, with the duration typed in the form when it is the one chosen.
  function orderOf(item) {
    var radio = item.querySelector("input[name=commande]");
    var minutes = Number(item.getAttribute("data-minutes"));
    var typed = Number(field.visit_minutes.value);
    if (radio && radio.checked && typed >= 5) minutes = typed;
    return {
      item: item,
      radio: radio,
      visit: false,
      pk: item.getAttribute("data-order"),
      reference: item.getAttribute("data-reference"),
      minutes: minutes,
      due: numberOrNull(item, "data-due"),
      dueLabel: item.getAttribute("data-due-label"),
      replan: item.hasAttribute("data-replan"), // a new time moves the date it has: a reason is asked
      appointment: numberOrNull(item, "data-appointment")
    };
  }

  // The dragged visit of the board: its own duration, its row, its time.
  function visitOf(block) {
    var start = Number(block.getAttribute("data-start"));
    return {
      item: block,
      radio: null,
      visit: true,
      row: block.closest(".board-row"),
      pk: block.getAttribute("data-order"),
      reference: block.getAttribute("data-reference"),
      minutes: Math.round((Number(block.getAttribute("data-end")) - start) / 60000),
      due: numberOrNull(block, "data-due"),
      dueLabel: block.getAttribute("data-due-label"),
      replan: block.hasAttribute("data-replan"),
      appointment: start
    };
  }

  // What is left of it when it is let go nowhere, or when saving is given up.
  function stays(order) {
    return order.visit ? order.reference + " reste à sa place." : order.reference + " reste à planifier.";
  }

  // The server's `orders.planning.is_replanning`: a date it had is moved.
  function needsReason(order, result) {
    return order.replan && result.start !== order.appointment;
  }

  // What dropping `order` on `slot` would break (board.check_slot's rules, in its order).
  function assess(order, slot) {
    var row = slot.closest(".board-row");
    var index = Array.prototype.indexOf.call(slot.parentNode.children, slot);
    var start = opening + index * SLOT;
    var end = start + order.minutes * 60000;
    var result = { row: row, slot: slot, index: index, start: start, end: end, warnings: [], past: false, late: false, conflict: false };
    result.unchanged = order.visit && row === order.row && start === order.appointment;
    if (start < Date.now() + skew - GRACE) {
      result.past = true;
      result.warnings.push("Ce créneau est déjà passé : choisissez une heure à venir.");
    }
    if (order.due !== null && end > order.due) {
      result.late = true;
      result.warnings.push("Après l'échéance du " + order.dueLabel + ".");
    }
    row.querySelectorAll(".board-visit[data-holds]").forEach(function (visit) {
      if (visit.getAttribute("data-order") === order.pk) return;
      if (Number(visit.getAttribute("data-start")) < end && Number(visit.getAttribute("data-end")) > start) {
        result.conflict = true;
        result.warnings.push(
          "Chevauche " + visit.getAttribute("data-reference") + " (" + visit.getAttribute("data-label") + ") de " +
            row.getAttribute("data-name") + "."
        );
      }
    });
    return result;
  }

  function span(order, result) {
    var from = minutesOf(result.slot.getAttribute("data-time"));
    return clock(from) + " – " + clock(from + order.minutes);
  }

  function tone(result) {
    if (result.past || result.conflict) return "is-conflict";
    return result.late ? "is-late" : "is-free";
  }

  function say(className, text, warnings) {
    var box = status();
    if (!box) return;
    box.className = "board-status " + className;
    box.textContent = "";
    var line = document.createElement("p");
    line.textContent = text;
    box.appendChild(line);
    if (warnings && warnings.length) {
      var list = document.createElement("ul");
      list.className = "backlog-warnings";
      warnings.forEach(function (warning) {
        var entry = document.createElement("li");
        entry.textContent = warning;
        list.appendChild(entry);
      });
      box.appendChild(list);
    }
  }

  var preview = null;
  var target = null;

  function clearPreview() {
    if (preview) preview.remove();
    if (target) target.slot.classList.remove("is-drop-target");
    preview = null;
  }

  function show(order, result) {
    clearPreview();
    var quarters = SLOT / 900000;
    var first = result.index * quarters + 1;
    var length = Math.min(Math.max(1, Math.ceil(order.minutes / 15)), QUARTERS - first + 1);
    // Over the row rather than in its grid: the row keeps its height, and the slots stay under the pointer.
    preview = document.createElement("div");
    preview.className = "board-overlay";
    preview.setAttribute("aria-hidden", "true");
    var block = document.createElement("div");
    block.className = "board-preview q-from-" + first + " q-span-" + length + " " + tone(result);
    block.textContent = span(order, result) + " " + order.reference;
    preview.appendChild(block);
    result.row.querySelector(".board-track").appendChild(preview);
    result.slot.classList.add("is-drop-target");
    var where = order.reference + " → " + result.row.getAttribute("data-name") + ", " +
      board.getAttribute("data-day-label") + ", " + span(order, result);
    say(tone(result), result.warnings.length ? where + " :" : where + " : créneau libre, avant l'échéance.", result.warnings);
  }

  var dragged = null;

  // The slot under the pointer (the ghost, the visits and the preview let the pointer through).
  // The copy that follows the pointer (on the body, outside any list) is a
  // picture of the order: inert (neither focused nor read), without ids.
  function quiet() {
    var ghost = document.querySelector("body > .sortable-fallback:not([inert])");
    if (!ghost) return;
    ghost.inert = true;
    ghost.removeAttribute("id");
    ghost.querySelectorAll("[id]").forEach(function (element) { element.removeAttribute("id"); });
  }

  function track(event) {
    quiet();
    var point = event.touches ? event.touches[0] : event;
    var under = document.elementFromPoint(point.clientX, point.clientY);
    var slot = under && under.closest(".board-row[data-technician] .board-slot");
    if (target && slot === target.slot) return;
    clearPreview();
    target = slot ? assess(dragged, slot) : null;
    if (target) {
      show(dragged, target);
    } else {
      say("", "Lâchez " + dragged.reference + " sur la ligne d'un technicien, à l'heure de la visite.");
    }
  }

  function drop(order, result) {
    if (result.past) {
      say("is-error", "Rien n'a été enregistré : ce créneau est déjà passé.");
      return;
    }
    if (result.unchanged) {
      say("", "Rien à changer : " + stays(order));
      return;
    }
    if (needsReason(order, result)) {
      ask(order, result); // the dialog submits, or says nothing was saved
      return;
    }
    var force = false;
    if (result.warnings.length) {
      var verb = order.visit ? "Déplacer " : "Planifier ";
      var question = result.warnings.join("\n") + "\n\n" + verb + order.reference + " quand même ?";
      if (!window.confirm(question)) {
        say("is-error", "Rien n'a été enregistré : " + stays(order));
        return;
      }
      force = true;
    }
    submit(order, result, force, "");
  }

  // The visit chosen in « Visite à déplacer », added when the board's visits changed since the page was drawn.
  function chooseVisit(order) {
    var select = field.visite;
    if (!select.querySelector("option[value='" + order.pk + "']")) {
      select.appendChild(new Option(order.reference, order.pk));
    }
    select.value = order.pk;
  }

  function submit(order, result, force, reason) {
    if (order.visit) {
      document.querySelectorAll("input[name=commande]:checked").forEach(function (radio) { radio.checked = false; });
      chooseVisit(order);
    } else {
      if (order.radio) order.radio.checked = true;
      field.visite.value = "";
    }
    field.technician.value = result.row.getAttribute("data-technician");
    field.appointment.value = board.getAttribute("data-day") + "T" + result.slot.getAttribute("data-time");
    field.visit_minutes.value = order.minutes;
    field.force.checked = force;
    field.reason.value = reason;
    order.item.classList.add("is-saving");
    say("", "Enregistrement de " + order.reference + "…");
    form.requestSubmit(); // htmx posts it: the answer replaces the status line, the rows and the backlog
  }

  // The dialog after a drop that moves a date: the reason (required), and what it breaks, confirmed.
  var dialog = document.getElementById("move-dialog");
  var asked = null;

  function part(name) {
    return dialog.querySelector("[data-move='" + name + "']");
  }

  function ask(order, result) {
    if (!dialog || !dialog.showModal) {
      say("is-error", "Rien n'a été enregistré : choisissez la visite dans « Ou une visite à déplacer » et indiquez le motif.");
      return;
    }
    asked = { order: order, result: result };
    part("reference").textContent = order.reference;
    part("where").textContent = "Vers " + result.row.getAttribute("data-name") + ", " +
      board.getAttribute("data-day-label") + ", " + span(order, result) + ".";
    var list = part("warnings");
    list.textContent = "";
    result.warnings.forEach(function (warning) {
      var entry = document.createElement("li");
      entry.textContent = warning;
      list.appendChild(entry);
    });
    list.hidden = !result.warnings.length;
    var reason = document.getElementById("move-reason");
    var error = document.getElementById("move-error");
    reason.value = "";
    reason.removeAttribute("aria-invalid");
    error.hidden = true;
    error.textContent = "";
    part("confirm").textContent = result.warnings.length ? "Déplacer quand même" : "Déplacer";
    dialog.showModal();
    reason.focus();
  }

  if (dialog) {
    dialog.querySelector("form").addEventListener("submit", function (event) {
      event.preventDefault();
      var reason = document.getElementById("move-reason");
      var text = reason.value.replace(/\s+/g, " ").trim();
      if (!text) {
        var error = document.getElementById("move-error");
        error.textContent = "Indiquez le motif du report : il est transmis au client avec le nouveau rendez-vous.";
        error.hidden = false;
        reason.setAttribute("aria-invalid", "true");
        reason.focus();
        return;
      }
      var chosen = asked;
      asked = null;
      dialog.close();
      submit(chosen.order, chosen.result, chosen.result.warnings.length > 0, text);
    });
    part("cancel").addEventListener("click", function () { dialog.close(); });
    // Closed without saving (« Annuler », Échap): nothing was.
    dialog.addEventListener("close", function () {
      if (!asked) return;
      say("is-error", "Rien n'a été enregistré : " + stays(asked.order));
      asked = null;
    });
  }

  // The backlog's list (its orders), or a row's track (its visits that can be moved).
  function makeDraggable(list, draggable, read) {
    if (list.getAttribute("data-draggable")) return;
    list.setAttribute("data-draggable", "1");
    var sortable = window.Sortable.create(list, {
      group: { name: "dispatch", pull: "clone", put: false },
      sort: false,
      forceFallback: true,
      fallbackOnBody: true,
      fallbackTolerance: 4, // a click on the label still chooses the order, on a visit still opens it
      draggable: draggable,
      filter: draggable === ".backlog-item" ? "a, input" : "",
      preventOnFilter: false,
      // The dragged order follows the pointer just below and to the right of
      // it, wherever it was grabbed, so that it never hides the slot aimed at.
      onChoose: function (event) {
        var press = event.originalEvent && (event.originalEvent.touches ? event.originalEvent.touches[0] : event.originalEvent);
        if (!press) return;
        var box = event.item.getBoundingClientRect();
        sortable.option("fallbackOffset", { x: 14 + press.clientX - box.left, y: 18 + press.clientY - box.top });
      },
      onStart: function (event) {
        dragged = read(event.item);
        target = null;
        document.body.classList.add("is-dragging");
        var check = document.getElementById("dispatch-check");
        if (check) check.textContent = "";
        document.addEventListener("mousemove", track);
        document.addEventListener("touchmove", track);
        say("", "Lâchez " + dragged.reference + " sur la ligne d'un technicien, à l'heure de la visite.");
      },
      onEnd: function () {
        document.removeEventListener("mousemove", track);
        document.removeEventListener("touchmove", track);
        document.body.classList.remove("is-dragging");
        var result = target;
        var order = dragged;
        clearPreview();
        target = null;
        dragged = null;
        if (result) {
          drop(order, result);
        } else {
          say("", "Lâchée hors du tableau : " + stays(order));
        }
      }
    });
  }

  function backlogList(list) {
    makeDraggable(list, ".backlog-item", orderOf);
  }

  function visitsOf(list) {
    makeDraggable(list, ".board-visit[data-movable]", visitOf);
  }

  // The page, the backlog filtered again, a row drawn again after a drop.
  window.htmx.onLoad(function (root) {
    if (!root.querySelectorAll) return;
    if (root.matches(".backlog-list")) backlogList(root);
    root.querySelectorAll(".backlog-list").forEach(backlogList);
    root.querySelectorAll(".board-row[data-technician] .board-track").forEach(visitsOf);
  });

  // Choosing an order (keyboard, mouse) puts its duration in the form, before
  // htmx asks the server's check of the form (a listener of the capture phase
  // runs before htmx's own, on the way up).
  // Choosing a visit to move does the same with its own duration, and the
  // two choices exclude each other.
  document.addEventListener(
    "change",
    function (event) {
      var chosen = event.target;
      if (chosen.name === "commande" && chosen.checked) {
        var item = chosen.closest(".backlog-item");
        if (item) field.visit_minutes.value = item.getAttribute("data-minutes");
        field.visite.value = "";
      } else if (chosen === field.visite && chosen.value) {
        document.querySelectorAll("input[name=commande]:checked").forEach(function (radio) { radio.checked = false; });
        var block = board.querySelector(".board-visit[data-order='" + chosen.value + "']");
        if (block) field.visit_minutes.value = visitOf(block).minutes;
      }
    },
    true
  );

  form.addEventListener("htmx:afterRequest", function (event) {
    field.force.checked = false;
    document.querySelectorAll(".backlog-item.is-saving, .board-visit.is-saving").forEach(function (item) {
      item.classList.remove("is-saving");
    });
    // Saved: the visit chosen and the reason given are done with.
    if (event.detail.successful && event.detail.xhr.responseText.indexOf("board-status is-ok") !== -1) {
      field.visite.value = "";
      field.reason.value = "";
    }
  });
})();
