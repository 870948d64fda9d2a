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

  // Each security mode has its usual port; a port the user typed stays as typed.
  var USUAL_PORTS = { ssl: "993", starttls: "143", none: "143" };
  function syncPort(select) {
    var port = document.querySelector("[data-port-input]");
    if (!port) return;
    var usual = ["", "993", "143"].indexOf(port.value.trim()) !== -1;
    if (usual && USUAL_PORTS[select.value]) port.value = USUAL_PORTS[select.value];
  }

  // A provider fills in its server, port, security and folder hints, and says how it lets
  // a program in (an app password, or only its own sign-in).
  function syncProvider(select) {
    var preset = JSON.parse(select.getAttribute("data-presets"))[select.value];
    document.querySelectorAll("[data-provider-help]").forEach(function (help) {
      help.hidden = help.getAttribute("data-provider-help") !== select.value;
    });
    var hints = document.getElementById("folder-hints");
    var folders = preset ? preset.folders : ["INBOX"];
    hints.replaceChildren.apply(hints, folders.map(function (name) {
      var option = document.createElement("option");
      option.value = name;
      return option;
    }));
    if (!preset) return;
    document.querySelector("[data-host-input]").value = preset.host;
    document.querySelector("[data-port-input]").value = String(preset.port);
    document.querySelector("[data-security-select]").value = preset.security;
    var folder = document.querySelector("[data-folder-input]");
    if (!folder.value.trim()) folder.value = folders[0];
  }

  document.addEventListener("change", function (event) {
    if (event.target.matches("[data-source-select]")) syncSourceFields(event.target);
    if (event.target.matches("[data-security-select]")) syncPort(event.target);
    if (event.target.matches("[data-provider-select]")) syncProvider(event.target);
  });

  // "Confiar en este certificado" pins the fingerprint the probe showed and probes again;
  // saving the form keeps it. "Dejar de confiar" forgets it.
  function showPin(value, shown) {
    document.getElementById("tls_fingerprint").value = value;
    var note = document.querySelector("[data-pinned]");
    note.querySelector("[data-pinned-value]").textContent = shown;
    note.hidden = !value;
  }

  document.addEventListener("click", function (event) {
    var trust = event.target.closest && event.target.closest("[data-trust-fingerprint]");
    if (trust) {
      showPin(trust.getAttribute("data-trust-fingerprint"), trust.getAttribute("data-shown"));
      document.querySelector("[data-probe]").click();
    }
    if (event.target.closest && event.target.closest("[data-clear-pin]")) showPin("", "");
  });

  // A link in an error list puts the cursor in its field, not only the scroll position.
  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a[data-field]");
    var field = link && document.getElementById(link.getAttribute("href").slice(1));
    if (!field) return;
    event.preventDefault();
    field.focus();
  });

  // "Probar conexión" lists the fields to fix; mark them as the server marks them on save.
  // htmx 4 fires the event on the button that asked.
  document.addEventListener("htmx:after:swap", function (event) {
    if (!event.target.matches || !event.target.matches("[data-probe]")) return;
    var result = document.getElementById("connection-result");
    var form = result.closest("form");
    form.querySelectorAll("[aria-invalid]").forEach(function (field) {
      field.removeAttribute("aria-invalid");
    });
    result.querySelectorAll("a[data-field]").forEach(function (link) {
      var field = form.elements.namedItem(link.getAttribute("data-field"));
      if (field) field.setAttribute("aria-invalid", "true");
    });
  });

  document.addEventListener("DOMContentLoaded", function () {
    var select = document.querySelector("[data-source-select]");
    if (select) syncSourceFields(select);
    var summary = document.querySelector("[data-error-summary]");
    if (summary) summary.focus();
  });
})();
