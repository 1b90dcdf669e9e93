// Small progressive enhancements; every page works without them.
(function () {
  "use strict";
  // Preselect the browser's time zone when the person has not chosen one yet.
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector("[data-timezone-guess='1'] select");
    if (box && window.Intl) {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone && box.querySelector("option[value='" + zone + "']")) box.value = zone;
    }
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  });
  // Ask before destructive actions (forms marked data-confirm).
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  }, true);
})();
