import signal
import threading

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from core.scheduler import periodic_tasks, run_periodic


class Command(BaseCommand):
    help = "Periodic work: runs each task the apps registered (core.scheduler.register_periodic) at its interval."

    def handle(self, *args, **options):
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        tasks = periodic_tasks()
        for task in tasks:
            self.stdout.write(f"scheduler: {task.name} every {task.interval_seconds:g} s")
        # As between two requests: a connection the database dropped (a restart) is replaced
        # at the next tick instead of failing every tick after it.
        run_periodic(tasks, stop, before_each=close_old_connections)
