"""The studio's routes, one ``APIRouter`` per concern; ``ROUTERS`` is the order they are included in (which is the
order of the paths in the OpenAPI schema)."""

from __future__ import annotations

from . import live, models, ratings, samples, translate

ROUTERS = (models.router, samples.router, translate.router, ratings.router, live.router)
