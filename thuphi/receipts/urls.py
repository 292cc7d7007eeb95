"""Mounted by the root URLconf as path("receipts/", include("thuphi.receipts.urls"))."""
from django.urls import path

from thuphi.receipts import views

app_name = "receipts"

urlpatterns = [
    path("verify/<str:code>", views.verify, name="verify"),
    path("verify/<str:code>/pdf", views.verify_pdf, name="verify_pdf"),
    path("verify/<str:code>/xml", views.verify_xml, name="verify_xml"),
]
