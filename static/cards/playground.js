// The card playground: checks the document as you type (debounced POST to the check
// endpoint), lists problems with their JSON path and line, marks those lines in the
// editor, and shows the cards as agents would see them. "Link to this" puts the document
// in the URL fragment (#doc=<base64url UTF-8>), which never reaches the server.
// A file, not inline script: agent pages run under a Content-Security-Policy.
(function () {
  "use strict";

  var DEBOUNCE_MS = 250;
  var DEFAULT_EXAMPLE = "customer-details";
  var HASH_KEY = "doc=";

  function encodeDocument(text) {
    var bytes = new TextEncoder().encode(text);
    var binary = "";
    for (var i = 0; i < bytes.length; i += 1) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function decodeDocument(encoded) {
    var base64 = encoded.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
    return new TextDecoder().decode(bytes);
  }

  function documentFromHash() {
    var hash = window.location.hash.replace(/^#/, "");
    if (hash.indexOf(HASH_KEY) !== 0) return null;
    try {
      return decodeDocument(hash.slice(HASH_KEY.length));
    } catch (e) {
      return null;
    }
  }

  function copyText(value) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(value);
    }
    return Promise.reject(new Error("no clipboard"));
  }

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function init() {
    var root = document.getElementById("ci-playground");
    if (!root) return;
    var textarea = document.getElementById("ci-document");
    var numbers = document.getElementById("ci-numbers");
    var marks = document.getElementById("ci-marks");
    var summary = document.getElementById("ci-summary");
    var problemList = document.getElementById("ci-problems");
    var noteList = document.getElementById("ci-notes");
    var rendered = document.getElementById("ci-rendered");
    var select = document.getElementById("ci-example");
    var examples = JSON.parse(document.getElementById("ci-examples").textContent);
    var checkUrl = root.dataset.checkUrl;
    var keysInput = document.getElementById("ci-keys");

    var timer = null;
    var controller = null;
    var sequence = 0;
    var lineCount = 0;
    var markedLines = [];

    function metrics() {
      var style = window.getComputedStyle(textarea);
      return {
        lineHeight: parseFloat(style.lineHeight) || 20,
        paddingTop: parseFloat(style.paddingTop) || 0,
      };
    }

    function renderNumbers() {
      var count = textarea.value.split("\n").length;
      if (count === lineCount) return;
      lineCount = count;
      var text = "";
      for (var i = 1; i <= count; i += 1) text += i + "\n";
      numbers.textContent = text;
    }

    // Marks sit behind the transparent textarea; they follow its scrolling.
    function renderMarks() {
      var m = metrics();
      marks.textContent = "";
      markedLines.forEach(function (line) {
        var mark = document.createElement("div");
        mark.className = "ci-mark";
        mark.dataset.line = String(line);
        mark.style.top = m.paddingTop + (line - 1) * m.lineHeight - textarea.scrollTop + "px";
        mark.style.height = m.lineHeight + "px";
        marks.appendChild(mark);
      });
      numbers.style.transform = "translateY(" + -textarea.scrollTop + "px)";
    }

    function goToLine(line) {
      var lines = textarea.value.split("\n");
      var start = 0;
      for (var i = 0; i < line - 1 && i < lines.length; i += 1) start += lines[i].length + 1;
      var end = start + (lines[line - 1] || "").length;
      textarea.focus();
      textarea.setSelectionRange(start, end);
      var m = metrics();
      textarea.scrollTop = Math.max(0, (line - 1) * m.lineHeight - textarea.clientHeight / 3);
      renderMarks();
    }

    function problemItem(problem, className) {
      var item = document.createElement("li");
      item.className = className;
      item.dataset.line = String(problem.line);
      item.dataset.path = problem.path;
      var button = document.createElement("button");
      button.type = "button";
      button.className = "ci-problem__line";
      button.textContent = "line " + problem.line;
      button.title = "Go to line " + problem.line;
      button.addEventListener("click", function () {
        goToLine(problem.line);
      });
      item.appendChild(button);
      if (problem.path) {
        var path = document.createElement("code");
        path.className = "ci-path";
        path.textContent = problem.path;
        item.appendChild(path);
      }
      var message = document.createElement("span");
      message.className = "ci-problem__message";
      message.textContent = problem.message;
      item.appendChild(message);
      return item;
    }

    function show(result) {
      summary.textContent = result.summary;
      summary.className =
        "ci-status " + (result.valid ? "ci-status--ok" : result.kind === "empty" ? "" : "ci-status--bad");
      problemList.textContent = "";
      result.problems.forEach(function (problem) {
        problemList.appendChild(problemItem(problem, "ci-problem"));
      });
      noteList.textContent = "";
      // Warnings (SPEC §5): the card loads, but outside the strict contract.
      (result.warnings || []).forEach(function (warning) {
        var item = problemItem(warning, "ci-note ci-warning");
        item.querySelector(".ci-problem__message").textContent = "Warning: " + warning.message;
        noteList.appendChild(item);
      });
      result.notes.forEach(function (note) {
        noteList.appendChild(problemItem(note, "ci-note"));
      });
      markedLines = result.problems.map(function (problem) {
        return problem.line;
      });
      renderMarks();
      // Server-rendered by Django templates (escaped, sanitised markdown); no script.
      rendered.innerHTML = result.html || '<p class="ci-muted">Valid cards render here.</p>';
      root.dataset.state = result.valid ? "valid" : result.kind;
    }

    function check() {
      window.clearTimeout(timer);
      sequence += 1;
      var mine = sequence;
      if (controller) controller.abort();
      controller = new AbortController();
      root.classList.add("is-checking");
      var keys = keysInput ? keysInput.value.trim() : "";
      fetch(keys ? checkUrl + "?keys=" + encodeURIComponent(keys) : checkUrl, {
        method: "POST",
        body: textarea.value,
        credentials: "same-origin",
        headers: { "Content-Type": "text/plain;charset=UTF-8", "X-CSRFToken": csrfToken() },
        signal: controller.signal,
      })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (result) {
          if (mine === sequence) show(result);
        })
        .catch(function (error) {
          if (error.name !== "AbortError" && mine === sequence) {
            summary.textContent = "Could not check: " + error.message + ".";
            summary.className = "ci-status ci-status--bad";
          }
        })
        .finally(function () {
          if (mine === sequence) root.classList.remove("is-checking");
        });
    }

    function schedule() {
      select.value = ""; // an edited example is no longer that example
      renderNumbers();
      window.clearTimeout(timer);
      timer = window.setTimeout(check, DEBOUNCE_MS);
    }

    function load(text) {
      textarea.value = text;
      textarea.scrollTop = 0;
      renderNumbers();
      check();
    }

    function loadExample(id) {
      for (var i = 0; i < examples.length; i += 1) {
        if (examples[i].id === id) {
          select.value = id;
          load(examples[i].text);
          return;
        }
      }
    }

    textarea.addEventListener("input", schedule);
    if (keysInput) {
      keysInput.addEventListener("input", function () {
        window.clearTimeout(timer);
        timer = window.setTimeout(check, DEBOUNCE_MS);
      });
    }
    textarea.addEventListener("scroll", renderMarks);
    window.addEventListener("resize", renderMarks);
    // Tab indents instead of leaving the editor; Shift+Tab still moves focus away.
    textarea.addEventListener("keydown", function (event) {
      if (event.key !== "Tab" || event.shiftKey) return;
      event.preventDefault();
      textarea.setRangeText("  ", textarea.selectionStart, textarea.selectionEnd, "end");
      schedule();
    });

    select.addEventListener("change", function () {
      if (select.value) loadExample(select.value);
    });

    root.querySelector('[data-action="format"]').addEventListener("click", function () {
      try {
        load(JSON.stringify(JSON.parse(textarea.value), null, 2));
      } catch (e) {
        summary.textContent = "Cannot format: the document is not valid JSON yet.";
        summary.className = "ci-status ci-status--bad";
      }
    });

    root.querySelector('[data-action="link"]').addEventListener("click", function () {
      window.history.replaceState(null, "", "#" + HASH_KEY + encodeDocument(textarea.value));
      copyText(window.location.href).then(
        function () {
          summary.textContent = "Link copied: it reproduces this document.";
        },
        function () {
          summary.textContent = "The link is in the address bar: it reproduces this document.";
        }
      );
    });

    window.addEventListener("hashchange", function () {
      var text = documentFromHash();
      if (text !== null && text !== textarea.value) load(text);
    });

    var fromHash = documentFromHash();
    if (fromHash !== null) load(fromHash);
    else loadExample(DEFAULT_EXAMPLE);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
