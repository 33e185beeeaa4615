import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from inventory.enqueue import enqueue_sync_all
from migrations_app.jobs import housekeeping_job
from migrations_app.balance import automatic_rounds as balance_clusters
from migrations_app.evacuation import advance_all as advance_evacuations
from migrations_app.proactive import tick as judge_host_health
from migrations_app.schedules import tick as run_schedules
from core.scheduler import PeriodicTask, run_periodic


class Command(BaseCommand):
    help = "Periodic work: queue inventory syncs; finalise orphaned migrations and hand out free slots; move evacuations on; judge hosts' health."

    def handle(self, *args, **options):
        stop = threading.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        tasks = [
            PeriodicTask("inventory sync", settings.INVENTORY_SYNC_INTERVAL_SECONDS, enqueue_sync_all),
            # In this process, not a queue: when every worker is busy migrating, waiting tasks
            # must still get the slots that free up.
            PeriodicTask("migration housekeeping", settings.MIGRATION_HOUSEKEEPING_INTERVAL_SECONDS, housekeeping_job),
            # Retries, stops, or closes each host whose VMs are moving off it for maintenance.
            PeriodicTask("evacuations", settings.EVACUATION_INTERVAL_SECONDS, advance_evacuations),
            # Due schedules fire here, once however many schedulers run; windows close here.
            PeriodicTask("schedules", settings.SCHEDULE_INTERVAL_SECONDS, run_schedules),
            # Clusters in automatic balancing; each policy says how often it acts.
            PeriodicTask("balancing", settings.BALANCING_INTERVAL_SECONDS, balance_clusters),
            # Health rules mark failing hosts degraded; each cluster's policy says whether they are evacuated.
            PeriodicTask("host health", settings.HEALTH_INTERVAL_SECONDS, judge_host_health),
        ]
        self.stdout.write(f"scheduler: inventory sync every {settings.INVENTORY_SYNC_INTERVAL_SECONDS:g} s")
        # As between two requests: a connection the database dropped (a restart) is replaced
        # at the next tick instead of failing every tick after it.
        run_periodic(tasks, stop, before_each=close_old_connections)
