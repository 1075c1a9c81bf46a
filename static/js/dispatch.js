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

  // The dragged backlog order, with the duration typed in the form when it is the one chosen.
  function orderOf(item) {
    var radio = item.querySelector("input[name=commande]");
    var minutes = Number(item.getAttribute("data-minutes"));
    var typed = Number(field.visit_minutes.value);
    if (radio && radio.checked && typed >= 5) minutes = typed;
    var due = item.getAttribute("data-due");
    return {
      item: item,
      radio: radio,
      pk: item.getAttribute("data-order"),
      reference: item.getAttribute("data-reference"),
      minutes: minutes,
      due: due ? Number(due) : null,
      dueLabel: item.getAttribute("data-due-label")
    };
  }

  // What dropping `order` on `slot` would break (board.check_slot's rules, in its order).
  function assess(order, slot) {
    var row = slot.closest(".board-row");
    var index = Array.prototype.indexOf.call(slot.parentNode.children, slot);
    var start = opening + index * SLOT;
    var end = start + order.minutes * 60000;
    var result = { row: row, slot: slot, index: index, start: start, end: end, warnings: [], past: false, late: false, conflict: false };
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
    var force = false;
    if (result.warnings.length) {
      var question = result.warnings.join("\n") + "\n\nPlanifier " + order.reference + " quand même ?";
      if (!window.confirm(question)) {
        say("is-error", "Rien n'a été enregistré : " + order.reference + " reste à planifier.");
        return;
      }
      force = true;
    }
    if (order.radio) order.radio.checked = true;
    field.technician.value = result.row.getAttribute("data-technician");
    field.appointment.value = board.getAttribute("data-day") + "T" + result.slot.getAttribute("data-time");
    field.visit_minutes.value = order.minutes;
    field.force.checked = force;
    order.item.classList.add("is-saving");
    say("", "Enregistrement de " + order.reference + "…");
    form.requestSubmit(); // htmx posts it: the answer replaces the status line, the row and the backlog
  }

  function makeDraggable(list) {
    if (list.getAttribute("data-draggable")) return;
    list.setAttribute("data-draggable", "1");
    var sortable = window.Sortable.create(list, {
      group: { name: "dispatch", pull: "clone", put: false },
      sort: false,
      forceFallback: true,
      fallbackOnBody: true,
      fallbackTolerance: 4, // a click on the label still chooses the order
      draggable: ".backlog-item",
      filter: "a, input",
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
        dragged = orderOf(event.item);
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
          say("", "Lâchée hors du tableau : " + order.reference + " reste à planifier.");
        }
      }
    });
  }

  window.htmx.onLoad(function (root) {
    if (root.matches && root.matches(".backlog-list")) makeDraggable(root);
    if (root.querySelectorAll) root.querySelectorAll(".backlog-list").forEach(makeDraggable);
  });

  // Choosing an order (keyboard, mouse) puts its duration in the form, before
  // htmx asks the server's check of the form (a listener of the capture phase
  // runs before htmx's own, on the way up).
  document.addEventListener(
    "change",
    function (event) {
      var radio = event.target;
      if (radio.name !== "commande" || !radio.checked) return;
      var item = radio.closest(".backlog-item");
      if (item) field.visit_minutes.value = item.getAttribute("data-minutes");
    },
    true
  );

  form.addEventListener("htmx:afterRequest", function () {
    field.force.checked = false;
    document.querySelectorAll(".backlog-item.is-saving").forEach(function (item) {
      item.classList.remove("is-saving");
    });
  });
})();
