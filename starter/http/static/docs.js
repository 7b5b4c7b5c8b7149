// Swagger UI over this server's OpenAPI document. "Try it out" sends the page's session
// cookie; an action also carries the session's CSRF token, as the deployments page's do.
"use strict";

function csrfToken() {
  const pair = document.cookie.split("; ").find((c) => c.startsWith("slipway_csrf="));
  return pair ? decodeURIComponent(pair.slice("slipway_csrf=".length)) : null;
}

window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  displayOperationId: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  requestInterceptor: (request) => {
    const token = csrfToken();
    if (token && !["GET", "HEAD"].includes(String(request.method).toUpperCase())) {
      request.headers["X-CSRF-Token"] = token;
    }
    return request;
  },
});
