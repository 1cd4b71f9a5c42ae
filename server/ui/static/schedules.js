// "Run now" enqueues one run of a recurring job (POST /v1/schedules/{queue}/{id}/run).
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-run]").forEach(function (b) {
    b.addEventListener("click", async function () {
      var res = await sq.api("POST", "/schedules/" + sq.q(b.dataset.queue) + "/" + sq.q(b.dataset.run) + "/run");
      if (res.ok) sq.flash("Enqueued job " + res.body.id + ".");
      else sq.flash("Run now: " + sq.describe(res), true);
    });
  });
});
