// The upload form: the force-filter choices of the chosen event, and the MJD of a UTC time.
(function () {
  "use strict";
  var event = document.getElementById("event"), force = document.getElementById("force");
  var hint = document.getElementById("force-hint");
  var utc = document.getElementById("utc"), out = document.getElementById("utc-mjd");
  var kinds = document.querySelectorAll("input[name=time_kind]");
  var last = event.value;
  function fill(choices) {
    while (force.options.length) { force.remove(0); }
    choices.forEach(function (c) { force.add(new Option(c.label, c.value)); });
  }
  function refresh() {
    if (event.value === last) { return; }
    last = event.value;
    fetch("/uploader/filters?event=" + encodeURIComponent(event.value), {headers: {Accept: "application/json"}})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (!body || body.event === null) { hint.textContent = "Pick a known event to see its surveys and bands."; return; }
        fill(body.choices);
        hint.textContent = body.choices.length > 1
          ? (body.choices.length - 1) + " survey/band choices at " + body.event + "."
          : "The reference store has no stars around " + body.event + ".";
        force.dataset.event = body.event;
      });
  }
  event.addEventListener("change", refresh);
  event.addEventListener("input", function () { if (event.value.indexOf("ivo://") === 0) { refresh(); } });
  function mjdOf(text) {
    var t = Date.parse(text + "Z");  // datetime-local is read as UTC
    return isNaN(t) ? null : t / 86400000 + 40587;
  }
  utc.addEventListener("input", function () {
    var m = mjdOf(utc.value);
    out.textContent = m === null ? "—" : m.toFixed(5);
    if (utc.value) { kinds[1].checked = true; }
  });
  document.getElementById("mjd").addEventListener("input", function () { kinds[0].checked = true; });
})();
