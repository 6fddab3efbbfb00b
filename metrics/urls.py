from django.urls import path

from metrics import views

app_name = "metrics"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("sessions/<str:external_id>/", views.session_detail, name="session_detail"),
    path(
        "sessions/<str:external_id>/annotations/",
        views.add_annotation,
        name="add_annotation",
    ),
]
