// The card config preview (admin change/add page): posts the form's current values, saved
// or not, to the preview endpoint and shows the HTML fragment it answers.
// A file, not inline script, so the page works under a Content-Security-Policy.
(function () {
  "use strict";

  function csrfToken(form) {
    var input = form.querySelector('input[name="csrfmiddlewaretoken"]');
    return input ? input.value : "";
  }

  function setup(panel) {
    var form = panel.closest("form");
    var button = panel.querySelector("[data-preview-run]");
    var status = panel.querySelector("[data-preview-status]");
    var result = panel.querySelector("[data-preview-result]");
    if (!form || !button || !result) return;
    var running = null;

    button.addEventListener("click", function () {
      if (running) running.abort();
      running = new AbortController();
      var data = new FormData(form);
      data.set("preview-object_id", panel.dataset.objectId || "");
      button.disabled = true;
      status.textContent = "Sending one request…";
      panel.classList.add("is-busy");
      fetch(panel.dataset.previewUrl, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        headers: { "X-CSRFToken": csrfToken(form) },
        signal: running.signal,
      })
        .then(function (response) {
          return response.text().then(function (text) {
            if (!response.ok) throw new Error("the preview failed (HTTP " + response.status + ")");
            // Server-rendered and escaped by Django templates; it carries no script.
            result.innerHTML = text;
            status.textContent = "";
          });
        })
        .catch(function (error) {
          if (error.name === "AbortError") return;
          status.textContent = "Could not preview: " + error.message + ".";
        })
        .finally(function () {
          button.disabled = false;
          panel.classList.remove("is-busy");
        });
    });

    result.addEventListener("click", function (event) {
      var curlButton = event.target.closest("[data-copy-curl]");
      if (curlButton) {
        var curl = result.querySelector("[data-curl]");
        var note = result.querySelector("[data-copy-status]");
        window.cardsCopy(curl ? curl.textContent : "").then(
          function () {
            if (note) note.textContent = "Copied.";
          },
          function () {
            if (note) note.textContent = "Copy failed: select the command under curl.";
          }
        );
        return;
      }
      // Copy buttons inside the rendered card work as they do for agents.
      var copyButton = event.target.closest(".cc-copy");
      if (copyButton) {
        window.cardsCopy(copyButton.dataset.copyValue || "").then(function () {
          copyButton.classList.add("is-copied");
          window.setTimeout(function () {
            copyButton.classList.remove("is-copied");
          }, 1500);
        });
      }
    });
  }

  function init() {
    var panel = document.getElementById("ci-preview");
    if (!panel) return;
    setup(panel);
    // "Preview" at the top of the page: jump to the panel and run it.
    document.querySelectorAll("[data-preview-jump]").forEach(function (link) {
      link.addEventListener("click", function (event) {
        var run = panel.querySelector("[data-preview-run]");
        if (!run) return;
        event.preventDefault();
        panel.scrollIntoView({ block: "start" });
        panel.focus({ preventScroll: true });
        run.click();
      });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
