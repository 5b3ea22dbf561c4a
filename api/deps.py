"""Request-scoped dependencies shared by every router.

Usage:

    from api.deps import Welfare, CallerLang

    @router.get("/x")
    def x(app: Welfare, lang: CallerLang) -> ...:
        app.service / app.admin / app.engine / app.definitions / app.settings
        lang  # "vi" (default) or "en", from Accept-Language

The domain App (domain.bootstrap.App) lives on `fastapi_app.state.welfare`; its service's
clock (`app.service.clock`) is the one time source (tests move it).
"""

from typing import Annotated

from fastapi import Depends, Request

from api.problems import request_lang
from domain.bootstrap import App
from domain.i18n import Lang


def get_welfare(request: Request) -> App:
    app: App = request.app.state.welfare
    return app


Welfare = Annotated[App, Depends(get_welfare)]
CallerLang = Annotated[Lang, Depends(request_lang)]
