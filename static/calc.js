// The calculator's own inputs (issues 9, 10): your GGUF file (only its header, read with File.slice, leaves
// the browser) and a pasted config.json, each answered with the same breakdown partial as the form.
(function () {
  "use strict";
  var ui;
  function filled(form, skip) {  // the controls' non-blank values, typed as the strict JSON API wants them
    var out = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.value === "" || skip.indexOf(el.name) >= 0) return;
      var v = el.value;
      if (v === "true" || v === "false") v = v === "true";
      else if (el.type === "number" || (el.tagName === "SELECT" && /^[0-9]+$/.test(v))) v = Number(v);
      out[el.name] = v;
    });
    return out;
  }

  function answer(form, status, text, own) {  // a fetched breakdown, or its 422 beside the named control
    document.querySelectorAll("[data-result]").forEach(function (el) { el.classList.remove("pending"); });
    if (status === 200) {
      ui.clearErrors(form);
      Object.keys(own).forEach(function (k) { document.getElementById(own[k]).textContent = ""; });
      document.getElementById("breakdown").outerHTML = text;
      ui.setStale(false);
      return;
    }
    Object.keys(own).forEach(function (k) { document.getElementById(own[k]).textContent = ""; });
    ui.showErrors(form, { responseText: text, status: status }, own);
  }

  function post(url, body, headers) {
    document.querySelectorAll("[data-result]").forEach(function (el) { el.classList.add("pending"); });
    return fetch(url, { method: "POST", body: body, headers: Object.assign({ "HX-Request": "true" }, headers || {}) })
      .then(function (r) { return r.text().then(function (t) { return [r.status, t]; }); });
  }

  var MIB = 1 << 20, FIRST = 8 * MIB, CAP = 64 * MIB;
  function sendHeader(form, file, size) {  // only file.slice(0, size) leaves the browser
    var status = document.getElementById("gguf-status");
    var fields = filled(form, ["model", "quantization", "runtime", "config"]);
    var body = new FormData();
    body.append("file", file.slice(0, Math.min(size, file.size)), file.name);
    Object.keys(fields).forEach(function (k) { body.append(k, String(fields[k])); });
    status.textContent = "Reading the first " + Math.round(Math.min(size, file.size) / MIB) + " MiB of " + file.name + "...";
    post("/api/gguf", body).then(function (res) {
      var more = res[0] === 422 && /truncated/.test(res[1]) && size < CAP && size < file.size;
      if (more) return sendHeader(form, file, Math.min(size * 2, CAP));
      status.textContent = res[0] === 200 ? "Estimated from the header of " + file.name + " (" + Math.round(Math.min(size, file.size) / MIB) + " MiB sent); the breakdown above is for this file." : "";
      answer(form, res[0], res[1], { file: "err-file" });
    }, function () { status.textContent = "The server did not answer."; });
  }

  window.vramOwnInputs = function (form, helpers) {
    ui = helpers;
    var file = document.getElementById("gguf-file"), go = document.getElementById("config-go");
    var text = document.getElementById("config");
    if (file) {
      file.disabled = false;
      file.addEventListener("change", function () { if (file.files.length) sendHeader(form, file.files[0], FIRST); });
    }
    if (go && text) {
      go.disabled = false;
      go.addEventListener("click", function () {
        var config;
        try { config = JSON.parse(text.value); } catch (e) {
          document.getElementById("err-config").textContent = "Not JSON: " + e.message + ".";
          text.setAttribute("aria-invalid", "true");
          return;
        }
        text.removeAttribute("aria-invalid");
        var body = Object.assign(filled(form, ["model", "config"]), { config: config });
        post("/api/vram", JSON.stringify(body), { "Content-Type": "application/json" }).then(function (res) {
          answer(form, res[0], res[1], { config: "err-config" });
        });
      });
    }
  };
})();
