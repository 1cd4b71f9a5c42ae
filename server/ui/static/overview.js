// The overview follows /ui/live: one stream per page, fed by the server's shared feeds
// (its charts are charts.js's).
"use strict";
(function () {
  function age(s) {
    s = Number(s);
    if (s < 10) return s.toFixed(1) + " s";
    if (s < 60) return Math.floor(s) + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + Math.floor(s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor(s % 3600 / 60) + " min";
  }
  function badge(text, cls) {
    var b = document.createElement("span");
    b.className = "badge " + cls; b.textContent = text; return b;
  }
  function update(queues) {
    var tbody = document.querySelector("#queues tbody");
    queues.forEach(function (qv) {
      var row = tbody.querySelector('tr[data-queue="' + CSS.escape(qv.name) + '"]');
      if (!row) { location.reload(); return; }
      ["waiting", "active", "delayed", "dead", "completed_per_s"].forEach(function (k) {
        var cell = row.querySelector('[data-k="' + k + '"]');
        var value = k === "completed_per_s" ? Number(qv[k]).toFixed(2) : String(qv[k]);
        if (cell.textContent !== value) { cell.textContent = value; cell.classList.add("changed"); setTimeout(function () { cell.classList.remove("changed"); }, 600); }
      });
      row.querySelector('[data-k="failure_rate"]').textContent = (qv.failure_rate * 100).toFixed(1) + " %";
      row.querySelector('[data-k="oldest_waiting_age"]').textContent = age(qv.oldest_waiting_age);
      var lanes = row.querySelector('[data-k="lanes"]');
      lanes.textContent = "";
      Object.keys(qv.lanes).forEach(function (name) {
        var l = qv.lanes[name];
        if (l.depth || l.pending) { var s = document.createElement("span"); s.className = "lane"; s.textContent = name + " " + l.depth + "/" + l.pending; lanes.appendChild(s); lanes.appendChild(document.createTextNode(" ")); }
      });
      if (!lanes.textContent) { var e = document.createElement("span"); e.className = "muted"; e.textContent = "empty"; lanes.appendChild(e); }
      var badges = row.querySelector(".badges");
      badges.textContent = "";
      if (qv.paused) badges.appendChild(badge("paused", "warn"));
      if (qv.workers === 0) badges.appendChild(badge("no live workers", "bad"));
      if (qv.dead_growing) badges.appendChild(badge("dead letters growing", "bad"));
    });
  }
  function connect() {
    var status = document.getElementById("live-state");
    var source = new EventSource("/ui/live");
    source.addEventListener("open", function () { status.textContent = "live"; status.className = "live on"; });
    source.addEventListener("overview", function (e) { update(JSON.parse(e.data).queues); });
    source.addEventListener("error", function () { status.textContent = "reconnecting…"; status.className = "live"; });
  }
  document.addEventListener("DOMContentLoaded", function () {
    connect();
  });
})();
