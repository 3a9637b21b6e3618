// The student profile: the risk-history chart ("history-data") and the what-if form, which posts
// {"changes": {...}} as JSON to the form's data-url and shows the recomputed risk.
(function () {
  const history = JSON.parse(document.getElementById("history-data").textContent);
  const canvas = document.getElementById("chart-history");
  if (canvas && typeof Chart !== "undefined") {
    Chart.defaults.animation = false;
    Chart.defaults.maintainAspectRatio = false;
    new Chart(canvas, {type: "line",
      data: {labels: history.map(r => r.date), datasets: [{label: canvas.dataset.axisLabel, data: history.map(r => r.risk), borderColor: "#b02a37", backgroundColor: "#b02a37", tension: 0.2}]},
      options: {plugins: {legend: {display: false}}, scales: {y: {min: 0, max: 100, title: {display: true, text: canvas.dataset.axisLabel}}}}});
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
    out.textContent = form.dataset.recomputing;
    const response = await fetch(form.dataset.url, {method: "POST", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value},
      body: JSON.stringify({changes: changes})});
    const body = await response.json();
    out.replaceChildren();
    const p = document.createElement("p");
    p.className = response.ok ? "mb-0" : "text-danger mb-0";
    if (response.ok) {
      // The sentence comes translated from the page ({after}, {before}, {version}); the numbers in the page's language.
      const number = new Intl.NumberFormat(document.documentElement.lang || undefined,
        {minimumFractionDigits: 1, maximumFractionDigits: 1});
      const percent = value => number.format(100 * value) + "%";
      form.dataset.result.split(/(\{after\}|\{before\}|\{version\})/).forEach(function (part) {
        if (part === "{after}") {
          const strong = document.createElement("strong"); strong.id = "what-if-risk"; strong.textContent = percent(body.risk_after);
          p.append(strong);
        } else if (part === "{before}") p.append(percent(body.risk_before));
        else if (part === "{version}") p.append(String(body.model_version));
        else p.append(part);
      });
    } else {
      p.textContent = body.message || form.dataset.failed;
    }
    out.append(p);
    if (response.ok && body.factors_after && body.factors_after.length) {
      const heading = document.createElement("p");
      heading.className = "small mb-1 mt-2"; heading.textContent = form.dataset.factorsHeading;
      const list = document.createElement("ul");
      list.className = "small mb-0"; list.id = "what-if-factors";
      body.factors_after.forEach(function (factor) {
        const item = document.createElement("li"); item.textContent = factor.text; list.append(item);
      });
      out.append(heading, list);
    }
  });
})();
