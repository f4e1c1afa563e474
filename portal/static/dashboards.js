// Embeds the selected Superset dashboard. The guest token comes from the
// portal (same origin, the session cookie identifies the user); the SDK asks
// for a new one before the current one expires.
(function () {
  "use strict";
  var mount = document.getElementById("superset-dashboard");
  if (!mount || !window.supersetEmbeddedSdk) {
    return;
  }
  function showFailure() {
    var failed = document.getElementById("superset-failed");
    if (failed) {
      failed.hidden = false;
    }
  }
  function fetchGuestToken() {
    return fetch(mount.dataset.tokenUrl, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          throw new Error("guest token: HTTP " + response.status);
        }
        return response.json();
      })
      .then(function (body) {
        return body.token;
      });
  }
  window.supersetEmbeddedSdk
    .embedDashboard({
      id: mount.dataset.embeddedId,
      supersetDomain: mount.dataset.supersetDomain,
      mountPoint: mount,
      fetchGuestToken: fetchGuestToken,
      dashboardUiConfig: { hideTitle: true, filters: { expanded: true } },
    })
    .catch(showFailure);
})();
