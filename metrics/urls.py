from django.urls import path

from metrics.dashboard import views

app_name = "metrics"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("episodes/", views.episodes, name="episodes"),
    # before the episode page: an episode coded "compare" is shadowed, a known limitation
    path("episodes/compare/", views.compare, name="compare"),
    path("episodes/<str:code>/", views.episode_detail, name="episode_detail"),
    path("sessions/", views.sessions, name="sessions"),
    # before the session page: a session named "compare" is shadowed, as for episodes
    path("sessions/compare/", views.compare_sessions, name="compare_sessions"),
    path("sessions/<str:external_id>/", views.session_detail, name="session_detail"),
    path("sessions/<str:external_id>/summary.txt", views.session_summary_text,
         name="session_summary"),
    path(
        "sessions/<str:external_id>/annotations/",
        views.add_annotation,
        name="add_annotation",
    ),
    path("sessions/<str:external_id>/progress/", views.session_progress,
         name="session_progress"),
    path("sessions/<str:external_id>/operations/", views.operation_group,
         name="operation_group"),
    path("running/", views.running_fragment, name="running"),
    path("sessions/<str:external_id>/accept/", views.accept_take, name="accept_take"),
    path("operations/", views.operations, name="operations"),
    path("costs/", views.costs, name="costs"),
    path("settings/", views.preferences, name="preferences"),
    path("assets/plotly.min.js", views.plotly_js, name="plotly_js"),
]
