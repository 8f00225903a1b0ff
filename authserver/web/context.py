"""The one typed way from a request to the app's ``Services`` (built by ``create_app``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

if TYPE_CHECKING:  # the container sits above every front door; only its type is named here
    from authserver.runtime.services import Services


def services_of(request: Request) -> Services:
    """The ``Services`` of the app serving ``request``."""
    services: Services = request.app.state.services
    return services
