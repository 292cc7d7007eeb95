from django.contrib import admin
from django.urls import include, path

from thuphi.config.api import api

urlpatterns = [
    path("api/v1/", api.urls),
    path("admin/", admin.site.urls),
    path("i18n/", include("django.conf.urls.i18n")),
    path("receipts/", include("thuphi.receipts.urls")),
    path("monitoring/", include("thuphi.monitoring.urls")),
    path("", include("thuphi.portal.urls")),
]
