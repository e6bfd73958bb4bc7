// The event page: draws the light curve with Plotly from the JSON light curve, keeps the band and
// observatory toggles, and redraws (plot and table) when the live stream says a point joined or left.
(function () {
  "use strict";
  const config = JSON.parse(document.getElementById("event-config").textContent);
  const plot = document.getElementById("lightcurve");
  const liveState = document.getElementById("live-state");
  const pointsBox = document.getElementById("points");
  const bandBox = document.getElementById("band-toggles");
  const observatoryBox = document.getElementById("observatory-toggles");
  // one marker per observatory (limits are always down-triangles, the alert's own points stars)
  // (no triangles: a down-triangle means a limit, and an up-triangle would look like one)
  const SYMBOLS = ["circle", "square", "diamond", "cross", "x", "pentagon", "hexagon", "circle-open",
    "square-open", "diamond-open", "hourglass", "bowtie", "star-square", "star-diamond", "diamond-tall",
    "diamond-wide", "hexagram", "circle-x", "square-x", "diamond-x"];
  const hidden = { band: new Set(), observatory: new Set() };
  let busy = false, again = false, version = 0;

  // Plotly reads a few tags in hover and legend text: user data goes in as text, never as markup
  const esc = (s) => String(s === null || s === undefined ? "" : s)
    .replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
  const num = (v, d) => (v === null || v === undefined ? "—" : Number(v).toFixed(d));
  const utc = (mjd) => new Date(Math.round((mjd - 40587) * 86400000)).toISOString().replace("T", " ").slice(0, 19);
  let bandColours = config.colours;  // shared/bands.py's table, and the curve's own bands as it comes
  const colour = (band) => bandColours[band] || "#7f7f7f";
  const sourceOf = (p) => (p.kind === "alert" ? `${p.survey} alert` : p.observatory || "?");

  function traces(points) {
    const observatories = [...new Set(points.filter((p) => p.kind === "followup").map(sourceOf))].sort();
    const symbolOf = new Map(observatories.map((o, i) => [o, SYMBOLS[i % SYMBOLS.length]]));
    const groups = new Map();
    for (const p of points) {
      const kind = p.kind === "alert" ? "alert" : p.is_limit ? "limit" : "detection";
      const key = JSON.stringify([String(p.filter), sourceOf(p), kind]);
      if (!groups.has(key)) groups.set(key, { band: String(p.filter), source: sourceOf(p), kind, rows: [] });
      groups.get(key).rows.push(p);
    }
    const many = points.length > 3000;  // WebGL keeps tens of thousands of points responsive
    return [...groups.values()].sort((a, b) => (a.band + a.source).localeCompare(b.band + b.source)).map((g) => {
      const c = colour(g.band);
      const symbol = g.kind === "limit" ? "triangle-down" : g.kind === "alert" ? "star" : symbolOf.get(g.source);
      return {
        type: many ? "scattergl" : "scatter", mode: "markers",
        name: esc(`${g.source}${g.kind === "limit" ? " (limits)" : ""}`),
        legendgroup: g.band, legendgrouptitle: { text: esc(g.band) },
        meta: { band: g.band, observatory: g.kind === "alert" ? null : g.source },
        visible: !(hidden.band.has(g.band) || (g.kind !== "alert" && hidden.observatory.has(g.source))),
        x: g.rows.map((p) => p.mjd), y: g.rows.map((p) => p.mag),
        error_y: g.kind === "limit" ? { visible: false } : {
          type: "data", visible: true, thickness: 1, width: 0, color: c,
          array: g.rows.map((p) => (p.total_err !== null && p.total_err !== undefined ? p.total_err : p.mag_err || 0)) },
        marker: { color: g.kind === "alert" ? "#ffffff" : c, symbol, size: g.kind === "alert" ? 12 : 8,
          line: { color: c, width: g.kind === "alert" ? 2 : 0.5 } },
        customdata: g.rows.map((p) => [String(p.id), esc(sourceOf(p)), utc(p.mjd), num(p.mag_err, 3),
          num(p.calib_err, 3), num(p.total_err, 3), esc(`${p.survey}/${p.filter}`), esc(p.mode || "—"),
          p.kind === "alert" ? "alert stream" : `point ${p.id}`, p.is_limit ? " (upper limit)" : ""]),
        hovertemplate: "<b>%{customdata[1]}</b><br>MJD %{x:.5f} · %{customdata[2]} UTC<br>" +
          "mag %{y:.3f}%{customdata[9]}<br>mag_err %{customdata[3]} · calib_err %{customdata[4]} · " +
          "total_err %{customdata[5]}<br>%{customdata[6]} · %{customdata[7]} · %{customdata[8]}<extra></extra>",
      };
    });
  }

  function layout(points) {
    return {
      margin: { l: 60, r: 20, t: 10, b: 50 }, height: 460, hovermode: "closest", dragmode: "zoom",
      xaxis: { title: { text: "MJD (mid-exposure, UTC)" }, zeroline: false, exponentformat: "none",
        separatethousands: false, tickformat: ".1f" },
      yaxis: { title: { text: "magnitude" }, autorange: "reversed", zeroline: false },
      showlegend: points.length > 0, legend: { groupclick: "toggleitem", font: { size: 12 } },
      plot_bgcolor: "#ffffff", paper_bgcolor: "#ffffff", uirevision: "keep",
      annotations: points.length ? [] : [{ text: "No points yet: they appear here as they are calibrated",
        showarrow: false, xref: "paper", yref: "paper", x: 0.5, y: 0.5, font: { size: 15, color: "#5b6575" } }],
    };
  }

  function toggles(box, kind, values) {
    const legend = box.querySelector("legend");
    box.replaceChildren(legend);
    box.hidden = values.length === 0;
    for (const value of values) {
      const label = document.createElement("label");
      label.className = "check";
      const input = document.createElement("input");
      input.type = "checkbox"; input.name = kind; input.value = value; input.checked = !hidden[kind].has(value);
      input.addEventListener("change", () => {
        if (input.checked) hidden[kind].delete(value); else hidden[kind].add(value);
        Plotly.restyle(plot, { visible: plot.data.map((t) => !(hidden.band.has(t.meta.band) ||
          (t.meta.observatory !== null && hidden.observatory.has(t.meta.observatory)))) });
      });
      label.append(input);
      if (kind === "band") {
        const swatch = document.createElement("span");
        swatch.className = "swatch"; swatch.style.background = colour(value);
        label.append(swatch);
      }
      label.append(document.createTextNode(value));
      box.append(label);
    }
  }

  function draw(curve) {
    const points = curve.points;
    bandColours = Object.assign({}, config.colours, curve.bands || {});
    toggles(bandBox, "band", [...new Set(points.map((p) => String(p.filter)))].sort());
    toggles(observatoryBox, "observatory",
      [...new Set(points.filter((p) => p.kind === "followup").map(sourceOf))].sort());
    return Plotly.react(plot, traces(points), layout(points),
      { responsive: true, displaylogo: false, scrollZoom: true, modeBarButtonsToRemove: ["select2d", "lasso2d"] });
  }

  async function refresh(withTable) {
    if (busy) { again = again || withTable; return; }
    busy = true;
    try {
      const answer = await fetch(config.json_url, { headers: { Accept: "application/json" } });
      if (!answer.ok) throw new Error(`the light curve did not load (${answer.status})`);
      const curve = await answer.json();
      await draw(curve);
      if (withTable) {
        const table = await fetch(`${config.points_url}?page=${config.page}`);
        if (table.ok) pointsBox.innerHTML = await table.text();  // server-rendered, autoescaped
        document.getElementById("n-followup").textContent =
          String(curve.points.filter((p) => p.kind === "followup").length);
      }
      plot.dataset.version = String(++version);
    } catch (error) {
      liveState.textContent = `Could not read the light curve: ${error.message}`;
    } finally {
      busy = false;
      if (again) { const table = again; again = false; refresh(table); }
    }
  }

  function listen() {
    if (!window.EventSource) { liveState.textContent = "This browser cannot follow live updates: reload to see new points."; return; }
    const source = new EventSource(config.live_url);
    source.addEventListener("ready", () => {
      liveState.textContent = "Live: new and deleted points show up here without reloading.";
      document.body.dataset.live = "on";
      refresh(true);  // whatever changed while the stream was connecting
    });
    source.addEventListener("update", () => refresh(true));
    source.addEventListener("error", () => {
      document.body.dataset.live = "off";
      liveState.textContent = "Live updates interrupted: reconnecting…";
    });
  }

  if (typeof Plotly === "undefined") {
    plot.textContent = "The plotting library did not load; the table below has every point.";
  } else {
    refresh(false);
  }
  listen();
})();
