import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from inventory.jobs import enqueue_sync_all
from vmotion.scheduler import PeriodicTask, run_periodic


class Command(BaseCommand):
    help = "Queue periodic work (inventory sync of every host) for the RQ workers."

    def handle(self, *args, **options):
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        tasks = [PeriodicTask("inventory sync", settings.INVENTORY_SYNC_INTERVAL_SECONDS, enqueue_sync_all)]
        self.stdout.write(f"scheduler: inventory sync every {settings.INVENTORY_SYNC_INTERVAL_SECONDS:g} s")
        run_periodic(tasks, stop)
