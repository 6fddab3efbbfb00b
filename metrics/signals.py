"""A price row added, edited or deleted is recorded and reprices the calls it covers.

Receivers on the model, not admin hooks, so a change made anywhere (the admin, a
shell, a script) is recorded and repriced the same way. (Migrations seed prices through
historical models, which send no signal to these receivers.)
"""

from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from metrics.analysis import repricing
from metrics.dispatch import enqueue_after_commit
from metrics.models import ModelPrice, PriceChange
from metrics.tasks import reprice_model


@receiver(pre_save, sender=ModelPrice, dispatch_uid="price-before-change")
def remember_price_before_change(sender, instance: ModelPrice, raw: bool = False,
                                 **kwargs) -> None:
    stored = None if raw or instance.pk is None else (
        ModelPrice.objects.filter(pk=instance.pk).first())
    instance._perfmon_before = repricing.price_snapshot(stored) if stored else None


@receiver(post_save, sender=ModelPrice, dispatch_uid="reprice-on-price-change")
def reprice_on_price_change(sender, instance: ModelPrice, created: bool = False,
                            raw: bool = False, **kwargs) -> None:
    if raw:  # loading fixtures
        return
    before = getattr(instance, "_perfmon_before", None)
    kind = PriceChange.Kind.CHANGED if before and not created else PriceChange.Kind.ADDED
    _reprice(repricing.record_change(kind, instance, before=before))


@receiver(post_delete, sender=ModelPrice, dispatch_uid="reprice-on-price-delete")
def reprice_on_price_delete(sender, instance: ModelPrice, **kwargs) -> None:
    before = repricing.price_snapshot(instance)
    _reprice(repricing.record_change(PriceChange.Kind.DELETED, instance, before=before))


def _reprice(change: PriceChange | None) -> None:
    if change is not None:
        enqueue_after_commit(reprice_model, change.pk)
