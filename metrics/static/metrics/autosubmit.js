// A <select data-autosubmit> submits its form when changed (the project switcher), so
// pages need no inline handlers and the Content-Security-Policy can forbid them.
(function () {
  "use strict";
  function bind() {
    document.querySelectorAll("select[data-autosubmit]").forEach(function (el) {
      el.addEventListener("change", function () { el.form.submit(); });
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", bind);
  } else {
    bind();
  }
})();
