"use strict";
// Swagger UI over the schema the page names. "Try it out" uses the signed-in session, so
// writes carry the session's CSRF token; a token pasted under "Authorize" works as well.

// An operation's summary is one button that expands it; Swagger UI puts a deep link to the
// operation inside that button, and a link inside a button is a control no keyboard or
// screen reader can reach apart. The path is drawn as text; expanding the operation still
// puts its deep link in the address bar.
const OperationPathAsText = () => ({
  wrapComponents: {
    OperationSummaryPath: (Original, system) => (props) =>
      system.React.createElement(Original, { ...props, operationProps: props.operationProps.set("isDeepLinkingEnabled", false) }),
  },
});

// What Swagger UI draws out of reach of the keyboard, without a name or out of order, fixed
// as it draws it: examples taller than their box scroll, so they take the focus to be
// scrolled by keys; the authorization dialog is a dialog, its close button has a name and its
// buttons' names say their text; the API's title ranks under the page's own heading, so
// headings step down one level at a time; the part above the operations is a region.
function fixAsDrawn(root) {
  const set = (selector, attribute, value) =>
    root.querySelectorAll(selector).forEach((element) => element.getAttribute(attribute) === value || element.setAttribute(attribute, value));
  set("pre.microlight", "tabindex", "0");
  set(".modal-ux", "role", "dialog");
  set(".modal-ux", "aria-modal", "true");
  set(".modal-ux", "aria-label", "Authorizations");
  set("button.close-modal", "aria-label", "Close");
  root.querySelectorAll(".auth-btn-wrapper button[aria-label]").forEach((button) => button.removeAttribute("aria-label"));
  set(".info .title", "aria-level", "2");
  set(".information-container", "role", "region");
  set(".information-container", "aria-label", "About the API");
}

window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  new MutationObserver(() => fixAsDrawn(root)).observe(root, { childList: true, subtree: true });
  window.ui = SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [OperationPathAsText],
    layout: "BaseLayout",
    deepLinking: true,
    persistAuthorization: false,
    // The default theme's numbers are 3.4:1 on its background; this one's JSON reads at 5.6:1 or more.
    syntaxHighlight: { activated: true, theme: "tomorrow-night" },
    requestInterceptor: (request) => {
      if (request.method && request.method !== "GET") {
        request.headers["X-CSRFToken"] = root.dataset.csrfToken;
      }
      return request;
    },
  });
});
