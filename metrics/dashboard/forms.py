from django import forms

from metrics.dashboard.timezones import zone_names
from metrics.models import Annotation


class AnnotationForm(forms.Form):
    text = forms.CharField(
        max_length=Annotation.MAX_CHARS,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": Annotation.MAX_CHARS}),
    )


class TimeZoneForm(forms.Form):
    time_zone = forms.ChoiceField(
        label="Show times in", required=False,
        choices=lambda: [("", "the site's time zone")] + [(n, n) for n in zone_names()],
    )
