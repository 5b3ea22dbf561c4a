"""What a flow run works on: the application (database, definitions, service) and its relay.

A served flow run is a fresh process: it builds the application from the environment
(WELFARE_* settings) once. Tests and embedding code install their own with `use_app`.
"""

from collections.abc import Sequence
from datetime import datetime

from domain.bootstrap import App, bootstrap
from domain.config import Settings
from domain.service.relay import Consumer, Relay, build_relay

_app: App | None = None
_relay: Relay | None = None
_extra: Sequence[Consumer] = ()


def use_app(app: App | None, extra_consumers: Sequence[Consumer] = ()) -> None:
    """Run flows in this process against `app` (None: back to the environment's), with
    `extra_consumers` after the product's own (tests record what the relay hands out)."""
    global _app, _relay, _extra
    _app, _relay, _extra = app, None, tuple(extra_consumers)


def get_app() -> App:
    global _app
    if _app is None:
        _app = bootstrap(Settings())
    return _app


def get_relay() -> Relay:
    global _relay
    if _relay is None:
        app = get_app()
        _relay = build_relay(app.service, app.settings, extra=_extra)
    return _relay


def now() -> datetime:
    return get_app().service.clock()
