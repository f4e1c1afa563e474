// eGovSAD feedback widget. Embed on the confirmation page of an online service:
//   <div id="egov-feedback"></div>
//   <link rel="stylesheet" href="https://<portal>/static/feedback-widget.css">
//   <script src="https://<portal>/static/feedback-widget.js" data-endpoint="<feedback URL>"
//           data-service="<LeiKa or local key>" defer></script>
// No inline code or styles (works under a strict CSP), no cookies, no third-party requests.
(function () {
  "use strict";
  var script = document.currentScript;
  var root = document.getElementById("egov-feedback");
  if (!script || !root) { return; }
  var endpoint = script.dataset.endpoint;
  var service = script.dataset.service;

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text) { node.textContent = text; }
    return node;
  }

  function render(form) {
    var labels = form.labels;
    var f = el("form", { "class": "egov-fb", "novalidate": "novalidate" });
    var set = el("fieldset", { "class": "egov-fb__rating" });
    set.appendChild(el("legend", {}, labels.question));
    labels.rating.forEach(function (label, i) {
      var id = "egov-fb-r" + (i + 1);
      var input = el("input", { type: "radio", name: "rating", value: String(i + 1), id: id, required: "required" });
      set.appendChild(input);
      set.appendChild(el("label", { "for": id, title: label }, String(i + 1) + " – " + label));
    });
    f.appendChild(set);
    f.appendChild(el("label", { "for": "egov-fb-comment" }, labels.comment));
    f.appendChild(el("textarea", { id: "egov-fb-comment", name: "comment", maxlength: "1000", rows: "3" }));
    // Honeypot: hidden from people (and from screen readers), filled by bots.
    var trap = el("div", { "class": "egov-fb__trap", "aria-hidden": "true" });
    trap.appendChild(el("input", { type: "text", name: "website", tabindex: "-1", autocomplete: "off" }));
    f.appendChild(trap);
    f.appendChild(el("button", { type: "submit" }, labels.send));
    var status = el("p", { "class": "egov-fb__status", role: "status" });
    f.appendChild(status);
    f.addEventListener("submit", function (event) {
      event.preventDefault();
      var checked = f.querySelector("input[name=rating]:checked");
      if (!checked) { status.textContent = labels.question; return; }
      fetch(endpoint, {
        method: "POST", mode: "cors", credentials: "omit",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ rating: Number(checked.value), comment: f.comment.value, service_key: service,
                               token: form.token, website: f.website.value })
      }).then(function (r) {
        if (r.ok) { root.textContent = ""; root.appendChild(el("p", { "class": "egov-fb__thanks" }, labels.thanks)); }
        else { return r.json().then(function (b) { status.textContent = b.error || labels.error; }); }
      }).catch(function () { status.textContent = labels.error; });
    });
    root.textContent = "";
    root.appendChild(f);
  }

  fetch(endpoint + "/form", { mode: "cors", credentials: "omit" })
    .then(function (r) { return r.ok ? r.json() : null; })
    .then(function (form) { if (form) { render(form); } })
    .catch(function () { /* the page works without the widget */ });
}());
