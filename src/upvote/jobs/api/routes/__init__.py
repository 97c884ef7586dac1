"""The API's routers: one module per OpenAPI tag."""
