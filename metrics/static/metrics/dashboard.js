// Draws every figure on the page: each <div data-figure="ID"> takes the Plotly JSON held in
// <script type="application/json" id="ID">. No inline scripts, no network.
(function () {
  "use strict";
  var NARROW_PX = 640;  // below this a chart is on a phone: see charts._narrow
  var CONFIG = {
    responsive: true, displaylogo: false, modeBarButtonsToRemove: ["select2d", "lasso2d"]
  };
  function fitted(layout, width) {
    var narrow = layout.meta && layout.meta.narrow;
    if (!narrow || width >= NARROW_PX) { return layout; }
    var out = Object.assign({}, layout);
    out.margin = Object.assign({}, layout.margin, { l: narrow.margin_l, r: 10 });
    if (narrow.ticktext) {
      // The labels are cut to fit the margin: no automargin eating the bars' width.
      out.yaxis = Object.assign({}, layout.yaxis,
        { ticktext: narrow.ticktext, automargin: false });
      if (narrow.tickvals) {
        out.yaxis.tickmode = "array";
        out.yaxis.tickvals = narrow.tickvals;
      }
    }
    return out;
  }
  function draw() {
    if (typeof Plotly === "undefined") { return; }
    document.querySelectorAll("[data-figure]").forEach(function (el) {
      var source = document.getElementById(el.dataset.figure);
      if (!source) { return; }
      var fig = JSON.parse(source.textContent);
      el.dataset.narrow = el.clientWidth < NARROW_PX ? "1" : "0";
      Plotly.newPlot(el, fig.data, fitted(fig.layout, el.clientWidth), CONFIG);
      el.perfmonLayout = fig.layout;
      linkPoints(el, fig.layout.meta && fig.layout.meta.links);
    });
  }
  // Drill-down: a click on a point or bar opens its episode or session (charts.linked).
  function linkPoints(el, links) {
    if (!links) { return; }
    el.classList.add("linked");
    el.on("plotly_click", function (event) {
      var point = event.points && event.points[0];
      if (!point) { return; }
      var group = links.detail && point.customdata && links.detail[point.customdata[5]];
      if (group) { showGroup(group); return; }
      var url = (links.x && links.x[point.x]) || (links.text && links.text[point.text]) ||
        (links.name && links.name[point.data.name]);
      if (url && url.charAt(0) === "/") { window.location.assign(url); }
    });
  }
  // A group of same-named siblings in the timeline: its operations, fetched when opened.
  function showGroup(url) {
    var target = document.querySelector("[data-group-details]");
    if (!target || url.charAt(0) !== "/") { return; }
    fetch(url, { credentials: "same-origin" }).then(function (r) {
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (html !== null) {
        target.innerHTML = html;
        target.scrollIntoView({ block: "nearest" });
      }
    }).catch(function () { /* leave the chart as it is */ });
  }
  // Crossing the phone width (a rotated phone, a resized window) swaps the label layout.
  function refit() {
    document.querySelectorAll("[data-figure].js-plotly-plot").forEach(function (el) {
      var narrow = el.clientWidth < NARROW_PX ? "1" : "0";
      if (narrow === el.dataset.narrow || !el.perfmonLayout) { return; }
      el.dataset.narrow = narrow;
      Plotly.relayout(el, fitted(el.perfmonLayout, el.clientWidth));
    });
  }
  var refitTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(refitTimer);
    refitTimer = setTimeout(refit, 200);
  });
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
  // Progress bars: their width from data-width (no inline styles).
  function widths(root) {
    root.querySelectorAll("[data-width]").forEach(function (el) {
      el.style.width = Math.max(0, Math.min(100, parseFloat(el.dataset.width) || 0)) + "%";
    });
  }
  // Live runs: a [data-refresh] block fetches its fragment again every few seconds; when
  // the session has finished, the page reloads once to show the result.
  function refreshers() {
    document.querySelectorAll("[data-refresh]").forEach(function (el) {
      var every = Math.max(5, parseInt(el.dataset.refreshEvery || "10", 10)) * 1000;
      var timer = setInterval(function () {
        if (document.hidden) { return; }
        fetch(el.dataset.refresh, { credentials: "same-origin" }).then(function (r) {
          if (!r.ok) { return null; }
          if (r.headers.get("X-Perfmon-Finished")) {
            clearInterval(timer);
            window.location.reload();
            return null;
          }
          return r.text();
        }).then(function (html) {
          if (html === null) { return; }
          el.innerHTML = html;
          widths(el);
        }).catch(function () { /* offline for a moment: try again next time */ });
      }, every);
    });
  }
  function start() { draw(); compareButton(); widths(document); refreshers(); }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
