"""Swagger UI for the API docs at ``/docs`` of both HTTP services, served from the files in this
folder (see its README) instead of a CDN, so the docs work offline, as in FastAPI's
"Self-hosting JavaScript and CSS for docs" recipe."""

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).parent
PREFIX = "/static/docs"


def mount(app: FastAPI) -> None:
    """Serve the Swagger UI files under PREFIX (before any mount of ``/static``)."""
    app.mount(PREFIX, StaticFiles(directory=ASSETS), name="swagger")


def page(request: Request) -> HTMLResponse:
    """The docs page of the request's app, behind any proxy prefix (root_path)."""
    root = request.scope.get("root_path", "").rstrip("/")
    return get_swagger_ui_html(
        openapi_url=root + request.app.openapi_url,
        title=f"{request.app.title} - API docs",
        swagger_js_url=f"{root}{PREFIX}/swagger-ui-bundle.js",
        swagger_css_url=f"{root}{PREFIX}/swagger-ui.css",
        swagger_favicon_url=f"{root}{PREFIX}/favicon-32x32.png",
    )
