"""The web page at ``/`` and the API docs at ``/docs``, both from files the service ships.

Swagger UI's script and style are served from ``static/docs/`` (see its README), not a CDN,
so the docs work offline, as in FastAPI's "Self-hosting JavaScript and CSS for docs" recipe.
"""

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

STATIC = Path(__file__).parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def page() -> FileResponse:
    return FileResponse(STATIC / "index.html")


@router.get("/docs")
async def docs(request: Request) -> HTMLResponse:
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=root + request.app.openapi_url,
        title=f"{request.app.title} - API docs",
        swagger_js_url=f"{root}/static/docs/swagger-ui-bundle.js",
        swagger_css_url=f"{root}/static/docs/swagger-ui.css",
        swagger_favicon_url=f"{root}/static/docs/favicon-32x32.png",
    )
