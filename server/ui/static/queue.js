// The job explorer, built on the job index API:
//   GET  /v1/queues/{q}/jobs?state=&name=&lane=&tag=&since=&until=&limit=&cursor=
//        -> {"jobs": [job views], "next": cursor|null, "total"?: n}
//   GET  /v1/queues/{q}/jobs/{id}
//   POST /v1/queues/{q}/jobs:{cancel|retry|promote|remove}  {"ids": [...]} or {"filter": {...}}
//        -> {"count": n}
// On a server without these routes (404/405) it says so instead of failing silently.
"use strict";
(function () {
  var PAGE = 50;
  var root, queue, cursors = [], current = null, next = null, lastTotal = null, jobsOnPage = [];
  function filters() {
    var form = document.getElementById("filters"), out = {};
    ["state", "name", "lane", "tag"].forEach(function (k) { var v = form.elements[k].value.trim(); if (v) out[k] = v; });
    ["since", "until"].forEach(function (k) { var v = form.elements[k].value; if (v) out[k] = String(Date.parse(v) / 1000); });
    return out;
  }
  function status(text, kind) {
    var el = document.getElementById("explorer-status");
    el.textContent = text; el.className = kind === true ? "error" : kind || "muted";
  }
  function cell(text) { var td = document.createElement("td"); td.textContent = text; return td; }
  function when(t) { return t ? new Date(t * 1000).toISOString().replace("T", " ").slice(0, 19) : "–"; }
  function render(jobs) {
    var tbody = document.querySelector("#jobs tbody");
    tbody.textContent = "";
    jobsOnPage = jobs;
    jobs.forEach(function (j) {
      var tr = document.createElement("tr");
      if (sq.canAct()) {
        var td = document.createElement("td"), box = document.createElement("input");
        box.type = "checkbox"; box.value = j.id; box.className = "pick";
        box.setAttribute("aria-label", "Select job " + j.id);
        td.appendChild(box); tr.appendChild(td);
      }
      var link = document.createElement("a");
      link.href = "/ui/queues/" + sq.q(queue) + "/jobs/" + sq.q(j.id); link.textContent = j.id;
      var first = document.createElement("td"); first.appendChild(link); tr.appendChild(first);
      tr.appendChild(cell(j.name));
      var st = cell(j.state); st.className = "state state-" + j.state; tr.appendChild(st);
      tr.appendChild(cell(j.priority || ""));
      var at = cell((j.attempt || 0) + "/" + (j.max_attempts || 1)); at.className = "n"; tr.appendChild(at);
      tr.appendChild(cell(when(j.created_at)));
      tbody.appendChild(tr);
    });
  }
  async function load(cursor) {
    var form = document.getElementById("filters");
    var id = form.elements.id.value.trim();
    status("Loading…");
    if (id) {
      var one = await sq.api("GET", "/queues/" + sq.q(queue) + "/jobs/" + sq.q(id));
      if (one.ok) { render([one.body]); next = null; status("1 job"); }
      else if (one.status === 404 && !one.missing) { render([]); status("No job " + id + " in this queue."); }
      else { render([]); status("Looking up a job: " + sq.describe(one), true); }
      document.getElementById("next-page").disabled = true;
      return;
    }
    var params = new URLSearchParams(filters());
    params.set("limit", String(PAGE));
    if (cursor) params.set("cursor", cursor);
    var res = await sq.api("GET", "/queues/" + sq.q(queue) + "/jobs?" + params.toString());
    if (!res.ok) {
      render([]);
      if (res.missing) status("Listing and searching jobs is not available on this server yet (it lacks GET /v1/queues/{queue}/jobs). You can still look up a job by its id.", "notice");
      else status("Listing jobs: " + sq.describe(res), true);
      document.getElementById("next-page").disabled = true;
      return;
    }
    current = cursor; next = res.body.next; lastTotal = (typeof res.body.total === "number") ? res.body.total : null;
    render(res.body.jobs);
    status(res.body.jobs.length + " job(s) on this page" + (lastTotal !== null ? " of " + lastTotal + " matching" : "") + (next ? "; more on the next page" : ""));
    document.getElementById("next-page").disabled = !next;
  }
  async function bulk(action) {
    var all = document.getElementById("all-matching").checked;
    var ids = Array.prototype.map.call(document.querySelectorAll("input.pick:checked"), function (b) { return b.value; });
    if (!all && !ids.length) { sq.flash("Select jobs first, or tick “everything this filter matches”.", true); return; }
    var what = all ? (lastTotal !== null ? lastTotal + " job(s) — everything this filter matches" : "every job this filter matches")
                   : ids.length + " selected job(s)";
    var verb = action[0].toUpperCase() + action.slice(1);
    if (!(await sq.confirmCount(verb + " " + what + "?", verb + " " + (all ? (lastTotal !== null ? lastTotal : "all") : ids.length) + " job(s)"))) return;
    var body = all ? { filter: filters() } : { ids: ids };
    var res = await sq.api("POST", "/queues/" + sq.q(queue) + "/jobs:" + action, body);
    if (res.ok) { sq.flash(action + ": " + (res.body && res.body.count !== undefined ? res.body.count : "?") + " job(s) done."); load(current); }
    else sq.flash(action + ": " + sq.describe(res), true);
  }
  document.addEventListener("DOMContentLoaded", function () {
    root = document.getElementById("explorer");
    queue = root.dataset.queue;
    document.getElementById("filters").addEventListener("submit", function (e) { e.preventDefault(); cursors = []; load(null); });
    document.getElementById("next-page").addEventListener("click", function () { cursors.push(current); load(next); });
    document.getElementById("first-page").addEventListener("click", function () { cursors = []; load(null); });
    var page = document.getElementById("select-page");
    if (page) page.addEventListener("change", function () { document.querySelectorAll("input.pick").forEach(function (b) { b.checked = page.checked; }); });
    document.querySelectorAll("button[data-bulk]").forEach(function (b) { b.addEventListener("click", function () { bulk(b.dataset.bulk); }); });
    load(null);
  });
})();
