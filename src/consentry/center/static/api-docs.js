// The API reference (Swagger UI from the fastapi-offline wheel, served by
// the center itself): a file, not an inline script, so the site's CSP holds.
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
