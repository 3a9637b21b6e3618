// The dashboard's charts, drawn from the figures the page embeds with json_script ("dashboard-data").
(function () {
  const data = JSON.parse(document.getElementById("dashboard-data").textContent);
  if (typeof Chart === "undefined") return;
  Chart.defaults.font.size = 13;
  Chart.defaults.animation = false;  // no motion: charts are read, not watched
  Chart.defaults.maintainAspectRatio = false;  // the box sets the height, so phones get readable charts
  Chart.defaults.color = "#212529";
  new Chart(document.getElementById("chart-bands"), {
    type: "bar",
    data: {labels: ["High", "Medium", "Low"], datasets: [{label: "Students",
      data: [data.bands.high, data.bands.medium, data.bands.low], backgroundColor: ["#b02a37", "#cc8a00", "#2e7d4f"]}]},
    options: {plugins: {legend: {display: false}}, scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}
  });
  new Chart(document.getElementById("chart-histogram"), {
    type: "bar",
    data: {labels: data.histogramLabels, datasets: [{label: "Students", data: data.histogram, backgroundColor: "#3d6fb6"}]},
    options: {plugins: {legend: {display: false}}, scales: {x: {title: {display: true, text: "Predicted risk"}}, y: {beginAtZero: true, ticks: {precision: 0}}}}
  });
  const overTime = document.getElementById("chart-over-time");
  if (overTime) new Chart(overTime, {
    type: "line",
    data: {labels: data.overTime.map(r => r.date), datasets: [{label: "Flagged", data: data.overTime.map(r => r.flagged), borderColor: "#b02a37", backgroundColor: "#b02a37", tension: 0.2}]},
    options: {plugins: {legend: {display: false}}, scales: {y: {beginAtZero: true, ticks: {precision: 0}}}}
  });
})();
