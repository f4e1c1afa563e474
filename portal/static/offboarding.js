// Live progress of the offboarding jobs (archive, purge): polls the state while a job works, moves the
// progress bars, and reloads the page once when nothing works any more, so the server renders the result.
(function () {
  "use strict";
  var box = document.getElementById("offboarding");
  if (!box || box.dataset.busy !== "yes") { return; }
  function show(kind, job) {
    var block = document.getElementById(kind + "-progress-block");
    if (!block || !job || !job.progress || !job.progress.total) { return; }
    var bar = document.getElementById(kind + "-progress");
    bar.max = job.progress.total;
    bar.value = job.progress.done;
    var done = block.querySelector("[data-field='done']");
    if (done) { done.textContent = job.progress.done; }
  }
  function poll() {
    fetch(box.dataset.statusUrl, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.json(); })
      .then(function (state) {
        show("archive", state.jobs.archive);
        show("purge", state.jobs.purge);
        if (!state.busy) { window.location.reload(); } else { window.setTimeout(poll, 1000); }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 1000);
}());
