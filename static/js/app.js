// The little behaviour htmx has no attribute for; no inline script anywhere (CSP).
(function () {
  "use strict";

  // Forms that destroy something ask first.
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute && event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // The account form shows the IMAP fields or the local path, depending on the source.
  function syncSourceFields(select) {
    document.querySelectorAll("[data-source]").forEach(function (fieldset) {
      var shown = fieldset.getAttribute("data-source").split(" ").indexOf(select.value) !== -1;
      fieldset.hidden = !shown;
      fieldset.disabled = !shown;
    });
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-source-select]")) syncSourceFields(event.target);
  });
  document.addEventListener("DOMContentLoaded", function () {
    var select = document.querySelector("[data-source-select]");
    if (select) syncSourceFields(select);
  });
})();
