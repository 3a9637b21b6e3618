// Calibration and importance charts of the model pages: each canvas "<x>-calibration" or
// "<x>-importance" reads its data from the json_script element "<x>-calibration-data" (or "-importance-data")
// and its labels, in the page's language, from its data-*-label attributes.
(function () {
  function data(id) { var el = document.getElementById(id); return el ? JSON.parse(el.textContent) : null; }
  document.querySelectorAll("canvas[id$='-calibration']").forEach(function (canvas) {
    var bins = data(canvas.id + "-data"); if (!bins) return;
    new Chart(canvas, {type: "scatter", data: {datasets: [
      {label: canvas.dataset.modelLabel || "Model", data: bins.predicted.map(function (p, i) { return {x: p, y: bins.observed[i]}; }), showLine: true, borderColor: "#0b5ed7", backgroundColor: "#0b5ed7"},
      {label: canvas.dataset.perfectLabel || "Perfect calibration", data: [{x: 0, y: 0}, {x: 1, y: 1}], showLine: true, borderDash: [6, 4], borderColor: "#6c757d", pointRadius: 0}
    ]}, options: {scales: {x: {min: 0, max: 1, title: {display: true, text: canvas.dataset.xLabel || "Mean shown risk"}}, y: {min: 0, max: 1, title: {display: true, text: canvas.dataset.yLabel || "Observed dropout rate"}}}}});
  });
  document.querySelectorAll("canvas[id$='-importance']").forEach(function (canvas) {
    var rows = data(canvas.id + "-data"); if (!rows) return;
    new Chart(canvas, {type: "bar", data: {labels: rows.map(function (r) { return r.label; }), datasets: [
      {label: canvas.dataset.seriesLabel || "Mean |SHAP| (log-odds)", data: rows.map(function (r) { return r.value; }), backgroundColor: "#0b5ed7"}
    ]}, options: {indexAxis: "y", plugins: {legend: {display: false}}}});
  });
})();
