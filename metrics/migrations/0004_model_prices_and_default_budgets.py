"""Seed the price table with list prices of widely used models, and default budgets.

Prices are USD per million tokens, standard (non-batch) tier, as published on each
provider's pricing page; every row names its page and the date it was entered. Edit them
in the admin: a new row with a later valid-from reprices the calls it covers.
"""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import migrations

VALID_FROM = datetime(2025, 1, 1, tzinfo=UTC)
ENTERED = "entered 2026-11-26"
OPENAI = f"https://openai.com/api/pricing/ (standard tier), {ENTERED}"
ANTHROPIC = (
    f"https://www.anthropic.com/pricing#api (cache write = 5-minute cache), {ENTERED}"
)
GOOGLE = f"https://ai.google.dev/gemini-api/docs/pricing (paid tier, <=200k prompt), {ENTERED}"

# provider, model, input, output, cached input, cache write, source
PRICES = [
    ("openai", "gpt-5", "1.25", "10.00", "0.125", None, OPENAI),
    ("openai", "gpt-5-mini", "0.25", "2.00", "0.025", None, OPENAI),
    ("openai", "gpt-5-nano", "0.05", "0.40", "0.005", None, OPENAI),
    ("openai", "gpt-4.1", "2.00", "8.00", "0.50", None, OPENAI),
    ("openai", "gpt-4.1-mini", "0.40", "1.60", "0.10", None, OPENAI),
    ("openai", "gpt-4.1-nano", "0.10", "0.40", "0.025", None, OPENAI),
    ("openai", "gpt-4o", "2.50", "10.00", "1.25", None, OPENAI),
    ("openai", "gpt-4o-mini", "0.15", "0.60", "0.075", None, OPENAI),
    ("openai", "o3", "2.00", "8.00", "0.50", None, OPENAI),
    ("openai", "o4-mini", "1.10", "4.40", "0.275", None, OPENAI),
    ("openai", "text-embedding-3-small", "0.02", "0", None, None, OPENAI),
    ("openai", "text-embedding-3-large", "0.13", "0", None, None, OPENAI),
    ("anthropic", "claude-opus-4-1", "15.00", "75.00", "1.50", "18.75", ANTHROPIC),
    ("anthropic", "claude-sonnet-4-5", "3.00", "15.00", "0.30", "3.75", ANTHROPIC),
    ("anthropic", "claude-sonnet-4", "3.00", "15.00", "0.30", "3.75", ANTHROPIC),
    ("anthropic", "claude-haiku-4-5", "1.00", "5.00", "0.10", "1.25", ANTHROPIC),
    ("anthropic", "claude-3-5-haiku", "0.80", "4.00", "0.08", "1.00", ANTHROPIC),
    ("google", "gemini-2.5-pro", "1.25", "10.00", "0.31", None, GOOGLE),
    ("google", "gemini-2.5-flash", "0.30", "2.50", "0.075", None, GOOGLE),
    ("google", "gemini-2.0-flash", "0.10", "0.40", "0.025", None, GOOGLE),
]

# name, metric, threshold, reruns only
BUDGETS = [
    ("Full episode in under 5 minutes", "duration_s", 300.0, False),
    ("Cache hit rate over 60% on a re-run", "cache_hit_rate", 0.6, True),
    ("API error rate under 5%", "api_error_rate", 0.05, False),
]


def _decimal(value):
    return Decimal(value) if value is not None else None


def seed(apps, schema_editor):
    ModelPrice = apps.get_model("metrics", "ModelPrice")
    for provider, model, inp, out, cached, write, source in PRICES:
        ModelPrice.objects.get_or_create(
            provider=provider,
            model=model,
            valid_from=VALID_FROM,
            defaults={
                "input_per_mtok": Decimal(inp),
                "output_per_mtok": Decimal(out),
                "cached_input_per_mtok": _decimal(cached),
                "cache_write_per_mtok": _decimal(write),
                "source": source,
            },
        )
    Project = apps.get_model("metrics", "Project")
    Budget = apps.get_model("metrics", "Budget")
    for project in Project.objects.filter(slug="default"):
        for name, metric, threshold, reruns_only in BUDGETS:
            Budget.objects.get_or_create(
                project=project, name=name,
                defaults={"metric": metric, "threshold": threshold, "reruns_only": reruns_only},
            )


class Migration(migrations.Migration):
    dependencies = [("metrics", "0003_analytics")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
