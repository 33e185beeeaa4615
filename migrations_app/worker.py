"""Where deployments name the worker class from before the engine moved into
`migrations_app.engine` (`rqworker --worker-class migrations_app.worker.VmotionWorker`): an
upgrade must not break a worker's command line."""

from migrations_app.engine.worker import VmotionWorker

__all__ = ["VmotionWorker"]
