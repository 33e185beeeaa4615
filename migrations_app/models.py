import dataclasses
from functools import partial

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone

from hypervisor.job import JobSample
from inventory.models import Cluster, Host, VirtualMachine

from migrations_app.choices import (
    ACTIVE_STATES, AutomationLevel, ALLOWED_TRANSITIONS, FINAL_STATES, EndReason, EvacuationState, EventKind, Priority, ProactiveLevel,
    RecurrenceKind, RuleKind, RuleStrength, ScheduleAction, ScheduleRunState, TaskKind, TaskState,
)
from migrations_app.automation.health_rules import HealthThresholds
from migrations_app.options import DEFAULT_MAX_DOWNTIME_MS, MigrationOptions
from migrations_app.convergence.policy import ConvergenceInputs
from migrations_app.convergence.progress import SampleFigures
from migrations_app.automation.recurrence import Recurrence
from migrations_app.signals import task_ended


class InvalidTransition(Exception):
    pass


class MigrationLimits(models.Model):
    """How many migrations may run at once: per host each way, and in all. One row."""

    max_outgoing_per_host = models.PositiveSmallIntegerField(default=2)
    max_incoming_per_host = models.PositiveSmallIntegerField(default=2)
    max_concurrent = models.PositiveSmallIntegerField("max concurrent in all", default=8)

    class Meta:
        verbose_name = "migration limits"
        verbose_name_plural = "migration limits"

    def __str__(self) -> str:
        return f"{self.max_outgoing_per_host} out / {self.max_incoming_per_host} in per host, {self.max_concurrent} in all"

    @classmethod
    def current(cls) -> "MigrationLimits":
        limits, _ = cls.objects.get_or_create(pk=1)
        return limits


class MigrationBatch(models.Model):
    """Migrations an operator submitted together; its page follows every one of them."""

    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "migration batches"

    def __str__(self) -> str:
        return f"Batch #{self.pk}"

    def get_absolute_url(self) -> str:
        return reverse("batch-detail", args=[self.pk])


class Evacuation(models.Model):
    """A host entering maintenance: its running VMs moved off it as one batch."""

    host = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="evacuations")
    batch = models.OneToOneField(MigrationBatch, on_delete=models.PROTECT, related_name="evacuation")
    state = models.CharField(max_length=16, choices=EvacuationState.choices, default=EvacuationState.RUNNING)
    message = models.TextField(blank=True, help_text="Where it stands, for an operator")
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    predicted_total_ms = models.PositiveIntegerField(null=True, blank=True, help_text="The plan's forecast for every move under the limits")
    # The migration options it was entered with (MigrationOptions' fields): every move of it,
    # retries included, is submitted with them, even when no move could be created at entry.
    options = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["host"], condition=Q(state="running"), name="one_running_evacuation_per_host"),
        ]

    def __str__(self) -> str:
        return f"Evacuation #{self.pk} of {self.host}"

    def get_absolute_url(self) -> str:
        return reverse("evacuation-detail", args=[self.pk])


