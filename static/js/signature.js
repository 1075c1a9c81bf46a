/* The occupant's signature on the intervention report: drawn with a finger,
   a stylus or a mouse on a canvas (pointer events), kept in a hidden field as a
   PNG data URL. Without JavaScript the pad stays hidden and the form offers
   "absent" or "refused" only. No inline script: the page loads this file. */
(function () {
  "use strict";

  var MAX_RATIO = 2; // a sharper canvas than this only makes the PNG heavier

  function setUp(pad) {
    var form = pad.closest("form");
    var canvas = pad.querySelector("canvas");
    var input = document.getElementById(pad.dataset.input);
    var clear = pad.querySelector("[data-signature-clear]");
    var choices = form.querySelectorAll('input[name="' + pad.dataset.choice + '"]');
    var signed = form.querySelector('input[name="' + pad.dataset.choice + '"][value="signed"]');
    var context = canvas.getContext("2d");
    var drawing = false;
    var last = null;

    var sizedFor = 0;

    function showForChoice() {
      pad.hidden = !(signed && signed.checked);
      if (!pad.hidden) resize();
    }

    function resize() {
      var ratio = Math.min(window.devicePixelRatio || 1, MAX_RATIO);
      var width = canvas.clientWidth;
      var height = canvas.clientHeight;
      // Phones fire "resize" when the address bar hides: only a new width counts.
      if (!width || !height || width === sizedFor) return;
      sizedFor = width;
      canvas.width = Math.round(width * ratio);
      canvas.height = Math.round(height * ratio);
      context.setTransform(ratio, 0, 0, ratio, 0, 0);
      context.lineWidth = 2.5;
      context.lineCap = "round";
      context.lineJoin = "round";
      context.strokeStyle = "#102a43";
      if (input.value) redraw(input.value);
    }

    function redraw(dataUrl) {
      // After a resize, or when the page comes back with an error: show what was signed.
      var image = new Image();
      image.onload = function () {
        context.drawImage(image, 0, 0, canvas.clientWidth, canvas.clientHeight);
      };
      image.src = dataUrl;
    }

    function point(event) {
      var box = canvas.getBoundingClientRect();
      return { x: event.clientX - box.left, y: event.clientY - box.top };
    }

    function stroke(to) {
      context.beginPath();
      context.moveTo(last.x, last.y);
      context.lineTo(to.x, to.y);
      context.stroke();
      last = to;
    }

    canvas.addEventListener("pointerdown", function (event) {
      if (event.button !== undefined && event.button > 0) return;
      event.preventDefault();
      canvas.setPointerCapture(event.pointerId);
      drawing = true;
      last = point(event);
      stroke({ x: last.x + 0.01, y: last.y + 0.01 }); // a dot for a single tap
      if (signed) signed.checked = true;
    });

    canvas.addEventListener("pointermove", function (event) {
      if (!drawing) return;
      event.preventDefault();
      var events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
      if (!events.length) events = [event];
      events.forEach(function (each) { stroke(point(each)); });
    });

    function finish(event) {
      if (!drawing) return;
      drawing = false;
      if (canvas.hasPointerCapture && canvas.hasPointerCapture(event.pointerId)) {
        canvas.releasePointerCapture(event.pointerId);
      }
      input.value = canvas.toDataURL("image/png");
      input.dispatchEvent(new Event("change", { bubbles: true })); // kept on the phone (report-form.js)
    }
    canvas.addEventListener("pointerup", finish);
    canvas.addEventListener("pointercancel", finish);

    clear.addEventListener("click", function () {
      context.clearRect(0, 0, canvas.width, canvas.height);
      input.value = "";
      input.dispatchEvent(new Event("change", { bubbles: true }));
    });

    // A signature found again on the phone (report-form.js): shown in the pad.
    input.addEventListener("signature:restore", function () {
      sizedFor = 0;
      context.clearRect(0, 0, canvas.width, canvas.height);
      showForChoice();
    });

    choices.forEach(function (choice) {
      choice.addEventListener("change", showForChoice);
    });
    window.addEventListener("resize", resize);
    showForChoice();
  }

  function init() {
    document.querySelectorAll("[data-signature-pad]").forEach(setUp);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
