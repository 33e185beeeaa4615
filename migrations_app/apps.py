from django.apps import AppConfig


class MigrationsAppConfig(AppConfig):
    name = "migrations_app"
    verbose_name = "Migrations"

    def ready(self):
        from core.scheduler import register_periodic

        from migrations_app.audit import registry as audit  # noqa: F401  registers the models with django-auditlog
        from migrations_app.metrics import recording as metrics  # noqa: F401  records each task's end

        # The scheduler process runs these.

        # In this process, not a queue: when every worker is busy migrating, waiting tasks
        # must still get the slots that free up.
        register_periodic("migration housekeeping", "MIGRATION_HOUSEKEEPING_INTERVAL_SECONDS", "migrations_app.engine.jobs.housekeeping_job")
        # Retries, stops, or closes each host whose VMs are moving off it for maintenance.
        register_periodic("evacuations", "EVACUATION_INTERVAL_SECONDS", "migrations_app.automation.evacuation.advance_all")
        # Due schedules fire here, once however many schedulers run; windows close here.
        register_periodic("schedules", "SCHEDULE_INTERVAL_SECONDS", "migrations_app.automation.schedules.tick")
        # Clusters in automatic balancing; each policy says how often it acts.
        register_periodic("balancing", "BALANCING_INTERVAL_SECONDS", "migrations_app.automation.balancing.automatic_rounds")
        # Each cluster's recommendations, computed every RECOMMENDATION_INTERVAL (or when a page
        # asks) and stored for the cluster page, which never computes them.
        register_periodic("balancing recommendations", "RECOMMENDATION_TICK_SECONDS", "migrations_app.automation.recommendations.due_round")
        # Health rules mark failing hosts degraded; each cluster's policy says whether they are evacuated.
        register_periodic("host health", "HEALTH_INTERVAL_SECONDS", "migrations_app.automation.proactive.tick")