class MigrationTask(models.Model):
    vm = models.ForeignKey(VirtualMachine, on_delete=models.PROTECT, related_name="migration_tasks")
    source = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="outgoing_tasks")
    destination = models.ForeignKey(Host, on_delete=models.PROTECT, related_name="incoming_tasks")
    kind = models.CharField(max_length=16, choices=TaskKind.choices, default=TaskKind.COMPUTE)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    reason = models.CharField(max_length=500, blank=True)
    batch = models.ForeignKey(MigrationBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="tasks")

    # What the operator asked for.
    max_downtime_ms = models.PositiveIntegerField("max downtime (ms)", default=DEFAULT_MAX_DOWNTIME_MS, help_text="The longest final pause the operator accepts")
    bandwidth_mib_s = models.PositiveIntegerField("bandwidth (MiB/s)", null=True, blank=True, help_text="Empty means uncapped")
    allow_post_copy = models.BooleanField(default=False)
    allow_auto_converge = models.BooleanField(default=True)
    # Whether the migration was started with its memory stream over TLS; None until it starts.
    encrypted = models.BooleanField(null=True, blank=True)

    state = models.CharField(max_length=16, choices=TaskState.choices, default=TaskState.QUEUED)
    # Set under the limits lock when the task may use a slot on its hosts; freed by a final state.
    slot_granted_at = models.DateTimeField(null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    force_complete_requested = models.BooleanField(default=False)

    created_at = models.DateTimeField(default=timezone.now)
    started_at = models.DateTimeField(null=True, blank=True, help_text="When memory started to move")
    finished_at = models.DateTimeField(null=True, blank=True)
    # The worker that claimed it ("host:pid"), empty while no worker holds it. The worker
    # writes the heartbeat as it goes; recovery looks for stale ones and for lost workers.
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    worker = models.CharField(max_length=200, blank=True)

    # Prediction made before starting.
    measured_dirty_rate_bytes_s = models.BigIntegerField(null=True, blank=True)
    # QEMU's resident set then: with what the first pass sent, what QEMU holds of its own
    resident_bytes = models.BigIntegerField(null=True, blank=True)
    predicted_total_ms = models.PositiveIntegerField(null=True, blank=True)
    predicted_downtime_ms = models.PositiveIntegerField(null=True, blank=True)
    prediction = models.TextField(blank=True)

    # Results from libvirt's completed job.
    total_ms = models.PositiveIntegerField(null=True, blank=True)
    downtime_ms = models.PositiveIntegerField(null=True, blank=True)
    bytes_transferred = models.BigIntegerField(null=True, blank=True)
    iterations = models.PositiveIntegerField(null=True, blank=True)
    final_dirty_rate_bytes_s = models.BigIntegerField(null=True, blank=True)
    mean_throughput_bytes_s = models.BigIntegerField(null=True, blank=True)

    error = models.TextField(blank=True, help_text="What went wrong, for an operator")
    error_detail = models.TextField(blank=True, help_text="libvirt's own words")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["vm"], condition=Q(state__in=ACTIVE_STATES), name="one_active_task_per_vm"),
            # A storage-only move stays on its host; every other move leaves it.
            models.CheckConstraint(
                condition=Q(kind=TaskKind.STORAGE, source=models.F("destination")) | (~Q(kind=TaskKind.STORAGE) & ~Q(source=models.F("destination"))),
                name="moves_between_hosts_unless_storage_only",
            ),
        ]
        indexes = [
            models.Index(fields=["state", "priority", "created_at"]),
            # The task history lists newest first over every task ever run...
            models.Index(fields=["-created_at", "-id"], name="task_newest_first"),
            # ...or those in one state, which this index also counts: however rare the state,
            # neither the page nor its count walks the whole history.
            models.Index(fields=["state", "-created_at", "-id"], name="task_state_newest_first"),
        ]

    def __str__(self) -> str:
        if self.storage_only:
            return f"#{self.pk} {self.vm} disks on {self.source}"
        return f"#{self.pk} {self.vm} {self.source} → {self.destination}"

    @property
    def storage_only(self) -> bool:
        return self.kind == TaskKind.STORAGE

    @property
    def route(self) -> str:
        """Where the task moves the VM, as pages say it."""
        if self.storage_only:
            return f"disks on {self.source.name}"
        return f"{self.source.name} → {self.destination.name}"

    def get_absolute_url(self) -> str:
        return reverse("task-detail", args=[self.pk])

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def queue_name(self) -> str:
        return Priority(self.priority).queue_name

    def convergence_inputs(self) -> ConvergenceInputs:
        """What the operator asked for, as the convergence policy reads it."""
        return self.options().convergence_inputs(self.vm.memory_bytes)

    def options(self) -> MigrationOptions:
        return MigrationOptions(
            priority=self.priority,
            max_downtime_ms=self.max_downtime_ms,
            bandwidth_mib_s=self.bandwidth_mib_s,
            allow_post_copy=self.allow_post_copy,
            allow_auto_converge=self.allow_auto_converge,
            reason=self.reason,
        )

    def transition(
        self, to: str, message: str = "", *, error: str = "", error_detail: str = "", actor=None, held_by: str | None = None,
        end_reason: str = EndReason.OTHER,
    ) -> None:
        """The one way a task changes state: checked against the machine, saved, on the timeline
        and in the audit trail. Raises InvalidTransition when the row moved on meanwhile, or
        when `held_by` is given and that worker no longer holds the task. `end_reason` (an
        EndReason) says why a final state was reached; `task_ended` tells it once committed."""
        with transaction.atomic():
            current, worker = MigrationTask.objects.select_for_update().values_list("state", "worker").get(pk=self.pk)
            if to not in ALLOWED_TRANSITIONS[current]:
                self.state = current
                raise InvalidTransition(f"task {self.pk} cannot go from {current} to {to}")
            if held_by is not None and worker != held_by:
                raise InvalidTransition(f"task {self.pk} is held by {worker or 'no worker'}, not {held_by}")
            now = timezone.now()
            self.state = to
            fields = ["state"]
            if to == TaskState.WAITING:
                # Waiting holds no worker: whichever worker runs it next claims it afresh.
                self.worker, self.heartbeat_at = "", None
                fields += ["worker", "heartbeat_at"]
            if to == TaskState.MIGRATING and self.started_at is None:
                self.started_at = now
                fields.append("started_at")
            if to in FINAL_STATES:
                self.finished_at = now
                fields.append("finished_at")
                # After the commit: a rolled-back end is no end, and a final state has no way
                # out, so each task is told once. robust: what listens never fails the task.
                ended = partial(
                    task_ended.send, sender=MigrationTask, task_id=self.pk, state=to, end_reason=end_reason,
                    post_copy=current == TaskState.POST_COPY,
                )
                transaction.on_commit(ended, robust=True)
            if error or error_detail:
                self.error, self.error_detail = error, error_detail
                fields += ["error", "error_detail"]
            self.save(update_fields=fields)
            text = message or error or TaskState(to).label
            self.log(EventKind.STATE, text, from_state=current, to_state=to, actor=actor)

    def claim(self, worker: str, message: str) -> None:
        """Take the task for `worker`: state, worker and heartbeat change in one locked write,
        so recovery never sees the task being checked under an earlier worker's name."""
        with transaction.atomic():
            current = MigrationTask.objects.select_for_update().values_list("state", flat=True).get(pk=self.pk)
            if current not in (TaskState.QUEUED, TaskState.WAITING):
                self.state = current
                raise InvalidTransition(f"task {self.pk} is {current}: another worker has it, or it ended")
            self.worker, self.heartbeat_at = worker, timezone.now()
            self.save(update_fields=["worker", "heartbeat_at"])
            self.transition(TaskState.CHECKING, message)

    def beat(self) -> None:
        """Tell recovery the worker still runs this task."""
        MigrationTask.objects.filter(pk=self.pk).update(heartbeat_at=timezone.now())

    def record_result(self, sample: JobSample) -> None:
        """Keep libvirt's figures of the completed migration job."""
        elapsed = sample.elapsed_ms or 0
        self.total_ms = elapsed
        self.downtime_ms = sample.downtime_ms
        self.bytes_transferred = sample.data_processed
        self.iterations = sample.memory_iteration
        self.final_dirty_rate_bytes_s = sample.memory_dirty_rate
        self.mean_throughput_bytes_s = int(sample.data_processed * 1000 / elapsed) if elapsed else None
        fields = ["total_ms", "downtime_ms", "bytes_transferred", "iterations", "final_dirty_rate_bytes_s", "mean_throughput_bytes_s"]
        MigrationTask.objects.filter(pk=self.pk).update(**{name: getattr(self, name) for name in fields})

    def sample_figures(self) -> list[SampleFigures]:
        """The stored job samples, oldest first, as the progress and its chart read them."""
        fields = [field.name for field in dataclasses.fields(SampleFigures)]
        return [SampleFigures(*row) for row in self.samples.order_by("elapsed_ms").values_list(*fields)]

    def outcome(self) -> str:
        """What the final state change said: where the VM runs and the figures of the move."""
        if not self.is_final:
            return ""
        return self.events.filter(to_state=self.state).values_list("message", flat=True).last() or ""

    def log(self, kind: str, message: str, *, from_state: str = "", to_state: str = "", actor=None) -> "TaskEvent":
        return TaskEvent.objects.create(task=self, kind=kind, message=message, from_state=from_state, to_state=to_state, actor=actor)


