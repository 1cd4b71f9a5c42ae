// The charts of the overview and the queue page, drawn with the vendored uPlot from
// GET /v1/series: jobs completed and failed, wait time and run time (median and 95th
// percentile), over the last hour per minute or the last day per 15 minutes.
// A section with class "charts" holds them; its data-queue names the queue (none: a
// #chart-queue select chooses one, or all queues together).
"use strict";
(function () {
  var COLORS = { completed: "#1a7f37", failed: "#c62828", p50: "#0b5cad", p95: "#b35900" };
  function duration(s) {
    if (s == null) return "–";
    if (s < 1) return Math.round(s * 1000) + " ms";
    if (s < 60) return (s < 10 ? s.toFixed(1) : Math.round(s)) + " s";
    if (s < 3600) return (s / 60).toFixed(s < 600 ? 1 : 0) + " min";
    return (s / 3600).toFixed(1) + " h";
  }
  // Times are drawn with their points: a minute with jobs between idle ones is a lone point.
  function line(label, color, fill, value) {
    var s = { label: label, stroke: color, width: 2, spanGaps: false,
              points: value ? { show: true, size: 6, fill: color } : { show: false } };
    if (fill) s.fill = fill;
    if (value) s.value = value;
    return s;
  }
  var KINDS = {
    jobs: {
      series: function () {
        return [line("completed", COLORS.completed, "rgba(26,127,55,.12)"),
                line("failed", COLORS.failed, "rgba(198,40,40,.12)")];
      },
      data: function (s) { return [s.t, s.completed, s.failed]; },
      axis: null,
    },
    wait: {
      series: function () {
        return [line("median", COLORS.p50, null, function (u, v) { return duration(v); }),
                line("95th percentile", COLORS.p95, null, function (u, v) { return duration(v); })];
      },
      data: function (s) { return [s.t, s.wait_p50, s.wait_p95]; },
      axis: function (u, values) { return values.map(duration); },
    },
    run: {
      series: function () { return KINDS.wait.series(); },
      data: function (s) { return [s.t, s.run_p50, s.run_p95]; },
      axis: function (u, values) { return values.map(duration); },
    },
  };

  function mount(section) {
    var fixed = section.dataset.queue || null;
    var select = section.querySelector("#chart-queue");
    var range = "hour", loaded = null, plots = {};
    function chosen() {
      if (!loaded) return null;
      if (fixed) return loaded.queues[fixed] ? loaded.queues[fixed][range] : null;
      var name = select ? select.value : "";
      if (!name) return loaded.all ? loaded.all[range] : null;
      return loaded.queues[name] ? loaded.queues[name][range] : null;
    }
    function draw() {
      var s = chosen();
      section.querySelectorAll("[data-chart]").forEach(function (el) {
        var kind = KINDS[el.dataset.chart];
        var data = s ? kind.data(s) : [[Date.now() / 1000], [null], [null]];
        var empty = el.parentNode.querySelector(".chart-empty");
        if (empty) empty.hidden = data[1].some(function (v) { return v != null && v !== 0; });
        var width = Math.max(260, el.clientWidth - 16);
        var plot = plots[el.dataset.chart];
        if (plot) { plot.setSize({ width: width, height: 200 }); plot.setData(data); return; }
        if (!window.uPlot) return;
        var y = { size: 72 };
        if (kind.axis) y.values = kind.axis;
        plots[el.dataset.chart] = new uPlot({
          width: width, height: 200,
          series: [{}].concat(kind.series()),
          axes: [{}, y],
          scales: { y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } } },
        }, data, el);
      });
    }
    async function load() {
      try {
        var res = await sq.api("GET", "/series" + (fixed ? "?queue=" + encodeURIComponent(fixed) : ""));
        if (res.ok) { loaded = res.body; draw(); }
      } catch (e) { /* the next round tries again */ }
    }
    load();
    setInterval(load, 15000);
    if (select) select.addEventListener("change", draw);
    section.querySelectorAll("button[data-range]").forEach(function (b) {
      b.addEventListener("click", function () {
        range = b.dataset.range;
        section.querySelectorAll("button[data-range]").forEach(function (o) { o.setAttribute("aria-pressed", String(o === b)); });
        draw();
      });
    });
    window.addEventListener("resize", draw);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("section.charts").forEach(mount);
  });
})();
