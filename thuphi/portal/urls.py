from django.urls import path

from thuphi.portal import ops_views, staff_views, views

app_name = "portal"

urlpatterns = [
    path("", views.home, name="home"),
    path("pay/<str:reference>", views.pay, name="pay"),
    path("pay/<str:reference>/qr.svg", views.qr_svg, name="qr_svg"),
    path("pay/<str:reference>/qr.png", views.qr_png, name="qr_png"),
    path("lookup", views.lookup, name="lookup"),
    path("staff/login/", staff_views.StaffLoginView.as_view(), name="login"),
    path("staff/logout/", staff_views.logout_view, name="logout"),
    path("staff/", staff_views.dashboard, name="staff_home"),
    path("staff/bills/new", staff_views.bill_new, name="bill_new"),
    path("staff/bills/<str:reference>", staff_views.bill_detail, name="bill_detail"),
    path("staff/review/", ops_views.review_queue, name="review"),
    path("staff/review/<int:credit_id>/match", ops_views.review_match, name="review_match"),
    path("staff/review/<int:credit_id>/return", ops_views.review_return, name="review_return"),
    path("staff/shift/", ops_views.shift_page, name="shift"),
    path("staff/refunds/", ops_views.refunds_page, name="refunds"),
    path("staff/refunds/<int:refund_id>", ops_views.refund_action, name="refund_action"),
    path("staff/refunds/order/<str:code>", ops_views.payment_order_download, name="payment_order"),
    path("staff/reports/", ops_views.reports_page, name="reports"),
]
