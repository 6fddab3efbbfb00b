from django import forms

MAX_ANNOTATION_CHARS = 5000


class AnnotationForm(forms.Form):
    text = forms.CharField(
        max_length=MAX_ANNOTATION_CHARS,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": MAX_ANNOTATION_CHARS}),
    )
