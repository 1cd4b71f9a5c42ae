// Shared helpers of the dashboard: every action is a call of the JSON API through /ui/api.
"use strict";
window.sq = (function () {
  function csrf() {
    var m = document.cookie.match(/(?:^|; )streamq_csrf=([^;]+)/);
    return m ? decodeURIComponent(m[1]) : "";
  }
  function flash(text, bad) {
    var el = document.getElementById("flash");
    if (!el) return;
    el.textContent = text;
    el.className = !text ? "" : bad ? "flash bad" : "flash";  // nothing to say: no empty box
  }
  // Resolves to {status, body}; a 404/405 of a route this server lacks says so.
  async function api(method, path, body) {
    var opts = { method: method, headers: { "X-CSRF-Token": csrf() }, credentials: "same-origin" };
    // Every write says it is JSON, with a body or without: a server without tokens refuses
    // writes that do not (a form of another site cannot send that header).
    if (method !== "GET" && method !== "HEAD") opts.headers["Content-Type"] = "application/json";
    if (body !== undefined) opts.body = JSON.stringify(body);
    var resp = await fetch("/ui/api" + path, opts);
    var data = null;
    try { data = await resp.json(); } catch (e) { data = null; }
    var missing = resp.status === 405 ||
      (resp.status === 404 && data && data.error && data.error.code === "not_found" ||
       resp.status === 404 && data && data.error && /no such endpoint/.test(data.error.message || ""));
    return { status: resp.status, ok: resp.ok, body: data, missing: missing };
  }
  function describe(res) {
    if (res.missing) return "not available on this server (it lacks this API route)";
    if (res.body && res.body.error) return res.body.error.message + " (" + res.status + ")";
    return "failed with status " + res.status;
  }
  // A modal confirmation whose OK button names the action ("Retry 40 jobs").
  function confirmCount(text, okLabel) {
    var dialog = document.getElementById("confirm");
    if (!dialog || !dialog.showModal) return Promise.resolve(window.confirm(text));
    document.getElementById("confirm-text").textContent = text;
    document.getElementById("confirm-ok").textContent = okLabel || "Do it";
    return new Promise(function (resolve) {
      dialog.addEventListener("close", function once() {
        dialog.removeEventListener("close", once);
        resolve(dialog.returnValue === "ok");
      });
      dialog.returnValue = "";
      dialog.showModal();
      document.getElementById("confirm-ok").focus();
    });
  }
  function q(path) { return encodeURIComponent(path); }
  function canAct() { return document.body.dataset.canAct === "yes"; }
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("button[data-action]").forEach(function (b) {
      b.addEventListener("click", async function () {
        var res = await api("POST", "/queues/" + q(b.dataset.queue) + "/" + b.dataset.action);
        if (res.ok) location.reload(); else flash(b.textContent + ": " + describe(res), true);
      });
    });
  });
  return { api: api, flash: flash, describe: describe, confirmCount: confirmCount, q: q, canAct: canAct };
})();
