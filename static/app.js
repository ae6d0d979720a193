// Agent pages: CSRF for htmx, copy buttons, relative times, retry after network errors.
// Loaded as a file (the Content-Security-Policy allows no inline script).
(function () {
  "use strict";

  // htmx requests carry the CSRF token from <meta name="csrf-token">.
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta && event.detail.verb !== "get") {
      event.detail.headers["X-CSRFToken"] = meta.content;
    }
  });

  // A card request that failed (server restarting, network gone) asks again later
  // instead of leaving the card spinning. Only card elements poll, so only they retry.
  var RETRY_MS = 15000;
  function retryLater(event) {
    var card = event.detail && event.detail.elt;
    if (!card || !card.classList || !card.classList.contains("cc-card")) return;
    card.classList.add("cc-card--offline");
    window.setTimeout(function () {
      if (document.body.contains(card)) window.htmx.trigger(card, "card-retry");
    }, RETRY_MS);
  }
  document.addEventListener("htmx:sendError", retryLater);
  document.addEventListener("htmx:responseError", retryLater);

  // Copy buttons: component copy buttons (.cc-copy) and the customer's details.
  var COPIED_MS = 1500;
  function copyWithTextarea(value) {
    var area = document.createElement("textarea");
    area.value = value;
    area.setAttribute("readonly", "");
    area.className = "app-offscreen";
    document.body.appendChild(area);
    area.select();
    var ok = false;
    try {
      ok = document.execCommand("copy");
    } catch (e) {
      ok = false;
    }
    document.body.removeChild(area);
    return ok ? Promise.resolve() : Promise.reject(new Error("copy failed"));
  }
  function copy(value) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(value).catch(function () {
        return copyWithTextarea(value);
      });
    }
    return copyWithTextarea(value);
  }
  function flag(button, className) {
    button.classList.remove("is-copied", "is-copy-failed");
    button.classList.add(className);
    window.clearTimeout(button._copyTimer);
    button._copyTimer = window.setTimeout(function () {
      button.classList.remove(className);
    }, COPIED_MS);
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-value]");
    if (!button) return;
    event.preventDefault();
    copy(button.getAttribute("data-copy-value")).then(
      function () { flag(button, "is-copied"); },
      function () { flag(button, "is-copy-failed"); }
    );
  });

  // "loaded 3 minutes ago" stays true while the page is open (same words as naturaltime).
  function plural(n, one, many) {
    return n === 1 ? one : n + "\u00a0" + many;
  }
  function relative(date) {
    var seconds = Math.floor((Date.now() - date.getTime()) / 1000);
    if (seconds < 1) return "now";
    if (seconds < 60) return plural(seconds, "a second", "seconds") + " ago";
    var minutes = Math.floor(seconds / 60);
    if (minutes < 60) return plural(minutes, "a minute", "minutes") + " ago";
    var hours = Math.floor(minutes / 60);
    if (hours < 24) return plural(hours, "an hour", "hours") + " ago";
    var days = Math.floor(hours / 24);
    return plural(days, "1\u00a0day", "days") + " ago";
  }
  function refreshTimes() {
    document.querySelectorAll("time[data-relative]").forEach(function (time) {
      var date = new Date(time.getAttribute("datetime"));
      if (!isNaN(date.getTime())) time.textContent = relative(date);
    });
  }
  window.setInterval(refreshTimes, 15000);
})();
