"""The jobs page at ``/`` (submit, watch, download) and the API docs at ``/docs``, from files
the package ships: no CDN, no build step. The page holds no secret: the caller's token stays in
the browser and goes with each API call."""

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse

from upvote import swagger

STATIC = Path(__file__).parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    return swagger.page(request)
