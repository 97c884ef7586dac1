"""The service's routes, one module per OpenAPI tag: ``contract`` (the MLX course's endpoints),
``api`` (the JSON API), ``ops`` (health, metrics, reload) and ``web`` (the page and the docs)."""
