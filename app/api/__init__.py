"""HTTP layer: routes (one router per resource), dependencies, schemas, middleware."""
