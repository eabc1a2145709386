/* The import page's progress bar: when a check or an import is sent, the form goes on as a
   normal round trip (the page works without this script); meanwhile this asks the archive how
   far it has gone (/import/<sha256>/status) and shows it. */
(function () {
  "use strict";

  function poll(box) {
    var bar = box.querySelector("progress");
    var text = box.querySelector(".import-progress-text");
    var request = new XMLHttpRequest();
    request.open("GET", box.dataset.statusUrl);
    request.setRequestHeader("Accept", "application/json");
    request.onload = function () {
      if (request.status === 200) {
        var state = JSON.parse(request.responseText);
        if (state.stage && state.total > 0) {
          bar.max = state.total;
          bar.value = state.done;
          text.textContent = box.dataset[state.stage] + ": " + state.done + " / " + state.total;
        }
      }
      window.setTimeout(function () { poll(box); }, 1000);
    };
    request.send();
  }

  function start() {
    var box = document.getElementById("import-progress");
    if (!box) { return; }
    var forms = document.querySelectorAll("form[data-import-progress]");
    Array.prototype.forEach.call(forms, function (form) {
      form.addEventListener("submit", function () {
        Array.prototype.forEach.call(forms, function (f) {
          Array.prototype.forEach.call(f.querySelectorAll("button[type=submit]"), function (b) {
            b.disabled = true;
          });
        });
        box.hidden = false;
        window.setTimeout(function () { poll(box); }, 500);
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
