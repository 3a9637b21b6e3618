// The student profile: the risk-history chart ("history-data") and the what-if form, which posts
// {"changes": {...}} as JSON to the form's data-url and shows the recomputed risk.
(function () {
  const history = JSON.parse(document.getElementById("history-data").textContent);
  const canvas = document.getElementById("chart-history");
  if (canvas && typeof Chart !== "undefined") {
    Chart.defaults.animation = false;
    Chart.defaults.maintainAspectRatio = false;
    new Chart(canvas, {type: "line",
      data: {labels: history.map(r => r.date), datasets: [{label: "Risk (%)", data: history.map(r => r.risk), borderColor: "#b02a37", backgroundColor: "#b02a37", tension: 0.2}]},
      options: {plugins: {legend: {display: false}}, scales: {y: {min: 0, max: 100, title: {display: true, text: "Risk (%)"}}}}});
  }
  const form = document.getElementById("what-if-form");
  if (!form) return;
  const out = document.getElementById("what-if-result");
  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const changes = {};
    form.querySelectorAll("[data-kind]").forEach(function (input) {
      if (input.value === "") return;
      if (input.dataset.kind === "numeric") changes[input.name] = Number(input.value);
      else if (input.dataset.kind === "boolean") changes[input.name] = input.value === "true";
      else changes[input.name] = input.value;
    });
    out.textContent = "Recomputing…";
    const response = await fetch(form.dataset.url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value},
      body: JSON.stringify({changes: changes})});
    const body = await response.json();
    out.replaceChildren();
    const p = document.createElement("p");
    p.className = response.ok ? "mb-0" : "text-danger mb-0";
    if (response.ok) {
      const before = (100 * body.risk_before).toFixed(1), after = (100 * body.risk_after).toFixed(1);
      p.innerHTML = "";
      p.append("Risk would be ");
      const strong = document.createElement("strong"); strong.id = "what-if-risk"; strong.textContent = after + "%";
      p.append(strong, " instead of " + before + "% (model version " + body.model_version + ").");
    } else {
      p.textContent = body.message || "Could not recompute.";
    }
    out.append(p);
  });
})();
