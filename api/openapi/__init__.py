"""OpenAPI 3.1 document of the API, generated from the routing table and the domain schemas."""