class TaskEvent(models.Model):
    """One line of a task's timeline: a state change, a check, a policy action and why."""

    task = models.ForeignKey(MigrationTask, on_delete=models.CASCADE, related_name="events")
    at = models.DateTimeField(default=timezone.now)
    kind = models.CharField(max_length=16, choices=EventKind.choices)
    from_state = models.CharField(max_length=16, blank=True)
    to_state = models.CharField(max_length=16, blank=True)
    message = models.TextField()
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["at", "pk"]
        # The audit page reads the newest events first, over every task's timeline.
        indexes = [models.Index(fields=["-at"], name="event_newest_first")]

    def __str__(self) -> str:
        return f"{self.at:%H:%M:%S} {self.message}"


class ProgressSample(models.Model):
    """libvirt's job statistics at one moment of a migration, kept for the progress chart."""

    task = models.ForeignKey(MigrationTask, on_delete=models.CASCADE, related_name="samples")
    elapsed_ms = models.PositiveIntegerField()
    data_total = models.BigIntegerField(default=0)
    data_processed = models.BigIntegerField(default=0)
    data_remaining = models.BigIntegerField(default=0)
    dirty_rate_bytes_s = models.BigIntegerField(default=0)
    throughput_bytes_s = models.BigIntegerField(default=0)
    iteration = models.PositiveIntegerField(default=0)
    max_downtime_ms = models.PositiveIntegerField(null=True, blank=True)
    throttle_percent = models.PositiveSmallIntegerField(default=0)
    # The disks copied with the memory, counted in data_* too; zero without disk copies.
    disk_total = models.BigIntegerField(default=0)
    disk_remaining = models.BigIntegerField(default=0)

    class Meta:
        ordering = ["task", "elapsed_ms"]

    @classmethod
    def of(cls, task: MigrationTask, sample: JobSample, max_downtime_ms: int | None) -> "ProgressSample":
        return cls(
            task=task,
            elapsed_ms=sample.elapsed_ms,
            data_total=sample.data_total,
            data_processed=sample.data_processed,
            data_remaining=sample.data_remaining,
            dirty_rate_bytes_s=sample.memory_dirty_rate,
            throughput_bytes_s=sample.memory_bps,
            iteration=sample.memory_iteration,
            max_downtime_ms=max_downtime_ms,
            throttle_percent=sample.auto_converge_throttle,
            disk_total=sample.disk_total,
            disk_remaining=sample.disk_remaining,
        )


