"""The web page at ``/`` and the API docs at ``/docs``, both from files the service ships
(Swagger UI's from upvote/swagger/, not a CDN)."""

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
