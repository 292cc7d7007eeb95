"""Test URLconf: the project's URLs plus the receipts pages and API.

The root URLconf and API mount them only once the lead wires them; until then (and after, harmlessly)
the tests use this. The test API copies the root API's error handlers so errors have the same shape.
"""
from django.urls import include, path
from ninja import NinjaAPI

from thuphi.config.api import api as root_api
from thuphi.config.urls import urlpatterns as root_patterns
from thuphi.core.api_auth import BearerToken
from thuphi.receipts.api import router

api = NinjaAPI(auth=BearerToken(), urls_namespace="receipts-test-api")
for exc_class, handler in root_api._exception_handlers.items():
    api.add_exception_handler(exc_class, handler)
api.add_router("/receipts", router)

_mounted = any(getattr(p, "namespace", None) == "receipts" for p in root_patterns)

urlpatterns = [
    # Tried first; any other /api/v1/ path falls through to the root API below.
    path("api/v1/", api.urls),
    *([] if _mounted else [path("receipts/", include("thuphi.receipts.urls"))]),
    *root_patterns,
]
