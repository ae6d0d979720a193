// Agent pages: CSRF for htmx, the cards poller, copy buttons, relative times.
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

  // The page's poller (#cards-poller) is its one request for card updates.
  function isPoller(elt) {
    return !!(elt && elt.classList && elt.classList.contains("cc-poller"));
  }

  // A poller whose request failed (server restarting, network gone) asks again later
  // instead of leaving its cards spinning; they are marked offline meanwhile.
  var RETRY_MS = 15000;
  function retryLater(event) {
    var poller = event.detail && event.detail.elt;
    if (!isPoller(poller)) return;
    document.querySelectorAll('.cc-card[data-card-state="loading"]').forEach(function (card) {
      card.classList.add("cc-card--offline");
    });
    window.setTimeout(function () {
      if (document.body.contains(poller)) window.htmx.trigger(poller, "card-retry");
    }, RETRY_MS);
  }
  document.addEventListener("htmx:sendError", retryLater);
  document.addEventListener("htmx:responseError", retryLater);

  // A reload (one card or all) may replace the poller while its long-poll runs. That
  // request is left to finish: its target is gone, so its next poller is dropped, and the
  // cards it carries are only ever newer than the page's (aborting it would log an error).

  // Copy buttons: component copy buttons (.cc-copy) and the customer's details.
  var COPIED_MS = 1500;
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
    window.cardsCopy(button.getAttribute("data-copy-value")).then(
      function () { flag(button, "is-copied"); },
      function () { flag(button, "is-copy-failed"); }
    );
  });

  // Agents see time passing (SPEC §7 "Isolation"): a card still loading after 3 s says how
  // long it has waited and that its card service is slow; once a request's deadline has
  // passed (the poller's data-request-timeout), that the load is being retried. Counted from
  // when this page first showed the card loading (the card's HTML is cached: no clock in it).
  var SLOW_AFTER_MS = 3000;
  function requestTimeoutMs() {
    var poller = document.getElementById("cards-poller");
    var seconds = poller && parseFloat(poller.getAttribute("data-request-timeout"));
    return (seconds > 0 ? seconds : 15) * 1000;
  }
  function showWaiting() {
    var now = Date.now();
    var deadline = requestTimeoutMs();
    document.querySelectorAll("[data-card-waiting]").forEach(function (line) {
      if (!line._since) line._since = now;
      var waited = now - line._since;
      if (waited < SLOW_AFTER_MS) return;
      var seconds = Math.floor(waited / 1000) + "\u00a0s";
      line.textContent = waited < deadline
        ? "Waiting " + seconds + " \u00b7 the card service is slow"
        : "No answer in " + Math.round(deadline / 1000) + "\u00a0s \u00b7 retrying (waiting " + seconds + ")";
      line.classList.toggle("cc-card__waiting--retrying", waited >= deadline);
      line.hidden = false;
    });
  }
  showWaiting();
  document.addEventListener("htmx:load", showWaiting);
  window.setInterval(showWaiting, 1000);

  // "loaded 3 minutes ago": written here, from <time datetime>, so the server's card HTML
  // never depends on the clock (it is cached); kept true while the page is open. Same
  // words as Django's naturaltime.
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
  function refreshTimes(root) {
    var times = root.querySelectorAll ? root.querySelectorAll("time[data-relative]") : [];
    Array.prototype.forEach.call(times, function (time) {
      var date = new Date(time.getAttribute("datetime"));
      if (!isNaN(date.getTime())) time.textContent = relative(date);
    });
  }
  refreshTimes(document);
  // htmx:load fires on every element htmx adds: swapped and out-of-band cards alike.
  document.addEventListener("htmx:load", function (event) {
    refreshTimes(event.target);
  });
  window.setInterval(function () {
    refreshTimes(document);
  }, 15000);
})();
