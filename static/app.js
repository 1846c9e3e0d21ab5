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
    var show = function (v) { range.setAttribute("aria-valuetext", fmt(v) + " tokens"); };
    range.addEventListener("input", function () {  // the label (the numbers' context, swapped in with them)
      var out = document.getElementById(range.dataset.label);  // follows a drag, marked pending until then
      box.value = stops[range.value];
      out.textContent = fmt(box.value);
      out.classList.add("pending");
      show(box.value);
    });
    box.addEventListener("input", function () {  // typing moves the slider; the label waits for the numbers
      if (!/^[0-9]+$/.test(box.value)) return;
      var i = stops.findIndex(function (s) { return Number(s) >= Number(box.value); });
      range.value = i < 0 ? stops.length - 1 : i;
      show(box.value);
    });
  }

  function setStale(on, why) {
    if (on) relabel();
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
    var msg = String(err.msg).replace(/\d{5,}/g, fmt);  // 10000000 -> 10,000,000
    return msg + (Array.isArray(allowed) ? " (allowed: " + allowed.join(", ") + ")" : "") + ".";
  }

  function showErrors(form, xhr, own) {  // own: {loc part: slot id} for errors of a side form (config, file)
    var errors;
    try { errors = JSON.parse(xhr.responseText).detail; } catch (e) { errors = null; }
    if (!Array.isArray(errors)) errors = [{ loc: [own ? Object.keys(own)[0] : "form"], msg: "The server could not answer (HTTP " + xhr.status + ")" }];
    clearErrors(form);
    errors.forEach(function (err) {
      var mine = own && err.loc.map(function (p) { return String(p).split(".")[0]; }).find(function (p) { return own[p]; });
      var field = mine || err.loc.slice().reverse().find(function (p) { return typeof p === "string" && p !== "body" && p !== "query"; }) || "form";
      var slot = (mine && document.getElementById(own[mine])) || form.querySelector("#err-" + field) || form.querySelector("#err-form");
      var input = form.elements[field];
      if (input && input.setAttribute) input.setAttribute("aria-invalid", "true");
      slot.textContent = (slot.textContent ? slot.textContent + " " : "") + (slot.id === "err-form" ? field + ": " : "") + describe(err);
    });
    setStale(true, "Not updated: the numbers below are for the last valid input. Fix the marked field.");
  }

  function relabel() {  // the context label back to the numbers' own context
    var shown = document.getElementById("breakdown"), label = document.getElementById("context-size");
    if (shown && label) { label.textContent = fmt(shown.dataset.state.split("/")[1]); label.classList.remove("pending"); }
  }

  function syncChoices(form) { if (window.vramSyncChoices) window.vramSyncChoices(form); }  // calc.js

  function init() {
    document.querySelectorAll("input[type=range][data-stops]").forEach(slider);
    var form = document.getElementById("controls");
    if (!form) return;
    syncChoices(form);
    if (window.vramOwnInputs) window.vramOwnInputs(form, { showErrors: showErrors, clearErrors: clearErrors, setStale: setStale });
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
      var banner = document.getElementById("error-banner");  // the page's banner for the fields now fixed
      if (banner) banner.remove();
    } else if (e.detail.xhr.status >= 400) {
      showErrors(form, e.detail.xhr);
    } else return;
    document.querySelectorAll("[data-result]").forEach(function (el) { el.classList.remove("pending"); });
  });
  document.addEventListener("htmx:sendError", function () { setStale(true, "Not updated: the server did not answer."); });

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init); else init();
})();
