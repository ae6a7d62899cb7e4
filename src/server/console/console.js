// The operator console's own script (no library): a certificate chosen as a file is read
// into the form's PEM field, so that the form posts it as text.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("input[type=file][data-riempie]").forEach(function (input) {
    input.addEventListener("change", function () {
      var campo = document.getElementById(input.getAttribute("data-riempie"));
      var file = input.files && input.files[0];
      if (!campo || !file) { return; }
      file.text().then(function (testo) { campo.value = testo; });
    });
  });
});
