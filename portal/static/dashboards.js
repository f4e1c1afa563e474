// Embeds the selected Superset dashboard. The guest token comes from the
// portal (same origin, the session cookie identifies the user); the SDK asks
// for a new one before the current one expires. The iframe gets a German title
// (or the page's language), the page's language travels to Superset as `_l_`
// (Flask-AppBuilder's per-request locale), and the iframe grows to the
// dashboard's height so the page has one scroll bar and no chart is cut off.
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
  // The dashboard's content height changes while charts load and filters change: follow it.
  function followHeight(dashboard) {
    var iframe = mount.querySelector("iframe");
    function resize() {
      dashboard.getScrollSize().then(function (size) {
        var height = Math.ceil(size.height);
        if (iframe && height > 0 && iframe.style.height !== height + "px") {
          iframe.style.height = height + "px";
        }
      }).catch(function () {});
    }
    resize();
    window.setInterval(resize, 1000);
  }
  window.supersetEmbeddedSdk
    .embedDashboard({
      id: mount.dataset.embeddedId,
      supersetDomain: mount.dataset.supersetDomain,
      mountPoint: mount,
      fetchGuestToken: fetchGuestToken,
      iframeTitle: mount.dataset.title,
      dashboardUiConfig: {
        hideTitle: true,
        filters: { expanded: true },
        urlParams: { _l_: document.documentElement.lang || "de" },
      },
    })
    .then(followHeight)
    .catch(showFailure);
})();