class Schedule(models.Model):
    """Migrations that run by themselves at set times: VMs to move, or a host to evacuate."""

    name = models.CharField(max_length=200)
    action = models.CharField(max_length=16, choices=ScheduleAction.choices, default=ScheduleAction.MOVE)
    # By name, so that a VM or host deleted since makes a run fail with that reason.
    vm_names = models.JSONField(default=list, blank=True, help_text="MOVE: the VMs to move")
    destination_name = models.CharField(max_length=200, blank=True, help_text="MOVE: empty lets the assistant choose for each VM")
    host_name = models.CharField(max_length=200, blank=True, help_text="EVACUATE: the host to put in maintenance")
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    max_downtime_ms = models.PositiveIntegerField(default=DEFAULT_MAX_DOWNTIME_MS)
    bandwidth_mib_s = models.PositiveIntegerField(null=True, blank=True)
    allow_post_copy = models.BooleanField(default=False)
    allow_auto_converge = models.BooleanField(default=True)
    reason = models.CharField(max_length=500, blank=True)

    recurrence = models.CharField(max_length=16, choices=RecurrenceKind.choices, default=RecurrenceKind.ONCE)
    time_zone = models.CharField(max_length=64, default="UTC", help_text="The creator's: times of day and cron fields are read in it")
    run_at = models.DateTimeField(null=True, blank=True)
    time_of_day = models.TimeField(null=True, blank=True)
    weekday = models.PositiveSmallIntegerField(null=True, blank=True, help_text="0 is Monday")
    cron = models.CharField(max_length=100, blank=True)
    window_minutes = models.PositiveIntegerField(null=True, blank=True, help_text="Moves still queued this long after the start are cancelled")

    enabled = models.BooleanField(default=True)
    next_run_at = models.DateTimeField(null=True, blank=True, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["next_run_at", "name"]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("schedule-detail", args=[self.pk])

    def when(self) -> Recurrence:
        return Recurrence(self.recurrence, self.time_zone, self.run_at, self.time_of_day, self.weekday, self.cron)

    def options(self) -> MigrationOptions:
        return MigrationOptions(
            priority=self.priority, max_downtime_ms=self.max_downtime_ms, bandwidth_mib_s=self.bandwidth_mib_s,
            allow_post_copy=self.allow_post_copy, allow_auto_converge=self.allow_auto_converge,
            reason=self.reason or f"Schedule {self.name}",
        )

    def last_run(self) -> "ScheduleRun | None":
        return self.runs.order_by("-due_at").first()


class ScheduleRun(models.Model):
    """One due time of a schedule. Unique per schedule and time: the claim that makes a run
    fire once however many schedulers run."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="runs")
    due_at = models.DateTimeField()
    state = models.CharField(max_length=16, choices=ScheduleRunState.choices, default=ScheduleRunState.RUNNING)
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    window_ends_at = models.DateTimeField(null=True, blank=True)
    result = models.TextField(blank=True)
    batch = models.ForeignKey(MigrationBatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    evacuation = models.ForeignKey(Evacuation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        ordering = ["-due_at"]
        constraints = [models.UniqueConstraint(fields=["schedule", "due_at"], name="one_run_per_due_time")]

    def __str__(self) -> str:
        return f"{self.schedule} at {self.due_at:%Y-%m-%d %H:%M} UTC"


class BalancingPolicy(models.Model):
    """How a cluster keeps its load even: off, recommendations only, or applied by the scheduler."""

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="balancing")
    level = models.CharField(max_length=16, choices=AutomationLevel.choices, default=AutomationLevel.MANUAL)
    threshold = models.PositiveSmallIntegerField(default=3, validators=[MinValueValidator(1), MaxValueValidator(5)], help_text="1 conservative to 5 aggressive")
    max_moves = models.PositiveSmallIntegerField("moves per round", default=2, validators=[MinValueValidator(1), MaxValueValidator(20)])
    interval_minutes = models.PositiveSmallIntegerField(default=5, validators=[MinValueValidator(1), MaxValueValidator(1440)])
    cooldown_minutes = models.PositiveSmallIntegerField(default=30, validators=[MaxValueValidator(1440)], help_text="A VM moved this recently stays put")
    last_round_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "balancing policies"

    def __str__(self) -> str:
        return f"{self.cluster}: {self.get_level_display()}"

    @classmethod
    def of(cls, cluster: Cluster) -> "BalancingPolicy":
        policy, _ = cls.objects.get_or_create(cluster=cluster)
        return policy


class ClusterRecommendations(models.Model):
    """A cluster's latest balancing recommendations, as the scheduler computed them in the
    background (`recommendations`): the cluster page shows these, with when they were
    computed, instead of computing them per request. Applying one judges it again against
    the cluster as it is then. `moves` holds each recommendation with its forecast as plain
    values (`recommendations.StoredMove`)."""

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="stored_recommendations")
    computed_at = models.DateTimeField(null=True, blank=True)  # None: not computed yet
    # When the scheduler next computes them: an interval after the last computation, sooner
    # when a page asks to recompute now or when something they depend on changed.
    due_at = models.DateTimeField(default=timezone.now, db_index=True)
    spread = models.FloatField(null=True, blank=True)
    moves = models.JSONField(default=list, blank=True)
    error = models.TextField(blank=True, help_text="Why the last computation failed")
    duration_ms = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "cluster recommendations"

    def __str__(self) -> str:
        return f"{self.cluster}: {len(self.moves)} recommendation(s)"

    @classmethod
    def request(cls, cluster_id: int) -> None:
        """Have the scheduler compute the cluster's recommendations at its next round."""
        if not cls.objects.filter(cluster_id=cluster_id).update(due_at=timezone.now()):
            cls.objects.get_or_create(cluster_id=cluster_id)

    @property
    def queued(self) -> bool:
        """A computation is due: asked for, or not done yet."""
        return self.computed_at is None or self.due_at <= timezone.now()


class AffinityRule(models.Model):
    """Which VMs of a cluster run together, apart, or only on some hosts; "must" blocks a move
    that breaks it, "should" only weighs against one."""

    cluster = models.ForeignKey(Cluster, on_delete=models.CASCADE, related_name="affinity_rules")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=16, choices=RuleKind.choices)
    strength = models.CharField(max_length=8, choices=RuleStrength.choices, default=RuleStrength.MUST)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["cluster", "name"], name="affinity_rule_name_unique_in_cluster")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_strength_display().lower()}: {self.get_kind_display().lower()})"

    @property
    def must(self) -> bool:
        return self.strength == RuleStrength.MUST


