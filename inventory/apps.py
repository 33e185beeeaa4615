from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "inventory"
    verbose_name = "Inventory"

    def ready(self):
        from core.scheduler import register_periodic

        from . import audit  # noqa: F401  registers the models with django-auditlog

        register_periodic("inventory sync", "INVENTORY_SYNC_INTERVAL_SECONDS", "inventory.enqueue.enqueue_sync_all")
