// The report's supplies (orders/_report_materials.html): « Ajouter une
// fourniture » adds a row from the formset's empty form, numbered as Django
// expects (its TOTAL_FORMS raised). Without it, the rows the page came with.
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
