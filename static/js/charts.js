/* Constancia's charts: each .js-chart element names the <script type="application/json"> block
   holding its Plotly figure (built on the server); this draws it with the plotly.js the archive
   serves itself. Map outlines come from the archive too (data-topojson), never from a CDN. */
(function () {
  "use strict";

  function readJSON(id) {
    var block = document.getElementById(id);
    return block ? JSON.parse(block.textContent) : null;
  }

  function draw(el, locale) {
    var figure = readJSON(el.dataset.figure);
    if (!figure) { return; }
    var config = {
      responsive: true,
      displaylogo: false,
      modeBarButtonsToRemove: ["select2d", "lasso2d", "sendChartToCloud"],
      topojsonURL: el.dataset.topojson,
      toImageButtonOptions: {format: "png", filename: el.dataset.filename, scale: 2}
    };
    if (locale) {
      config.locale = locale.name;
      config.locales = {};
      config.locales[locale.name] = {dictionary: locale.dictionary};
    }
    window.Plotly.newPlot(el, figure.data, figure.layout || {}, config);
  }

  function start() {
    if (!window.Plotly) { return; }
    var locale = readJSON("plotly-locale");
    Array.prototype.forEach.call(document.querySelectorAll(".js-chart"), function (el) {
      draw(el, locale);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
