from django.urls import path

from metrics import views

app_name = "metrics"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("sessions/<str:external_id>/", views.session_detail, name="session_detail"),
]
