// Agent pages: CSRF for htmx, morphing, the cards poller and its connection notice, the
// page's live region, focus that stays put, copy buttons, "/" for search, relative times.
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

  // Swaps morph the page in place (idiomorph). A relative time whose moment did not
  // change keeps the words the browser wrote ("2 minutes ago"): nothing to touch.
  if (window.Idiomorph) {
    var callbacks = window.Idiomorph.defaults.callbacks;
    var beforeMorphed = callbacks.beforeNodeMorphed;
    callbacks.beforeNodeMorphed = function (oldNode, newNode) {
      if (
        oldNode.nodeType === 1 &&
        newNode.nodeType === 1 &&
        oldNode.matches("time[data-relative]") &&
        oldNode.getAttribute("datetime") === newNode.getAttribute("datetime")
      ) {
        return false;
      }
      return beforeMorphed(oldNode, newNode);
    };
  }

  // ---- The page's one polite live region -----------------------------------------
  var said = [];
  var sayTimer = null;
  function announce(text) {
    var live = document.getElementById("app-live");
    if (!live) return;
    if (!said.length) live.textContent = "";
    said.push(text);
    window.clearTimeout(sayTimer);
    // Messages from one answer are read together, once.
    sayTimer = window.setTimeout(function () {
      live.textContent = said.join(" ");
      said = [];
    }, 150);
  }
  window.cardsAnnounce = announce;

  // Cards that finished loading or failed are announced; a card's state is read from
  // the page after every swap and compared with the last one seen.
  var cardStates = {};
  function cardTitle(card) {
    var title = card.querySelector(".cc-card__title");
    return title ? title.textContent.trim() : card.getAttribute("data-card-key");
  }
  function readCards(speak) {
    var panel = document.getElementById("cards-panel");
    if (!panel) return;
    panel.querySelectorAll(".cc-card[data-card-key]").forEach(function (card) {
      var key = card.getAttribute("data-card-key");
      var state = card.getAttribute("data-card-state");
      var before = cardStates[key];
      cardStates[key] = state;
      if (!speak || before === state) return;
      if (state === "loaded" && before === "loading") announce(cardTitle(card) + " loaded.");
      if (state === "error") announce(cardTitle(card) + " could not be loaded.");
    });
  }
  readCards(false);

  // ---- Focus stays put -----------------------------------------------------------
  // Morphing keeps elements, so focus and a selection survive. When the focused element
  // itself goes away (a "Try again" button once the card reloads), focus moves to the
  // card's reload button rather than falling to <body>.
  var focusMemo = null;
  function rememberFocus() {
    var active = document.activeElement;
    if (!active || active === document.body) return;
    var card = active.closest && active.closest(".cc-card[data-card-key]");
    focusMemo = { id: active.id, card: card ? card.id : null };
  }
  function restoreFocus() {
    var memo = focusMemo;
    focusMemo = null;
    var active = document.activeElement;
    if (!memo || (active && active !== document.body && document.body.contains(active))) return;
    var target = (memo.id && document.getElementById(memo.id)) ||
      (memo.card && document.getElementById(memo.card + "-reload"));
    if (target) target.focus({ preventScroll: true });
  }
  document.addEventListener("htmx:beforeSwap", rememberFocus);
  document.addEventListener("htmx:oobBeforeSwap", function () {
    if (!focusMemo) rememberFocus();
  });

  var afterSwapQueued = false;
  function afterSwap() {
    if (afterSwapQueued) return;
    afterSwapQueued = true;
    window.setTimeout(function () {
      afterSwapQueued = false;
      restoreFocus();
      refreshTimes(document);
      readCards(true);
    }, 0);
  }
  document.addEventListener("htmx:afterSwap", afterSwap);
  document.addEventListener("htmx:oobAfterSwap", afterSwap);
  document.addEventListener("htmx:afterSettle", afterSwap);

  // ---- The poller and the connection ---------------------------------------------
  // The page's poller (#cards-poller) is its one request for card updates. When it (or a
  // reload) fails (server restarting, network gone), the page says so, counts down, and
  // asks again; nothing shimmers meanwhile.
  var RETRY_SECONDS = 15;
  var countdown = null;
  var offline = false;
  function isPoller(elt) {
    return !!(elt && elt.classList && elt.classList.contains("cc-poller"));
  }
  function isCardsRequest(elt) {
    return isPoller(elt) || !!(elt && elt.closest && elt.closest("#cards-panel"));
  }
  function showSeconds(seconds) {
    document.querySelectorAll("[data-connection-seconds]").forEach(function (span) {
      span.textContent = String(seconds);
    });
  }
  function retryNow() {
    window.clearInterval(countdown);
    countdown = null;
    var poller = document.getElementById("cards-poller");
    if (poller && poller.hasAttribute("hx-get")) window.htmx.trigger(poller, "card-retry");
  }
  function connectionLost() {
    var panel = document.getElementById("cards-panel");
    var notice = document.getElementById("cards-connection");
    if (panel) panel.classList.add("cc-panel--offline");
    if (notice) notice.hidden = false;
    if (!offline) announce("Connection lost. Retrying in " + RETRY_SECONDS + " seconds.");
    offline = true;
    var remaining = RETRY_SECONDS;
    showSeconds(remaining);
    window.clearInterval(countdown);
    countdown = window.setInterval(function () {
      remaining -= 1;
      if (remaining <= 0) retryNow();
      else showSeconds(remaining);
    }, 1000);
  }
  function connectionBack() {
    if (!offline) return;
    offline = false;
    window.clearInterval(countdown);
    countdown = null;
    var panel = document.getElementById("cards-panel");
    var notice = document.getElementById("cards-connection");
    if (panel) panel.classList.remove("cc-panel--offline");
    if (notice) notice.hidden = true;
    announce("Connection restored.");
  }
  // The element that made the request: htmx re-fires events of a request whose element
  // was swapped out on a connected ancestor, with that ancestor as `detail.elt`.
  function requester(event) {
    var detail = event.detail || {};
    return (detail.requestConfig && detail.requestConfig.elt) || detail.elt;
  }
  function onFailure(event) {
    if (isCardsRequest(requester(event))) connectionLost();
  }
  document.addEventListener("htmx:sendError", onFailure);
  document.addEventListener("htmx:responseError", onFailure);
  document.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail && event.detail.successful && isCardsRequest(requester(event))) {
      connectionBack();
    }
  });
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-connection-retry]")) retryNow();
  });
  // A morph of the panel ("Reload all") redraws the notice hidden: keep it true.
  document.addEventListener("htmx:afterSettle", function () {
    if (!offline) return;
    var notice = document.getElementById("cards-connection");
    var panel = document.getElementById("cards-panel");
    if (notice) notice.hidden = false;
    if (panel) panel.classList.add("cc-panel--offline");
  });

  // A reload (one card or all) may replace the poller while its long-poll runs. That
  // request is left to finish: its target is gone, so its next poller is dropped, and the
  // cards it carries are only ever newer than the page's (aborting it would log an error).

  // ---- Copy buttons: component copy buttons (.cc-copy) and the customer's details ----
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
      function () {
        flag(button, "is-copied");
        announce("Copied.");
      },
      function () {
        flag(button, "is-copy-failed");
        announce("Copy failed.");
      }
    );
  });

  // ---- "/" focuses the customer search (GitHub's and Plain's key) ---------------------
  document.addEventListener("keydown", function (event) {
    if (event.key !== "/" || event.ctrlKey || event.metaKey || event.altKey) return;
    var target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) return;
    var search = document.querySelector("[data-search-shortcut]");
    if (!search) return;
    event.preventDefault();
    search.focus();
    search.select();
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

  // ---- "loaded 3 minutes ago" -----------------------------------------------------
  // Written here, from <time datetime>, so the server's card HTML never depends on the
  // clock (it is cached); kept true while the page is open. Same words as Django's
  // naturaltime. Only changed words are written: an unchanged card is not touched.
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
      if (isNaN(date.getTime())) return;
      var words = relative(date);
      if (time.textContent !== words) time.textContent = words;
    });
  }
  refreshTimes(document);
  // htmx:load fires on every element htmx adds or morphs in.
  document.addEventListener("htmx:load", function (event) {
    refreshTimes(event.target);
  });
  window.setInterval(function () {
    refreshTimes(document);
  }, 15000);
})();