class AffinityRuleVm(models.Model):
    """A VM a rule names. The name is kept so a rule naming a VM since deleted shows it as stale."""

    rule = models.ForeignKey(AffinityRule, on_delete=models.CASCADE, related_name="members")
    vm = models.ForeignKey(VirtualMachine, null=True, on_delete=models.SET_NULL, related_name="affinity_memberships")
    vm_name = models.CharField(max_length=255)

    class Meta:
        ordering = ["vm_name"]


class AffinityRuleHost(models.Model):
    """A host a "run on hosts" rule allows; the name is kept for the same reason."""

    rule = models.ForeignKey(AffinityRule, on_delete=models.CASCADE, related_name="hosts")
    host = models.ForeignKey(Host, null=True, on_delete=models.SET_NULL, related_name="+")
    host_name = models.CharField(max_length=255)

    class Meta:
        ordering = ["host_name"]


# The rules' windows stay within the health history that the inventory keeps (HEALTH_HISTORY_MINUTES).
HEALTH_WINDOW_MAX_MINUTES = 60


class ProactivePolicy(models.Model):
    """What a cluster does about failing hosts: the health rules' thresholds, and whether a
    degraded host is only marked (and its evacuation recommended) or evacuated by itself."""

    cluster = models.OneToOneField(Cluster, on_delete=models.CASCADE, related_name="proactive_policy")
    level = models.CharField(max_length=16, choices=ProactiveLevel.choices, default=ProactiveLevel.OFF)
    slow_latency_ms = models.PositiveIntegerField(
        "slow read (ms)", default=2000, validators=[MinValueValidator(50), MaxValueValidator(60_000)], help_text="A libvirt read slower than this is slow",
    )
    slow_samples = models.PositiveSmallIntegerField(
        "slow reads in a row", default=3, validators=[MinValueValidator(1), MaxValueValidator(20)], help_text="This many make the rule 'slow libvirt' fire",
    )
    failed_reads = models.PositiveSmallIntegerField(
        "failed reads", default=3, validators=[MinValueValidator(1), MaxValueValidator(50)], help_text="This many within the window make 'failing calls' fire",
    )
    failed_window_minutes = models.PositiveSmallIntegerField(
        "failed reads window (min)", default=5, validators=[MinValueValidator(1), MaxValueValidator(HEALTH_WINDOW_MAX_MINUTES)],
    )
    memory_free_percent = models.PositiveSmallIntegerField(
        "free memory below (%)", default=5, validators=[MinValueValidator(1), MaxValueValidator(50)], help_text="Of the host's total memory",
    )
    memory_minutes = models.PositiveSmallIntegerField(
        "memory pressure for (min)", default=10, validators=[MinValueValidator(1), MaxValueValidator(HEALTH_WINDOW_MAX_MINUTES)],
        help_text="This long without a read above the limit makes 'memory pressure' fire",
    )

    class Meta:
        verbose_name_plural = "proactive policies"

    def __str__(self) -> str:
        return f"{self.cluster}: {self.get_level_display()}"

    @classmethod
    def of(cls, cluster: Cluster) -> "ProactivePolicy":
        policy, _ = cls.objects.get_or_create(cluster=cluster)
        return policy

    @property
    def thresholds(self) -> HealthThresholds:
        return HealthThresholds(
            slow_latency_ms=self.slow_latency_ms, slow_samples=self.slow_samples, failed_reads=self.failed_reads,
            failed_window_minutes=self.failed_window_minutes, memory_free_percent=self.memory_free_percent, memory_minutes=self.memory_minutes,
        )


