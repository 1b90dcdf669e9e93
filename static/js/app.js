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
    // On a phone the sections scroll in one row: show the current one.
    var current = document.querySelector(".top nav [aria-current='page']");
    var row = current && current.closest("nav");
    if (row && row.scrollWidth > row.clientWidth) row.scrollLeft = current.offsetLeft - row.clientWidth / 2 + current.offsetWidth / 2;
    var summary = document.getElementById("error-summary");
    if (summary) summary.focus();
  });
  // A table wider than the screen scrolls sideways in its .table-wrap: let the keyboard reach and
  // scroll it too (a tab stop only where it scrolls, named after the table's caption or heading).
  function markScrollingTables() {
    document.querySelectorAll(".table-wrap").forEach(function (wrap) {
      if (wrap.scrollWidth > wrap.clientWidth + 1) {
        var caption = wrap.querySelector("caption");
        var section = wrap.closest("section");
        var heading = section && section.querySelector("h2");
        var name = (caption || heading || document.querySelector("h1") || {}).textContent || "Table";
        wrap.setAttribute("tabindex", "0");
        wrap.setAttribute("role", "region");
        wrap.setAttribute("aria-label", name.trim() + " (scrolls sideways)");
      } else if (wrap.getAttribute("role") === "region") {
        wrap.removeAttribute("tabindex");
        wrap.removeAttribute("role");
        wrap.removeAttribute("aria-label");
      }
    });
  }
  document.addEventListener("DOMContentLoaded", markScrollingTables);
  document.addEventListener("htmx:afterSettle", markScrollingTables);
  window.addEventListener("resize", markScrollingTables);
  // Ask before destructive actions (forms marked data-confirm).
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  }, true);
})();
