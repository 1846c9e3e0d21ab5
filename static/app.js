// The pages' few client-side behaviours (no build step; every number still comes from the server):
// the log slider's label while dragging, 422 messages next to the control they name, the result marked
// stale until a valid state is back, responses for an older state dropped, refused runtime choices disabled.
(function () {
  "use strict";
  var fmt = function (n) { return Number(n).toLocaleString("en-US"); };
  var state = function (form) { return new URLSearchParams(new FormData(form)).toString(); };

  function slider(range) {
    var stops = range.dataset.stops.split(",");
    var box = document.getElementById(range.dataset.for);
    var out = document.getElementById(range.dataset.label);
    var show = function (v) { out.textContent = fmt(v); range.setAttribute("aria-valuetext", fmt(v) + " tokens"); };
    range.addEventListener("input", function () { box.value = stops[range.value]; show(box.value); });
    box.addEventListener("input", function () {
      if (!/^[0-9]+$/.test(box.value)) return;
      var i = stops.findIndex(function (s) { return Number(s) >= Number(box.value); });
      range.value = i < 0 ? stops.length - 1 : i;
      show(box.value);
    });
  }

  function setStale(on, why) {
    document.querySelectorAll("[data-result]").forEach(function (el) { el.classList.toggle("stale", on); });
    var note = document.getElementById("stale-note");
    if (note) { note.hidden = !on; note.textContent = on ? why : ""; }
  }

  function clearErrors(form) {
    form.querySelectorAll(".field-error").forEach(function (p) { p.textContent = ""; });
    form.querySelectorAll("[aria-invalid]").forEach(function (el) { el.removeAttribute("aria-invalid"); });
  }

  function describe(err) {
    var allowed = err.ctx && err.ctx.allowed;
    return err.msg + (Array.isArray(allowed) ? " (allowed: " + allowed.join(", ") + ")" : "") + ".";
  }

  function showErrors(form, xhr, own) {  // own: {loc part: slot id} for errors of a side form (config, file)
    var errors;
    try { errors = JSON.parse(xhr.responseText).detail; } catch (e) { errors = null; }
    if (!Array.isArray(errors)) errors = [{ loc: [own ? Object.keys(own)[0] : "form"], msg: "The server could not answer (HTTP " + xhr.status + ")" }];
    clearErrors(form);
    errors.forEach(function (err) {
      var mine = own && err.loc.find(function (p) { return own[p]; });
      var field = mine || err.loc.slice().reverse().find(function (p) { return typeof p === "string" && p !== "body" && p !== "query"; }) || "form";
      var slot = (mine && document.getElementById(own[mine])) || form.querySelector("#err-" + field) || form.querySelector("#err-form");
      var input = form.elements[field];
      if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
      slot.textContent = (slot.textContent ? slot.textContent + " " : "") + (slot.id === "err-form" ? field + ": " : "") + describe(err);
    });
    setStale(true, "Not updated: the numbers below are for the last valid input. Fix the marked field.");
  }

  function syncChoices(form) {  // calculator: a format runs on some runtimes; a runtime has some KV types
    var q = form.elements.quantization, rt = form.elements.runtime, kv = form.elements.kv_cache;
    if (!q || !rt || !q.selectedOptions.length) return;
    var allowed = q.selectedOptions[0].dataset.runtimes.split(" "), note = "";
    Array.prototype.forEach.call(rt.options, function (o) { o.disabled = o.value !== "" && allowed.indexOf(o.value) < 0; });
    if (rt.selectedOptions[0].disabled) {
      rt.value = "";
      note = q.selectedOptions[0].text + " runs on " + allowed.join(" or ") + ": runtime switched to " + allowed[0] + ".";
    }
    var runtime = rt.value || allowed[0];
    if (kv) {
      Array.prototype.forEach.call(kv.options, function (o) { o.disabled = o.value !== "" && o.dataset.runtimes.split(" ").indexOf(runtime) < 0; });
      if (kv.selectedOptions[0].disabled) { kv.value = ""; note += " KV cache set to " + runtime + "'s default."; }
    }
    var slot = document.getElementById("note-runtime");
    if (slot && note) slot.textContent = note;
  }

  // --- own inputs (issues 9, 10): runtime flags, your GGUF file's header, a pasted config.json ---
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
      clearErrors(form);
      Object.keys(own).forEach(function (k) { document.getElementById(own[k]).textContent = ""; });
      document.getElementById("breakdown").outerHTML = text;
      setStale(false);
      return;
    }
    Object.keys(own).forEach(function (k) { document.getElementById(own[k]).textContent = ""; });
    showErrors(form, { responseText: text, status: status }, own);
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
      status.textContent = res[0] === 200 ? "Estimated from the header of " + file.name + " (" + Math.round(Math.min(size, file.size) / MIB) + " MiB sent)." : "";
      answer(form, res[0], res[1], { file: "err-file" });
    }, function () { status.textContent = "The server did not answer."; });
  }

  function ownInputs(form) {
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
  }

  function init() {
    document.querySelectorAll("input[type=range][data-stops]").forEach(slider);
    var form = document.getElementById("controls");
    if (!form) return;
    syncChoices(form);
    ownInputs(form);
    form.addEventListener("input", function (e) {
      if (e.target.name === "model") {  // another model: a new page with its own limits and defaults
        window.location.href = "/calculator?model=" + encodeURIComponent(e.target.value);
        return;
      }
      if (e.target.name === "gpu" && form.elements.gpu_memory) form.elements.gpu_memory.value = "";
      if (e.target.name === "gpu_memory" && form.elements.gpu) form.elements.gpu.value = "";
      syncChoices(form);
      document.querySelectorAll("[data-result]").forEach(function (el) { el.classList.add("pending"); });
    });
  }

  document.addEventListener("htmx:configRequest", function (e) {  // a blank option means the API's default
    var form = e.detail.elt;
    if (!form.querySelectorAll) return;
    form.querySelectorAll("[data-blank-default]").forEach(function (el) {
      if (el.value !== "") return;
      if (e.detail.formData) e.detail.formData.delete(el.name); else delete e.detail.parameters[el.name];
    });
  });
  document.addEventListener("htmx:beforeRequest", function (e) {
    var form = e.detail.elt.closest && e.detail.elt.closest("form");
    if (form) e.detail.xhr.pageState = state(form);
  });
  document.addEventListener("htmx:beforeSwap", function (e) {  // later changes always win
    var form = e.detail.elt.closest && e.detail.elt.closest("form");
    if (form && e.detail.xhr.status < 400 && e.detail.xhr.pageState !== state(form)) e.detail.shouldSwap = false;
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt.closest && e.detail.elt.closest("form");
    if (!form || e.detail.xhr.pageState !== state(form)) return;
    if (e.detail.successful) {
      clearErrors(form);
      setStale(false);
    } else if (e.detail.xhr.status >= 400) {
      showErrors(form, e.detail.xhr);
    } else return;
    document.querySelectorAll("[data-result]").forEach(function (el) { el.classList.remove("pending"); });
  });
  document.addEventListener("htmx:sendError", function () { setStale(true, "Not updated: the server did not answer."); });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
