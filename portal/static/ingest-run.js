// Live progress of an ingest run: polls the status URL until the run has finished, then reloads
// the page once so the server renders the result and the rejected rows.
(function () {
  "use strict";
  var box = document.getElementById("run-status");
  if (!box || box.dataset.final === "yes") { return; }
  var labels = document.getElementById("phase-labels").content;
  function label(attr, key) {
    var el = labels.querySelector("[" + attr + "='" + key + "']");
    return el ? el.textContent : key;
  }
  function field(name) { return box.querySelector("[data-field='" + name + "']"); }
  var numbers = new Intl.NumberFormat(document.documentElement.lang || "de");
  function show(state) {
    field("status").textContent = label("data-status", state.status);
    ["rows_total", "rows_accepted", "rows_rejected"].forEach(function (name) {
      field(name).textContent = numbers.format(state[name] || 0);
    });
    var bar = document.getElementById("run-progress");
    if (state.progress) {
      field("phase").textContent = label("data-phase", state.progress.phase);
      if (state.progress.phase === "staging" && state.progress.fraction > 0) {
        bar.value = Math.round(state.progress.fraction * 100);
      } else { bar.removeAttribute("value"); }
    }
  }
  function poll() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (state) {
        show(state);
        if (["succeeded", "failed", "duplicate"].indexOf(state.status) >= 0) {
          window.location.reload();
        } else { window.setTimeout(poll, 1000); }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  poll();
}());
