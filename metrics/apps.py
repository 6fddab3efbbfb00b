from django.apps import AppConfig


class MetricsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "metrics"
    verbose_name = "Performance metrics"

    def ready(self) -> None:
        from metrics import signals  # noqa: F401  (connects the receivers)
        from metrics.dashboard import timezones  # noqa: F401  (the login receiver)
