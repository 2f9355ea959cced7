"""The studio API's request and response bodies (pydantic); their names and fields are the OpenAPI schema.

Only ``IdArray`` has a docstring: a class docstring becomes the schema's description, so the others keep none.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Fit = Literal["model", "full", "tile"]


class IdArray(BaseModel):
    """A map of integer ids: base64 of ``width*height`` little-endian values, row by row."""

    width: int = Field(ge=1, le=65535)
    height: int = Field(ge=1, le=65535)
    dtype: Literal["u8", "u16", "i32"] = "u8"
    data: str


class StyleCaps(BaseModel):
    kind: Literal["none", "clusters", "features", "seed"]
    clusters: dict[str, int]
    seed: bool
    reference: bool


class ModelInfo(BaseModel):
    id: str
    name: str
    family: str
    checkpoint: str
    step: int
    kind: Literal["label", "image"]
    label_nc: int
    class_names: list[str]
    palette: list[list[int]]
    things: list[int]
    contain_dontcare: bool
    no_instance: bool
    input_nc: int
    width: int
    height: int
    size_multiple: int
    preprocess: str
    params: int
    metrics: dict[str, float | int | None]
    style: StyleCaps
    label_set: str


class Output(BaseModel):
    model: str
    ok: bool
    image: str | None = Field(None, description="PNG data URL")
    width: int = 0
    height: int = 0
    style: dict[str, Any] | None = Field(None, description="the style used; send it back to reproduce the output")
    seconds: float = 0.0
    psnr: float | None = None
    ssim: float | None = None
    vif: float | None = Field(None, description="pixel-domain VIF (NaN-free; None below 41 px)")
    error: str | None = None


class TranslateRequest(BaseModel):
    label: IdArray
    inst: IdArray | None = Field(None, description="instance ids (class*1000+k for things), same size as label")
    models: list[str] = Field(default_factory=list, description="model ids; empty = every model")
    styles: dict[str, dict[str, Any]] = Field(default_factory=dict, description="model id -> style")
    fit: Fit = Field("full", description="model: resize to the model's size; full: as given; tile: tiled")


class TranslateResponse(BaseModel):
    kind: Literal["label", "image"]
    width: int
    height: int
    input: str | None = Field(None, description="the input as a PNG data URL (label maps in palette colours)")
    label: IdArray | None = None
    inst: IdArray | None = None
    outputs: list[Output]
    seconds: float = 0.0


class DatasetInfo(BaseModel):
    available: bool
    count: int
    kind: str | None
    label_nc: int
    has_target: bool
    names: list[str]
    compatible: list[str] = Field(default_factory=list)


class Sample(BaseModel):
    index: int
    name: str
    count: int
    model: str = Field(description="the model whose resolution the sample is shown at")
    kind: Literal["label", "image"]
    width: int
    height: int
    input: str
    target: str | None
    label: IdArray | None = None
    inst: IdArray | None = None


class SampleRequest(BaseModel):
    models: list[str] = Field(default_factory=list)
    styles: dict[str, dict[str, Any]] = Field(default_factory=dict)


class SampleTranslation(Sample):
    outputs: list[Output]
    seconds: float


class Reference(BaseModel):
    reference: str = Field(description="use as style {'reference': this}")
    width: int
    height: int
    preview: str


class RateStart(BaseModel):
    model: str | None = Field(None, description="model id; default: the one with the fewest ratings")


class RateItem(BaseModel):
    token: str
    model: str
    model_name: str
    index: int
    name: str
    input: str
    output: str
    width: int
    height: int


class Score(BaseModel):
    score: int = Field(ge=0, le=10)


class Reveal(BaseModel):
    target: str | None
    psnr: float | None
    ssim: float | None
    style: dict[str, Any] | None


class SummaryRow(BaseModel):
    model: str
    checkpoint: str
    family: str
    n: int
    translation_mean: float
    translation_std: float
    difference_mean: float
    difference_std: float


class Stored(BaseModel):
    id: int
    summary: list[SummaryRow]


class Health(BaseModel):
    status: Literal["ok"]
    models: int
    samples: int
    pending: int
    max_pending: int
    threads: int


class WebModel(BaseModel):
    """A model's in-page (ONNX Runtime Web) availability: the export sidecar (input recipe, palette, sizes) and the
    graph's URL, or why the model runs on the server only."""

    model: str
    available: bool
    why: str = ""
    runtime: str | None = Field(None, description="installed onnxruntime-web version (None: not installed)")
    backends: list[str] = Field(
        default_factory=list, description="in-page backends the installed runtime allows, preferred first: webgpu, wasm"
    )
    url: str | None = None
    sidecar: dict[str, Any] | None = None


class ErrorItem(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ErrorBody(BaseModel):
    """Every error: a one-line ``detail`` saying what to do; request validation (422) adds the failing ``errors``."""

    detail: str
    errors: list[ErrorItem] | None = None


ERROR_STATUSES = {
    400: "bad request: an unreadable or empty file, or a Host header not in the allow-list (--allow-host)",
    403: "a state-changing request without `Content-Type: application/json` or an `X-Pixtrans: 1` header",
    404: "no such sample, rating token or file, or no --data",
    409: "the rating steps are out of order",
    413: "the body, image or requested compute is over the server's limits",
    415: "not an accepted image format",
    422: "invalid input; `detail` names the field and the problem",
    429: "the inference queue is full; retry after Retry-After seconds",
    500: "an unexpected server error (details in the server log)",
    503: "the server ran out of memory for this request (it keeps serving); retry smaller, tiled or later",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: each status documented with :class:`ErrorBody`."""
    return {s: {"model": ErrorBody, "description": ERROR_STATUSES[s]} for s in statuses}
