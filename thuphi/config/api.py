"""The JSON API root: /api/v1/. Every error leaves as {"code": ..., "message": ..., "details": ...}."""
from __future__ import annotations

from django.http import Http404
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError

from thuphi.billing.api import router as billing_router
from thuphi.core.api_auth import BearerToken
from thuphi.core.errors import ThuphiError
from thuphi.monitoring.api import router as monitoring_router
from thuphi.payments.api import router as payments_router
from thuphi.payments.api import webhooks as webhooks_router
from thuphi.payments.api_ops import router as operations_router
from thuphi.receipts.api import router as receipts_router
from thuphi.registry.api import router as registry_router

api = NinjaAPI(
    title="thuphi API",
    version="1",
    description=(
        "Thu phí không dùng tiền mặt cho trường học và cơ sở y tế. "
        "Authenticate with `Authorization: Bearer <token>` (create one with `thuphi token create USERNAME`). "
        "Errors are JSON objects with a stable `code` and a human `message`."
    ),
    auth=BearerToken(),
    urls_namespace="api-v1",
)


def _error(request, status: int, code: str, message: str, details=None):
    body = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return api.create_response(request, body, status=status)


@api.exception_handler(ThuphiError)
def on_domain_error(request, exc: ThuphiError):
    return _error(request, exc.status, exc.code, exc.message, exc.details)


@api.exception_handler(NinjaValidationError)
def on_validation_error(request, exc: NinjaValidationError):
    details = [
        {"field": ".".join(str(p) for p in e.get("loc", []) if p not in ("body", "payload")),
         "message": e.get("msg", "")}
        for e in exc.errors
    ]
    return _error(request, 422, "validation_error", _("Dữ liệu gửi lên không hợp lệ."), details)


@api.exception_handler(AuthenticationError)
def on_auth_error(request, exc):
    return _error(request, 401, "unauthorized", _("Thiếu hoặc sai API token (Authorization: Bearer …)."))


@api.exception_handler(Http404)
def on_404(request, exc):
    return _error(request, 404, "not_found", _("Không tìm thấy."))


@api.exception_handler(HttpError)
def on_http_error(request, exc: HttpError):
    return _error(request, exc.status_code, "http_error", str(exc))


api.add_router("/institutions", registry_router)
api.add_router("/bills", billing_router)
api.add_router("", payments_router)
api.add_router("/webhooks", webhooks_router)
api.add_router("", operations_router)
api.add_router("", monitoring_router)
api.add_router("/receipts", receipts_router)
