// "Kopieren" buttons next to read-only fields (redirect URI, scopes, claims) on the setup pages:
// the value goes to the clipboard; without clipboard access the field's text is selected instead.
(function () {
  "use strict";
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      var field = document.getElementById(button.dataset.copy);
      field.select();
      if (navigator.clipboard) {
        navigator.clipboard.writeText(field.value).then(function () {
          button.querySelector(".kern-label").textContent = button.dataset.done;
        });
      }
    });
  });
})();
