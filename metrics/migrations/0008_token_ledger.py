"""The full token ledger: 1-hour cache writes and reasoning tokens, stream timings, and the
1-hour cache-write prices of the shipped Anthropic models."""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import migrations, models

VALID_FROM = datetime(2025, 1, 1, tzinfo=UTC)
SOURCE = (
    "https://docs.anthropic.com/en/docs/about-claude/pricing (1-hour cache write = 2x input), "
    "entered 2026-12-02"
)
# model, USD per million tokens written to the 1-hour cache
ONE_HOUR_WRITES = [
    ("claude-opus-4-1", "30.00"),
    ("claude-sonnet-4-5", "6.00"),
    ("claude-sonnet-4", "6.00"),
    ("claude-haiku-4-5", "2.00"),
    ("claude-3-5-haiku", "1.60"),
]


def seed_one_hour_prices(apps, schema_editor):
    ModelPrice = apps.get_model("metrics", "ModelPrice")
    for model, price in ONE_HOUR_WRITES:
        row = ModelPrice.objects.filter(
            provider="anthropic", model=model, valid_from=VALID_FROM,
            cache_write_1h_per_mtok__isnull=True,
        ).first()
        if row is not None:
            row.cache_write_1h_per_mtok = Decimal(price)
            row.source = f"{row.source}; {SOURCE}"[:500]
            row.save(update_fields=["cache_write_1h_per_mtok", "source"])


class Migration(migrations.Migration):
    dependencies = [("metrics", "0007_session_running_index")]

    operations = [
        migrations.AddField(
            model_name="apicall", name="cache_write_1h_tokens",
            field=models.PositiveBigIntegerField(
                default=0, help_text="The part of the cache writes that went to a 1-hour cache."
            ),
        ),
        migrations.AddField(
            model_name="apicall", name="reasoning_tokens",
            field=models.PositiveBigIntegerField(
                default=0, help_text="The part of the completion tokens spent on reasoning."
            ),
        ),
        migrations.AddField(
            model_name="apicall", name="streamed", field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="apicall", name="time_to_first_token_s",
            field=models.FloatField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="apicall", name="attempts",
            field=models.PositiveIntegerField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="modelprice", name="cache_write_per_mtok",
            field=models.DecimalField(
                blank=True, decimal_places=6, max_digits=12, null=True,
                help_text="Writes to the 5-minute cache; blank means the input price.",
            ),
        ),
        migrations.AddField(
            model_name="modelprice", name="cache_write_1h_per_mtok",
            field=models.DecimalField(
                blank=True, decimal_places=6, max_digits=12, null=True,
                help_text="Writes to the 1-hour cache; blank means the 5-minute write price.",
            ),
        ),
        migrations.RunPython(seed_one_hour_prices, migrations.RunPython.noop),
    ]
