// A job's page follows the job's own event stream (from its first event): the timeline and
// the progress bar fill in live; actions call the job API.
"use strict";
(function () {
  var TERMINAL = { completed: 1, dead: 1, cancelled: 1 };
  function when(t) { return t ? new Date(t * 1000).toISOString().replace("T", " ").slice(11, 23) : ""; }
  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("job");
    var queue = root.dataset.queue, id = root.dataset.id;
    var base = "/queues/" + sq.q(queue) + "/jobs/" + sq.q(id);
    var timeline = document.getElementById("timeline"), started = false;
    var bar = document.getElementById("progress");
    var leaving = false;  // an action is taking the page elsewhere: no second navigation
    var source = new EventSource("/ui/api" + base + "/events");
    function add(ev) {
      if (!started) { timeline.textContent = ""; started = true; }
      var li = document.createElement("li");
      var text = when(ev.at) + " " + ev.type + (ev.attempt ? " (attempt " + ev.attempt + ")" : "");
      if (ev.type === "progress") text += ": " + ev.progress + " %" + (ev.message ? " " + ev.message : "");
      else if (ev.message) text += ": " + ev.message;
      if (ev.error) text += ": " + ev.error.split("\n").filter(Boolean).slice(-1)[0];
      li.textContent = text; li.className = "ev ev-" + ev.type;
      timeline.appendChild(li);
    }
    ["queued", "scheduled", "active", "progress", "retrying", "completed", "dead", "cancelled", "reclaimed", "waiting-children", "paused", "resumed", "snapshot"].forEach(function (type) {
      source.addEventListener(type, function (e) {
        var ev = JSON.parse(e.data);
        if (type === "snapshot") return;
        add(ev);
        // The stream replays the job's history first: the timeline shows all of it, the state
        // and progress follow only what is newer than this page (a retried job has older
        // endings, which must neither relabel nor reload it).
        var fresh = !ev.at || ev.at >= Number(root.dataset.rendered);
        if (!fresh) return;
        if (type === "progress" && ev.progress !== undefined) {
          bar.value = ev.progress;
          bar.textContent = ev.progress + " %";
          document.getElementById("progress-text").textContent = Number(ev.progress).toFixed(1) + " %";
          if (ev.message) document.getElementById("progress-message").textContent = ev.message;
        } else if (type !== "progress") {
          var st = document.getElementById("job-state");
          st.textContent = type; st.className = "state state-" + type;
          if (type === "completed") { bar.value = 100; document.getElementById("progress-text").textContent = "100.0 %"; }
        }
        if (type === "active" && ev.at) document.getElementById("job-started").textContent = new Date(ev.at * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";
        // A finished job's page shows its result or error and the actions that now apply.
        if (TERMINAL[type]) { source.close(); if (root.dataset.state !== type && !leaving) setTimeout(function () { location.reload(); }, 300); }
      });
    });
    // Log lines written after the page was rendered join its log card (older ones are in it).
    var log = document.getElementById("job-log");
    source.addEventListener("log", function (e) {
      var ev = JSON.parse(e.data);
      if (!log || !ev.at || ev.at < Number(root.dataset.rendered)) return;
      var empty = log.querySelector(".log-empty");
      if (empty) empty.remove();
      var li = document.createElement("li");
      li.className = "log-line";
      li.textContent = when(ev.at) + " " + (ev.message || "");
      log.appendChild(li);
    });
    source.addEventListener("error", function () { if (!started) timeline.firstChild.textContent = "The job's events are not available now."; });
    var priority = document.querySelector("button[data-job-priority]");
    if (priority) priority.addEventListener("click", async function () {
      var lane = document.getElementById("job-lane").value;
      var res = await sq.api("POST", base + "/priority", { priority: lane });
      if (res.ok) {
        leaving = true; source.close();
        sq.flash("Priority: now " + lane + ".");
        setTimeout(function () { location.reload(); }, 300);
      }
      else sq.flash("Priority: " + sq.describe(res), true);
    });
    document.querySelectorAll("button[data-job-action]").forEach(function (b) {
      b.addEventListener("click", async function () {
        var action = b.dataset.jobAction, res;
        if (!(await sq.confirmCount(b.textContent + " job " + id + "?", b.textContent))) return;
        if (action === "cancel") res = await sq.api("DELETE", base);
        else res = await sq.api("POST", base + "/" + action);
        // A removed job has no page any more: back to its queue.
        var after = action === "remove" ? "/ui/queues/" + sq.q(queue) : location.href;
        if (res.ok) {
          leaving = true; source.close();
          sq.flash(b.textContent + ": done.");
          setTimeout(function () { location.assign(after); }, 300);
        }
        else sq.flash(b.textContent + ": " + sq.describe(res), true);
      });
    });
  });
})();
