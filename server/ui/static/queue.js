// The job explorer, built on the job index API:
//   GET  /v1/queues/{q}/jobs?state=&name=&lane=&tag=&since=&until=&limit=&cursor=
//        -> {"jobs": [job views], "next": cursor|null}   (newest first)
//   GET  /v1/queues/{q}/jobs/{id}
//   POST /v1/queues/{q}/jobs:{cancel|retry|promote|remove}  {"ids": [...]} or {"filter": {...}}
//        -> {"done": n, "refused": {id: state}, "missing": [...], "next": cursor|null}
// Acting on a filter goes on with the answer's cursor until "next" is null.
"use strict";
(function () {
  var PAGE = 50, COUNT_PAGE = 500, COUNT_MAX = 100000;
  var root, queue, cursors = [], current = null, next = null, jobsOnPage = [];
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
    current = cursor; next = res.body.next;
    render(res.body.jobs);
    var n = res.body.jobs.length;
    status(n ? n + " job(s) on this page" + (next ? "; more on the next page" : (cursors.length ? "; the last page" : "")) : "No job matches.");
    document.getElementById("next-page").disabled = !next;
  }
  // How many jobs the filter matches now: the listing paged through (bounded).
  async function countMatching() {
    var params = new URLSearchParams(filters()), total = 0, cursor = null;
    params.set("limit", String(COUNT_PAGE));
    do {
      if (cursor) params.set("cursor", cursor);
      var res = await sq.api("GET", "/queues/" + sq.q(queue) + "/jobs?" + params.toString());
      if (!res.ok) throw new Error("counting the matching jobs: " + sq.describe(res));
      total += res.body.jobs.length; cursor = res.body.next;
      sq.flash("Counting the matching jobs… " + total);
    } while (cursor && total < COUNT_MAX);
    return { total: total, more: !!cursor };
  }
  function summary(verb, done, refused, missing) {
    var text = verb + ": " + done + " job(s) done.";
    var kept = Object.keys(refused).length;
    if (kept) text += " " + kept + " left as they are (their state does not allow it).";
    if (missing) text += " " + missing + " no longer exist.";
    return text;
  }
  async function bulk(action) {
    var all = document.getElementById("all-matching").checked;
    var ids = Array.prototype.map.call(document.querySelectorAll("input.pick:checked"), function (b) { return b.value; });
    if (!all && !ids.length) { sq.flash("Select jobs first, or tick “everything this filter matches”.", true); return; }
    var verb = action[0].toUpperCase() + action.slice(1), n;
    if (all) {
      var counted;
      try { counted = await countMatching(); } catch (e) { sq.flash(e.message, true); return; }
      if (!counted.total) { sq.flash("No job matches this filter.", true); return; }
      n = counted.more ? "more than " + counted.total : String(counted.total);
    } else n = String(ids.length);
    var what = all ? " job(s): everything this filter matches" : " selected job(s)";
    sq.flash("");
    if (!(await sq.confirmCount(verb + " " + n + what + "?", verb + " " + n + " job(s)"))) return;
    var path = "/queues/" + sq.q(queue) + "/jobs:" + action;
    var done = 0, refused = {}, missing = 0, cursor = null, res;
    do {
      var body = all ? { filter: filters() } : { ids: ids };
      if (cursor) body.cursor = cursor;
      res = await sq.api("POST", path, body);
      if (!res.ok) break;
      done += res.body.done; missing += res.body.missing.length;
      Object.assign(refused, res.body.refused);
      cursor = all ? res.body.next : null;
      if (cursor) sq.flash(verb + ": " + done + " job(s) so far…");
    } while (cursor);
    if (res.ok) sq.flash(summary(verb, done, refused, missing));
    else sq.flash(verb + ": " + (done ? done + " job(s) done, then " : "") + sq.describe(res), true);
    load(current);
  }
  // DELETE /v1/queues/{q}[?force=true] -> {"queue", "jobs", "done"}: at most 5,000 jobs a
  // call, so it goes on until "done"; 409 while live workers serve the queue.
  async function deleteQueue() {
    var what = "Delete queue " + queue + " and every job, log, dead letter and schedule in it? This cannot be undone.";
    if (!(await sq.confirmCount(what, "Delete " + queue))) return;
    var force = false, jobs = 0, res;
    for (;;) {
      res = await sq.api("DELETE", "/queues/" + sq.q(queue) + (force ? "?force=true" : ""));
      if (res.status === 409 && !force) {
        var again = res.body.error.message + ". Pause it and delete it anyway (its workers may still be running)?";
        if (!(await sq.confirmCount(again, "Delete anyway"))) return;
        force = true;
        continue;
      }
      if (!res.ok) break;
      jobs += res.body.jobs;
      if (res.body.done) break;
      sq.flash("Deleting " + queue + ": " + jobs + " job(s) so far…");
    }
    if (!res.ok) { sq.flash("Delete queue: " + (jobs ? jobs + " job(s) deleted, then " : "") + sq.describe(res), true); return; }
    location.assign("/ui/");
  }
  document.addEventListener("DOMContentLoaded", function () {
    root = document.getElementById("explorer");
    var del = document.getElementById("delete-queue");
    if (del) del.addEventListener("click", deleteQueue);
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
