// vmotion's only script besides htmx. The Content-Security-Policy allows scripts from
// vmotion's static files and nothing else: no inline script, no handler attribute, no eval
// (so no htmx trigger filters, hx-on or js: values: what they would do lives here).

// A refreshing list marked data-hold-while-checked skips its refresh while a checkbox in it
// is ticked, so a refresh never clears an operator's selection.
document.addEventListener("htmx:confirm", (event) => {
  const element = event.detail.elt;
  if (element.matches("[data-hold-while-checked]") && element.querySelector("input[type=checkbox]:checked")) {
    event.preventDefault();
  }
});
