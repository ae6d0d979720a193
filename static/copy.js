// Copy to clipboard, shared by the agent pages (app.js) and the admin preview (preview.js):
// window.cardsCopy(value) -> Promise. The clipboard API where the page is a secure context,
// else a hidden textarea and execCommand (plain http demos, older browsers).
(function () {
  "use strict";

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

  window.cardsCopy = function (value) {
    if (navigator.clipboard && window.isSecureContext) {
      return navigator.clipboard.writeText(value).catch(function () {
        return copyWithTextarea(value);
      });
    }
    return copyWithTextarea(value);
  };
})();
