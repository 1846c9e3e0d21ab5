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

  // Your file or config stays the model until you pick another (or press "back"): a change of the options
  // above re-sends it instead of the catalog model, and a note beside the result says which one it is.
  var mine = null;  // null, {kind: "gguf", file, size} or {kind: "config", config}
  function showOwn(label) {
    var note = document.getElementById("own-note"), text = document.getElementById("own-note-text");
    if (!note || !text) return;
    note.hidden = !label;
    text.textContent = label ? "The breakdown is for " + label + ", not the catalog model; changing the options above re-estimates it. The page's URL cannot hold it (it still names the catalog model)." : "";
  }
  function swapIn(text) {  // the breakdown, and its out-of-band parts (the context label) by id
    var tpl = document.createElement("template");
    tpl.innerHTML = text;
    Array.prototype.slice.call(tpl.content.children).forEach(function (el) {  // a copy: replaceWith moves them
      var old = el.id && document.getElementById(el.id);
      if (!old) return;
      el.removeAttribute("hx-swap-oob");
      old.replaceWith(el);
    });
  }

  function answer(form, status, text, own) {  // a fetched breakdown, or its 422 beside the named control
    document.querySelectorAll("[data-result]").forEach(function (el) { el.classList.remove("pending"); });
    if (status === 200) {
      ui.clearErrors(form);
      Object.keys(own).forEach(function (k) { document.getElementById(own[k]).textContent = ""; });
      swapIn(text);
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
    var fields = filled(form, ["model", "quantization", "runtime", "config", "gpu_memory"]);
    var body = new FormData();
    body.append("file", file.slice(0, Math.min(size, file.size)), file.name);
    Object.keys(fields).forEach(function (k) { body.append(k, String(fields[k])); });
    status.textContent = "Reading the first " + Math.round(Math.min(size, file.size) / MIB) + " MiB of " + file.name + "...";
    post("/api/gguf", body).then(function (res) {
      var more = res[0] === 422 && /truncated/.test(res[1]) && size < CAP && size < file.size;
      if (more) return sendHeader(form, file, Math.min(size * 2, CAP));
      status.textContent = res[0] === 200 ? "Estimated from the header of " + file.name + " (" + Math.round(Math.min(size, file.size) / MIB) + " MiB sent); the breakdown is for this file." : "";
      if (res[0] === 200) { mine = { kind: "gguf", file: file, size: size }; showOwn("your file " + file.name); }
      answer(form, res[0], res[1], { file: "err-file" });
    }, function () { status.textContent = "The server did not answer."; });
  }

  window.vramSyncChoices = function (form) {  // a format runs on some runtimes; a runtime has some KV types
    var q = form.elements.quantization, rt = form.elements.runtime, kv = form.elements.kv_cache;
    if (!q || !rt || !q.selectedOptions.length) return;
    var allowed = q.selectedOptions[0].dataset.runtimes.split(" "), note = "";
    Array.prototype.forEach.call(rt.options, function (o) {
      if (o.value === "") return;
      o.dataset.label = o.dataset.label || o.textContent;
      o.disabled = allowed.indexOf(o.value) < 0;
      o.textContent = o.dataset.label + (o.disabled ? " (does not load " + q.selectedOptions[0].text + ")" : "");
    });
    if (rt.selectedOptions[0].disabled) {
      rt.value = "";
      note = q.selectedOptions[0].text + " runs on " + allowed.join(" or ") + ": runtime switched to " + allowed[0] + ".";
    }
    var runtime = rt.value || allowed[0];
    if (kv) {  // a refused choice stays listed, disabled, and says why
      Array.prototype.forEach.call(kv.options, function (o) {
        if (o.value === "") return;
        o.dataset.label = o.dataset.label || o.textContent;
        o.disabled = o.dataset.runtimes.split(" ").indexOf(runtime) < 0;
        o.textContent = o.dataset.label + (o.disabled ? " (not on " + runtime + ")" : "");
      });
      if (kv.selectedOptions[0].disabled) { kv.value = ""; note += " KV cache set to " + runtime + "'s default."; }
    }
    var slot = document.getElementById("note-runtime");
    if (slot && note) slot.textContent = note;
  };

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
        sendConfig(form, config);
      });
    }
    var back = document.getElementById("own-back");
    if (back) back.addEventListener("click", function () {  // back to the catalog model the page names
      mine = null;
      showOwn(null);
      form.dispatchEvent(new Event("input", { bubbles: true }));
    });
    document.addEventListener("htmx:beforeRequest", function (e) {  // the options changed: re-send your own input
      if (!mine || e.detail.elt !== form) return;
      e.preventDefault();
      if (mine.kind === "gguf") sendHeader(form, mine.file, mine.size); else sendConfig(form, mine.config);
    });
  };

  function sendConfig(form, config) {
    var body = Object.assign(filled(form, ["model", "config", "gpu_memory"]), { config: config });
    post("/api/vram", JSON.stringify(body), { "Content-Type": "application/json" }).then(function (res) {
      if (res[0] === 200) { mine = { kind: "config", config: config }; showOwn("your pasted config.json"); }
      answer(form, res[0], res[1], { config: "err-config" });
    });
  }
})();
