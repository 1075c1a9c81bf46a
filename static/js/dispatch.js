// The dispatch board on the planning page (orders/planning.html): an order of
// the backlog « À planifier » dragged onto a technician's day of the week.
// Optional: without it, the backlog's form does the same (choose the order,
// the technician and the time, « Planifier »), by mouse or keyboard.
//
// Dragging uses SortableJS (static/js/vendor/Sortable.min.js, MIT), in its
// fallback mode (mouse and touch events rather than the browser's drag and
// drop, the same on a phone); the day under the pointer is found here, the
// week's cells are no lists. While the order is over a day, the backlog's
// form is filled in (the order, the technician, that day at the time of its
// « Rendez-vous » field, 8:00 when empty) and htmx asks the server for the
// check: the technician's overlapping visits and the due date show before
// the order is let go. Letting it go on a day saves it, through the form.
"use strict";

(function () {
  var backlog = document.querySelector("#a-planifier .backlog-list");
  var form = document.querySelector("#a-planifier form.backlog-form");
  if (!backlog || !form || !window.Sortable) return;
  var technician = form.querySelector("select[name=technician]");
  var appointment = form.querySelector("input[name=appointment]");
  var planning = document.querySelector("table.planning");
  var lastTarget = null;

  function dayOf(cell) {
    var header = planning.tHead.rows[0].cells[cell.cellIndex];
    return header && header.getAttribute("data-day");
  }

  function timeOfDay() {
    var value = appointment.value;
    return value && value.indexOf("T") > 0 ? value.split("T")[1] : "08:00";
  }

  // Fill the form for `item` on `cell`; true when the cell is a technician's day.
  function fill(item, cell) {
    var row = cell && cell.parentElement;
    var who = row && row.getAttribute("data-technician");
    var day = cell && dayOf(cell);
    if (!who || !day) return false;
    var radio = item.querySelector("input[name=commande]");
    if (radio) radio.checked = true;
    technician.value = who;
    appointment.value = day + "T" + timeOfDay();
    return true;
  }

  function check() {
    form.dispatchEvent(new Event("change", { bubbles: true }));
  }

  // The copy that follows the pointer (on the body, outside any list) is a
  // picture of the order: inert (neither focused nor read), without ids.
  function quiet() {
    var ghost = document.querySelector("body > .sortable-fallback:not([inert])");
    if (!ghost) return;
    ghost.inert = true;
    ghost.removeAttribute("id");
    ghost.querySelectorAll("[id]").forEach(function (element) { element.removeAttribute("id"); });
  }

  // The day under the pointer (the ghost lets the pointer through).
  function track(event) {
    quiet();
    var point = event.touches ? event.touches[0] : event;
    var under = document.elementFromPoint(point.clientX, point.clientY);
    var cell = under && under.closest("table.planning tbody tr[data-technician] td");
    if (cell === lastTarget) return;
    if (lastTarget) lastTarget.classList.remove("is-drop-target");
    lastTarget = cell && fill(dragged, cell) ? cell : null;
    if (lastTarget) {
      lastTarget.classList.add("is-drop-target");
      check();
    }
  }

  var dragged = null;
  window.Sortable.create(backlog, {
    group: { name: "dispatch", pull: "clone", put: false },
    sort: false,
    forceFallback: true,
    fallbackOnBody: true,
    draggable: ".backlog-item",
    filter: "a, input",
    preventOnFilter: false,
    onStart: function (event) {
      dragged = event.item;
      lastTarget = null;
      document.addEventListener("mousemove", track);
      document.addEventListener("touchmove", track);
    },
    onEnd: function () {
      document.removeEventListener("mousemove", track);
      document.removeEventListener("touchmove", track);
      var target = lastTarget;
      lastTarget = null;
      if (target) {
        target.classList.remove("is-drop-target");
        form.requestSubmit(); // saved through the form, filled in for that day
      }
    }
  });
})();
