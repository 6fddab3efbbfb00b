"""A new or edited model price reprices the calls it now covers."""

from django.db.models.signals import post_save
from django.dispatch import receiver

from metrics.dispatch import enqueue_after_commit
from metrics.models import ModelPrice
from metrics.tasks import reprice_model


@receiver(post_save, sender=ModelPrice, dispatch_uid="reprice-on-price-change")
def reprice_on_price_change(sender, instance: ModelPrice, raw: bool = False, **kwargs) -> None:
    if raw:  # loading fixtures
        return
    enqueue_after_commit(
        reprice_model, instance.provider, instance.model, instance.valid_from.isoformat()
    )
