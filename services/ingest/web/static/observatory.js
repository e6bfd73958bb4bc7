// The zero-point plot of an observatory page: one series per band, from the page's JSON data block.
(function () {
  var data = JSON.parse(document.getElementById("zp-data").textContent);
  var traces = data.map(function (s) {
    return {x: s.mjd, y: s.zp, name: s.name, mode: "markers", type: "scatter", customdata: s.id,
            marker: {color: s.colour},
            error_y: {type: "data", color: s.colour, visible: true,
                      array: s.zp_err.map(function (e) { return e === null ? 0 : e; })},
            hovertemplate: "point %{customdata}<br>MJD %{x:.5f}<br>ZP %{y:.3f}<extra>%{fullData.name}</extra>"};
  });
  Plotly.newPlot("zp-plot", traces, {
    margin: {t: 20, r: 20, b: 60, l: 90}, showlegend: true, hovermode: "closest",
    xaxis: {title: {text: "MJD"}, tickformat: ".1f"},
    yaxis: {title: {text: "zero point [mag]", standoff: 12}, tickformat: ".3f", automargin: true},
    legend: {orientation: "h", y: -0.25}
  }, {responsive: true, displaylogo: false});
})();
