// "Select all" on the flagged list ticks every student of the page for bulk assignment.
(function () {
  const all = document.getElementById("pick-all");
  if (!all) return;
  all.addEventListener("change", function () {
    document.querySelectorAll('input[name="students"][form="assign-form"]').forEach(function (box) { box.checked = all.checked; });
  });
})();
