// The report's supplies (orders/_report_materials.html): « Ajouter une
// fourniture » adds a row from the formset's empty form, numbered as Django
// expects (its TOTAL_FORMS raised), and each row says the label of the code
// typed, from the page's list of the price schedule (the server checks it
// again). Without it, the rows the page came with, without the labels.
"use strict";

(function () {
  var section = document.getElementById("fournitures");
  if (!section) return;
  var rows = section.querySelector("[data-material-rows]");
  var template = section.querySelector("template[data-material-template]");
  var add = section.querySelector("[data-material-add]");
  var total = section.querySelector("input[name$='-TOTAL_FORMS']");
  var most = section.querySelector("input[name$='-MAX_NUM_FORMS']");
  if (!rows || !template || !add || !total) return;
  var labels = {};
  section.querySelectorAll("datalist#bordereau option").forEach(function (option) {
    labels[option.value.toUpperCase()] = option.textContent;
  });

  // Under the row: the schedule's label of its code, or that it is not in the schedule.
  function describe(input) {
    var row = input.closest(".material-row");
    if (!row) return;
    var note = row.querySelector(".material-label");
    if (!note) {
      note = document.createElement("p");
      note.className = "material-label muted";
      note.setAttribute("aria-live", "polite");
      row.appendChild(note);
    }
    var code = input.value.trim().toUpperCase();
    note.textContent = !code ? "" : labels[code] || "Ce code n'est pas au bordereau du marché.";
  }

  section.addEventListener("input", function (event) {
    if (event.target.matches("input[name$='-code']")) describe(event.target);
  });
  section.querySelectorAll("input[name$='-code']").forEach(function (input) {
    if (input.value) describe(input);
  });
  add.hidden = false;
  add.addEventListener("click", function () {
    var index = Number(total.value);
    if (most && index >= Number(most.value)) return;
    var row = template.content.firstElementChild.cloneNode(true);
    row.querySelectorAll("input, label").forEach(function (element) {
      ["id", "name", "for"].forEach(function (attribute) {
        var value = element.getAttribute(attribute);
        if (value) element.setAttribute(attribute, value.replace("__prefix__", String(index)));
      });
    });
    rows.appendChild(row);
    total.value = String(index + 1);
    row.querySelector("input").focus();
  });
})();
