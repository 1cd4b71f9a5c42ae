// Dead letters: replay, edit-and-replay, purge, one by one or by group. Editing enqueues the
// job again under a new id with the edited payload (POST /v1/queues/{q}/jobs), then purges
// the dead letter: two API calls a script could make too.
"use strict";
(function () {
  async function each(queue, ids, verb) {
    var done = 0, failed = null;
    for (var i = 0; i < ids.length; i++) {
      var path = "/queues/" + sq.q(queue) + "/dead-letters/" + ids[i];
      var res = verb === "replay" ? await sq.api("POST", path + "/replay") : await sq.api("DELETE", path);
      if (res.ok) done += 1; else failed = res;
    }
    return { done: done, failed: failed };
  }
  async function run(queue, ids, verb) {
    var label = (verb === "replay" ? "Replay " : "Purge ") + ids.length + " dead letter(s)";
    if (!(await sq.confirmCount(label + " of " + queue + "?", label))) return;
    var out = await each(queue, ids, verb);
    sq.flash(verb + ": " + out.done + " of " + ids.length + " done" + (out.failed ? "; " + sq.describe(out.failed) : "."), !!out.failed);
    if (out.done) setTimeout(function () { location.reload(); }, 700);
  }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-replay]").forEach(function (b) { b.addEventListener("click", function () { run(b.dataset.queue, [b.dataset.replay], "replay"); }); });
    document.querySelectorAll("button[data-purge]").forEach(function (b) { b.addEventListener("click", function () { run(b.dataset.queue, [b.dataset.purge], "purge"); }); });
    document.querySelectorAll("button[data-replay-group]").forEach(function (b) { b.addEventListener("click", function () { run(b.dataset.queue, b.dataset.replayGroup.split(" "), "replay"); }); });
    document.querySelectorAll("button[data-purge-group]").forEach(function (b) { b.addEventListener("click", function () { run(b.dataset.queue, b.dataset.purgeGroup.split(" "), "purge"); }); });
    document.querySelectorAll("button[data-replay-all], button[data-purge-all]").forEach(function (b) {
      b.addEventListener("click", async function () {
        var replay = !!b.dataset.replayAll, queue = b.dataset.replayAll || b.dataset.purgeAll;
        if (!(await sq.confirmCount((replay ? "Replay" : "Purge") + " every dead letter of " + queue + "?", replay ? "Replay all" : "Purge all"))) return;
        var res = replay ? await sq.api("POST", "/queues/" + sq.q(queue) + "/dead-letters:replay")
                         : await sq.api("DELETE", "/queues/" + sq.q(queue) + "/dead-letters");
        if (res.ok) { sq.flash((replay ? "Replayed " : "Purged ") + res.body.count + " job(s)."); setTimeout(function () { location.reload(); }, 700); }
        else sq.flash(sq.describe(res), true);
      });
    });
    var editor = document.getElementById("editor"), target = null;
    document.querySelectorAll("button[data-edit]").forEach(function (b) {
      b.addEventListener("click", async function () {
        target = b.dataset;
        document.getElementById("editor-what").textContent = target.name + " · job " + target.job + " · queue " + target.queue;
        document.getElementById("editor-error").textContent = "";
        var res = await sq.api("GET", "/queues/" + sq.q(target.queue) + "/jobs/" + sq.q(target.job));
        document.getElementById("editor-payload").value = res.ok ? JSON.stringify(res.body.payload, null, 2) : "";
        if (!res.ok) document.getElementById("editor-error").textContent = "The job record is gone (" + sq.describe(res) + "); type the payload.";
        editor.showModal();
        document.getElementById("editor-payload").focus();
      });
    });
    document.getElementById("editor-replay").addEventListener("click", async function () {
      var err = document.getElementById("editor-error"), payload;
      try { payload = JSON.parse(document.getElementById("editor-payload").value); }
      catch (e) { err.textContent = "Not valid JSON: " + e.message; return; }
      var newId = target.job.slice(0, 160) + ".replay-" + Date.now();
      var res = await sq.api("POST", "/queues/" + sq.q(target.queue) + "/jobs", { name: target.name, payload: payload, id: newId });
      var code = res.body && res.body.error ? res.body.error.code : "";
      if (code === "job_not_public") { err.textContent = "This job is started by the application only (its task is not public), so it cannot be enqueued with a new payload from here; Replay sends it again unchanged."; return; }
      if (!res.ok) { err.textContent = sq.describe(res) + (res.body && res.body.error && res.body.error.path ? " at " + res.body.error.path : ""); return; }
      await sq.api("DELETE", "/queues/" + sq.q(target.queue) + "/dead-letters/" + target.edit);
      editor.close();
      sq.flash("Replayed as job " + newId + ".");
      var a = document.createElement("a");
      a.href = "/ui/queues/" + sq.q(target.queue) + "/jobs/" + sq.q(newId); a.textContent = " Follow it"; a.id = "replayed-link";
      document.getElementById("flash").appendChild(a);
    });
  });
})();
