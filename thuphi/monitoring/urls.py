from django.urls import path

from thuphi.monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("export.xlsx", views.export_xlsx, name="export_xlsx"),
    path("export.pdf", views.export_pdf, name="export_pdf"),
    path("reports/", views.reports, name="reports"),
    path("reports/new", views.report_new, name="report_new"),
    path("reports/upload", views.report_upload, name="report_upload"),
    path("reports/template.<str:ext>", views.report_template, name="report_template"),
    path("reports/<int:report_id>/approve", views.report_approve, name="report_approve"),
    path("reports/<int:report_id>/return", views.report_return, name="report_return"),
]
