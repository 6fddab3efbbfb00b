"""Forms behind the admin: what editors may type, checked before it reaches the tables."""

from decimal import Decimal

from django import forms
from django.core.validators import RegexValidator

from metrics.models import Annotation, Budget, Episode, ModelPrice, Session

# The wire format's rules (ingest.schemas), so that whatever an editor sets still exports
# as a payload the ingest API takes back.
EPISODE_CODE = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$",
    "Letters, digits and . _ : - only, starting with a letter or digit.",
)
MAX_TAGS = 50
MAX_TAG_CHARS = 200
PRICE_FIELDS = (
    "input_per_mtok", "output_per_mtok", "cached_input_per_mtok", "cache_write_per_mtok",
    "cache_write_1h_per_mtok",
)
RATE_METRICS = {Budget.Metric.CACHE_HIT_RATE, Budget.Metric.API_ERROR_RATE}


class TagsField(forms.CharField):
    """A JSON list of tags edited as one comma-separated line."""

    def prepare_value(self, value):
        if isinstance(value, list):
            return ", ".join(value)
        return value

    def to_python(self, value) -> list[str]:
        text = super().to_python(value)
        tags = list(dict.fromkeys(tag.strip() for tag in text.split(",") if tag.strip()))
        if len(tags) > MAX_TAGS:
            raise forms.ValidationError(f"At most {MAX_TAGS} tags.")
        if any(len(tag) > MAX_TAG_CHARS for tag in tags):
            raise forms.ValidationError(f"A tag has at most {MAX_TAG_CHARS} characters.")
        return tags


class SessionAdminForm(forms.ModelForm):
    tags = TagsField(label="Tags", required=False, help_text="Comma-separated.")

    class Meta:
        model = Session
        fields = ["episode", "tags", "notes", "is_baseline", "is_pinned"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "episode" in self.fields and self.instance.project_id:
            # Only the session's own project's episodes: codes repeat across projects.
            self.fields["episode"].queryset = Episode.objects.filter(
                project_id=self.instance.project_id
            )
            self.fields["episode"].help_text = (
                "Changing it re-runs the analysis, so the episode rollups follow."
            )


class AnnotationAdminForm(forms.ModelForm):
    """The same limit as the dashboard's annotation form."""

    text = forms.CharField(
        max_length=Annotation.MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 3, "maxlength": Annotation.MAX_CHARS}),
    )

    class Meta:
        model = Annotation
        fields = ["session", "text"]


class MoveToEpisodeForm(forms.Form):
    episode = forms.ModelChoiceField(queryset=Episode.objects.none(), required=False)
    new_code = forms.CharField(
        label="or a new episode code", required=False, max_length=128,
        validators=[EPISODE_CODE],
    )

    def __init__(self, *args, project_id: int, may_add_episode: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.project_id = project_id
        self.fields["episode"].queryset = Episode.objects.filter(project_id=project_id)
        if not may_add_episode:
            del self.fields["new_code"]

    def clean(self):
        cleaned = super().clean()
        episode, new_code = cleaned.get("episode"), cleaned.get("new_code")
        if bool(episode) == bool(new_code):
            raise forms.ValidationError("Choose an episode, or type a new code (not both).")
        return cleaned

    def target(self) -> tuple[Episode, bool]:
        """The chosen episode, created if a new code was typed; and whether it was."""
        if self.cleaned_data["episode"]:
            return self.cleaned_data["episode"], False
        return Episode.objects.get_or_create(
            project_id=self.project_id, code=self.cleaned_data["new_code"]
        )


class ModelPriceForm(forms.ModelForm):
    """Prices are never negative, cite their source, and keep each model's history in order.

    The ordering rule: a price row is in force from its valid-from until the next row of the
    same provider and model. A new row may go anywhere in that history (a late correction
    is normal) but not on an existing row's valid-from. Editing a row may move its
    valid-from only between its neighbours: moving it past another row would silently
    swap which price is in force for the calls in between; add a row instead.
    """

    class Meta:
        model = ModelPrice
        fields = [
            "provider", "model", "input_per_mtok", "output_per_mtok", "cached_input_per_mtok",
            "cache_write_per_mtok", "cache_write_1h_per_mtok", "valid_from", "source",
        ]

    def clean_source(self) -> str:
        source = self.cleaned_data["source"].strip()
        if not source:
            raise forms.ValidationError("Cite where the price was read, and when.")
        return source

    def clean(self):
        cleaned = super().clean()
        for name in PRICE_FIELDS:
            value = cleaned.get(name)
            if value is not None and value < Decimal(0):
                self.add_error(name, "A price cannot be negative.")
        provider = cleaned.get("provider", self.instance.provider)
        model = cleaned.get("model", self.instance.model)
        valid_from = cleaned.get("valid_from")
        if provider and model and valid_from:
            self._check_history(provider, model, valid_from)
        return cleaned

    def _check_history(self, provider: str, model: str, valid_from) -> None:
        history = ModelPrice.objects.filter(provider=provider, model=model)
        if self.instance.pk:
            history = history.exclude(pk=self.instance.pk)
        if history.filter(valid_from=valid_from).exists():
            self.add_error("valid_from", "This model already has a price from that moment.")
            return
        if not self.instance.pk or "valid_from" not in self.changed_data:
            return
        old = self.instance.valid_from  # clean() runs before the form updates the instance
        previous = history.filter(valid_from__lt=old).order_by("-valid_from").first()
        following = history.filter(valid_from__gt=old).order_by("valid_from").first()
        if (previous and valid_from <= previous.valid_from) or (
            following and valid_from >= following.valid_from
        ):
            self.add_error(
                "valid_from",
                "Keep the row between the model's previous and next prices "
                f"({_moment(previous)} and {_moment(following)}); add a new row instead.",
            )


def _moment(price: ModelPrice | None) -> str:
    return f"{price.valid_from:%Y-%m-%d %H:%M}" if price else "none"


class BudgetForm(forms.ModelForm):
    class Meta:
        model = Budget
        fields = ["project", "name", "workflow", "metric", "threshold", "reruns_only", "active"]

    def clean(self):
        cleaned = super().clean()
        metric, threshold = cleaned.get("metric"), cleaned.get("threshold")
        if threshold is None or metric is None:
            return cleaned
        if threshold < 0:
            self.add_error("threshold", "A threshold cannot be negative.")
        elif metric in RATE_METRICS and threshold > 1:
            self.add_error("threshold", "A rate is between 0 and 1 (0.8 means 80%).")
        return cleaned
