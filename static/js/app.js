// Behaviour any page may use, declared in the markup instead of inline handlers, so that a
// Content-Security-Policy can forbid inline script:
//   <form data-confirm="Question?">   asks before submitting;
//   <input data-select-on-focus>       selects its whole value on focus (secrets shown once).
document.addEventListener("submit", function (event) {
  const question = event.target.dataset ? event.target.dataset.confirm : undefined;
  if (question && !window.confirm(question)) event.preventDefault();
});
document.addEventListener("focusin", function (event) {
  if (event.target.matches && event.target.matches("[data-select-on-focus]")) event.target.select();
});
