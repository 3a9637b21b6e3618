// Behaviour any page may use, declared in the markup instead of inline handlers, so that a
// Content-Security-Policy can forbid inline script:
//   <form data-confirm="Question?">   asks before submitting;
//   <input data-select-on-focus>       selects its whole value on focus (secrets shown once);
//   <form data-auto-submit>            is submitted once the page has loaded (its button stays, for no script).
document.addEventListener("submit", function (event) {
  const question = event.target.dataset ? event.target.dataset.confirm : undefined;
  if (question && !window.confirm(question)) event.preventDefault();
});
document.addEventListener("focusin", function (event) {
  if (event.target.matches && event.target.matches("[data-select-on-focus]")) event.target.select();
});
document.addEventListener("DOMContentLoaded", function () {
  const form = document.querySelector("form[data-auto-submit]");
  if (form) form.submit();
});
// Ctrl+K (Cmd+K on a Mac) goes to the student search box of the navigation bar, opening the phone
// menu first when it is collapsed. A modifier key, so no single-key shortcut fires while typing.
document.addEventListener("keydown", function (event) {
  if (!(event.ctrlKey || event.metaKey) || event.altKey || (event.key || "").toLowerCase() !== "k") return;
  const box = document.getElementById("site-search");
  if (!box) return;
  event.preventDefault();
  const menu = document.getElementById("nav-main");
  if (menu && !menu.classList.contains("show") && box.offsetParent === null && window.bootstrap) {
    menu.addEventListener("shown.bs.collapse", function () { box.focus(); box.select(); }, {once: true});
    window.bootstrap.Collapse.getOrCreateInstance(menu).show();
    return;
  }
  box.focus();
  box.select();
});
