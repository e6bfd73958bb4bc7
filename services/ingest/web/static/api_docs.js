// Swagger UI on the server's OpenAPI document. The bundled Swagger UI reads OpenAPI 3.0; the document is
// 3.1 written in the common subset, so it is shown as 3.0 (the file served stays as it is).
window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/api/v1/openapi.yaml",
    dom_id: "#swagger-ui",
    deepLinking: true,
    docExpansion: "list",
    defaultModelsExpandDepth: 0,
    responseInterceptor: function (response) {
      if (response.url && response.url.indexOf("/api/v1/openapi.yaml") !== -1 && typeof response.text === "string") {
        response.text = response.text.replace(/^openapi:\s*['"]?3\.1\.\d+['"]?\s*$/m, "openapi: 3.0.3");
        response.data = response.text;
        response.body = undefined;
      }
      return response;
    }
  });
});
