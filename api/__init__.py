"""The HTTP API: a thin FastAPI layer over domain.service. No business rule lives in a route."""
