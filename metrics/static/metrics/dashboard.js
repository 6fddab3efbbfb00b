// Draws every figure on the page: each <div data-figure="ID"> takes the Plotly JSON held in
// <script type="application/json" id="ID">. No inline scripts, no network.
(function () {
  "use strict";
  function draw() {
    if (typeof Plotly === "undefined") { return; }
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      var source = document.getElementById(el.dataset.figure);
      if (!source) { return; }
      var fig = JSON.parse(source.textContent);
      Plotly.newPlot(el, fig.data, fig.layout, {
        responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"]
      });
    });
  }
  // Compare check boxes: the button says how many are chosen.
  function compareButton() {
    var form = document.getElementById("compare-form");
    if (!form) { return; }
    var button = form.querySelector("button[data-compare]");
    function update() {
      var n = form.querySelectorAll("input[name=episodes]:checked").length;
      button.disabled = n < 2;
      button.textContent = n < 2 ? "Select two or more episodes to compare"
        : "Compare " + n + " episodes";
    }
    form.addEventListener("change", update);
    update();
  }
  function start() { draw(); compareButton(); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
