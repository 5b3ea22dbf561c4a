"""Run a Prefect 3.8 API server in this process (started by bench.prefect_native).

prefect 3.8.8's server declares `Body(..., min_items=1)`, which fastapi 0.165 (installed for
the API) no longer accepts, so `prefect server start` dies at import. This launcher maps the
pydantic-1 spelling to the current one before Prefect imports fastapi, then serves the
server app with uvicorn. Bench-only: the product's own flows will need the same care.

Usage: python -m bench.prefect_server PORT
"""

import sys
from typing import Any

import fastapi
import fastapi.param_functions as pf

RENAMED = {"min_items": "min_length", "max_items": "max_length"}


def _compatible(original: Any) -> Any:
    def wrapper(*args: Any, **kw: Any) -> Any:
        for old, new in RENAMED.items():
            if old in kw:
                kw[new] = kw.pop(old)
        return original(*args, **kw)

    return wrapper


for _name in ("Body", "Query", "Path", "Form", "Header", "Cookie"):
    _patched = _compatible(getattr(pf, _name))
    setattr(pf, _name, _patched)
    setattr(fastapi, _name, _patched)


def main() -> None:
    import uvicorn

    port = int(sys.argv[1])
    uvicorn.run(
        "prefect.server.api.server:create_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
