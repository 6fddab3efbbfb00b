from django import forms

from metrics.models import Annotation


class AnnotationForm(forms.Form):
    text = forms.CharField(
        max_length=Annotation.MAX_CHARS,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": Annotation.MAX_CHARS}),
    )