class ProactiveRefusal(models.Model):
    """A degraded host that its cluster's policy could not evacuate (maintenance refused it,
    typically because the host does not answer): why, how often and when it last tried. The
    scheduler tries again; the row goes once an evacuation starts or the host is restored."""

    host = models.OneToOneField(Host, on_delete=models.CASCADE, related_name="proactive_refusal")
    degraded_since = models.DateTimeField(help_text="The degradation it is about")
    attempts = models.PositiveIntegerField(default=1)
    last_tried_at = models.DateTimeField(default=timezone.now)
    message = models.TextField()

    def __str__(self) -> str:
        return f"{self.host}: {self.message}"

    @property
    def is_current(self) -> bool:
        """About the host's present degradation, not an earlier one since restored."""
        return self.degraded_since == self.host.degraded_since


class TaskDiskMove(models.Model):
    """A disk copied with its VM's memory in a task: from which image, to which datastore
    and image on the destination, and what became of both images."""

    task = models.ForeignKey(MigrationTask, on_delete=models.CASCADE, related_name="disk_moves")
    target = models.CharField(max_length=32, help_text="Device name in the guest, e.g. vda")
    source_path = models.CharField(max_length=500)
    destination_datastore = models.ForeignKey("inventory.Datastore", null=True, on_delete=models.SET_NULL, related_name="+")
    destination_pool = models.CharField(max_length=200, help_text="The datastore's pool on the destination host")
    destination_path = models.CharField(max_length=500)
    format = models.CharField(max_length=16)
    capacity_bytes = models.BigIntegerField(help_text="Its size as the guest sees it")
    copied_bytes = models.BigIntegerField(help_text="What the copy is expected to move")
    image_created = models.BooleanField(default=False, help_text="vmotion created the destination's image")
    image_removed = models.BooleanField(default=False, help_text="The copy that lost was removed (the source's after success, the destination's after failure)")

    class Meta:
        ordering = ["task", "target"]
        constraints = [models.UniqueConstraint(fields=["task", "target"], name="one_move_per_disk")]

    def __str__(self) -> str:
        return f"{self.task} {self.target} -> {self.destination_path}"
