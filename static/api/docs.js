"use strict";
// Swagger UI over the schema the page names. "Try it out" uses the signed-in session, so
// writes carry the session's CSRF token; a token pasted under "Authorize" works as well.
window.addEventListener("DOMContentLoaded", () => {
  const root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "BaseLayout",
    deepLinking: true,
    persistAuthorization: false,
    requestInterceptor: (request) => {
      if (request.method && request.method !== "GET") {
        request.headers["X-CSRFToken"] = root.dataset.csrfToken;
      }
      return request;
    },
  });
});
