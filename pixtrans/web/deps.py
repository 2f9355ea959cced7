"""What the routes share, handed to them as FastAPI dependencies.

``create_app`` puts the state on ``app.state`` (``studio``, ``queue``, ``ratings``, ``limits``); a route asks for it
with a parameter annotated ``StudioDep``, ``QueueDep``, ``RatingsDep`` or ``LimitsDep``. The getters take only the
request, so they add nothing to the OpenAPI schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from .ratings import RatingsDB
from .studio import InferenceQueue, Studio


@dataclass(frozen=True)
class Limits:
    """Input limits: bytes of one uploaded file, pixels (width*height) of one image or id map, megapixels one request
    may translate summed over its models."""

    max_bytes: int
    max_pixels: int
    max_mp_models: float = 16.0


def get_studio(request: Request) -> Studio:
    """The loaded models, the sample dataset and the pending ratings."""
    return request.app.state.studio


def get_queue(request: Request) -> InferenceQueue:
    """The bounded queue that runs translations one at a time."""
    return request.app.state.queue


def get_ratings(request: Request) -> RatingsDB:
    """The SQLite ratings store."""
    return request.app.state.ratings


def get_limits(request: Request) -> Limits:
    """The upload and image size limits."""
    return request.app.state.limits


StudioDep = Annotated[Studio, Depends(get_studio)]
QueueDep = Annotated[InferenceQueue, Depends(get_queue)]
RatingsDep = Annotated[RatingsDB, Depends(get_ratings)]
LimitsDep = Annotated[Limits, Depends(get_limits)]
