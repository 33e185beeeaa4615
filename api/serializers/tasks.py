"""Migration tasks as the API shows them (with where each stands, its timeline and its job
samples), and what a script sends to ask for one or to check one first."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from inventory.models import Datastore, Host, VirtualMachine
from migrations_app.choices import Priority
from migrations_app.models import MigrationTask, ProgressSample, TaskDiskMove, TaskEvent
from migrations_app.options import BANDWIDTH_RANGE_MIB_S, DEFAULT_MAX_DOWNTIME_MS, MAX_DOWNTIME_RANGE_MS, MigrationOptions
from migrations_app.storage.store import DiskChoice
from migrations_app.convergence.progress import disk_copy_progress, progress_of

from ..fields import PriorityField
from .errors import CheckSerializer
from .strict import StrictJsonTypes


class DiskMoveSerializer(serializers.ModelSerializer):
    class Meta:
        model = TaskDiskMove
        fields = ["target", "source_path", "destination_datastore", "destination_path", "format", "capacity_bytes", "copied_bytes", "image_created", "image_removed"]


class TaskSerializer(serializers.ModelSerializer):
    disk_moves = DiskMoveSerializer(many=True, read_only=True, help_text="The disks this task copies, and what became of each image")
    vm_name = serializers.CharField(source="vm.name", read_only=True)
    source_name = serializers.CharField(source="source.name", read_only=True)
    destination_name = serializers.CharField(source="destination.name", read_only=True)
    priority = PriorityField(read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True, help_text="Null when the system (a schedule, balancing) asked")

    class Meta:
        model = MigrationTask
        fields = [
            "id", "vm", "vm_name", "source", "source_name", "destination", "destination_name", "state", "priority", "requested_by", "reason",
            "batch", "max_downtime_ms", "bandwidth_mib_s", "allow_post_copy", "allow_auto_converge", "encrypted", "cancel_requested",
            "force_complete_requested", "created_at", "started_at", "finished_at", "predicted_total_ms", "predicted_downtime_ms",
            "total_ms", "downtime_ms", "bytes_transferred", "iterations", "final_dirty_rate_bytes_s", "mean_throughput_bytes_s",
            "error", "error_detail", "kind", "disk_moves",
        ]
        extra_kwargs = {
            "kind": {"help_text": "compute: the VM moves to another host (with the disks chosen to go along); storage: only its disks move, to other datastores of its host"},
            "encrypted": {"help_text": "Whether its memory stream went over TLS, as the clusters' migration encryption and the hosts' certificates decided when it started; null until then"},
        }


class ProgressSerializer(serializers.Serializer):
    phase = serializers.CharField()
    percent = serializers.IntegerField(help_text="Of the guest's memory already on the destination (of its disks copied, for a storage-only move), 0-100")
    remaining_bytes = serializers.IntegerField(allow_null=True)
    throughput_bytes_s = serializers.IntegerField(allow_null=True)
    dirty_rate_bytes_s = serializers.IntegerField(allow_null=True)
    iteration = serializers.IntegerField(allow_null=True)
    eta_s = serializers.FloatField(allow_null=True, help_text="Null when the copy does not gain on the guest's writes")
    expected_pause_ms = serializers.IntegerField(allow_null=True, help_text="The pause if the switch happened now; null during the first pass")
    allowed_pause_ms = serializers.IntegerField(allow_null=True)
    slo_ms = serializers.IntegerField(help_text="The max downtime asked for")
    throttle_percent = serializers.IntegerField()
    disk_percent = serializers.IntegerField(allow_null=True, help_text="Of the disks copied with the memory; null when the move copies none")
    disk_remaining_bytes = serializers.IntegerField(allow_null=True)


class TaskEventSerializer(serializers.ModelSerializer):
    actor = serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True)

    class Meta:
        model = TaskEvent
        fields = ["at", "kind", "from_state", "to_state", "message", "actor"]


class TaskDetailSerializer(TaskSerializer):
    progress = serializers.SerializerMethodField()
    outcome = serializers.SerializerMethodField(help_text="What the final state change said; empty until the task ends")
    events = TaskEventSerializer(many=True, read_only=True, help_text="The timeline, oldest first")

    class Meta(TaskSerializer.Meta):
        fields = [*TaskSerializer.Meta.fields, "progress", "outcome", "events"]

    @extend_schema_field(ProgressSerializer)
    def get_progress(self, task: MigrationTask) -> dict:
        samples = task.sample_figures()
        last = samples[-1] if samples else None
        if task.storage_only:
            return ProgressSerializer(disk_copy_progress(task.state, last)).data
        return ProgressSerializer(progress_of(task.state, task.max_downtime_ms, last)).data

    def get_outcome(self, task: MigrationTask) -> str:
        return task.outcome()


WARNINGS_HELP = (
    "What the request risks though it is accepted: with allow_post_copy, one entry per pair of hosts whose libvirt (as the "
    "inventory recorded it) cannot resume a post-copy whose link broke, which loses the running guest. Empty when none"
)


class TaskCreatedSerializer(TaskDetailSerializer):
    """The task just submitted, with what its request risks."""

    warnings = serializers.SerializerMethodField(help_text=WARNINGS_HELP)

    class Meta(TaskDetailSerializer.Meta):
        fields = [*TaskDetailSerializer.Meta.fields, "warnings"]

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_warnings(self, task: MigrationTask) -> list[str]:
        return list(self.context.get("warnings", []))


class ProgressSampleSerializer(serializers.ModelSerializer):
    class Meta:
        model = ProgressSample
        fields = [
            "elapsed_ms", "data_total", "data_processed", "data_remaining", "dirty_rate_bytes_s", "throughput_bytes_s", "iteration",
            "max_downtime_ms", "throttle_percent", "disk_total", "disk_remaining",
        ]


class MigrationRequestSerializer(StrictJsonTypes, serializers.Serializer):
    """A migration as a script asks for it; the service layer checks the rest."""

    vm = serializers.PrimaryKeyRelatedField(queryset=VirtualMachine.objects.select_related("host", "host__cluster"), help_text="The VM's id")
    target = serializers.PrimaryKeyRelatedField(queryset=Host.objects.all(), help_text="The destination host's id")
    priority = PriorityField(default=Priority.NORMAL)
    max_downtime_ms = serializers.IntegerField(
        default=DEFAULT_MAX_DOWNTIME_MS, min_value=MAX_DOWNTIME_RANGE_MS[0], max_value=MAX_DOWNTIME_RANGE_MS[1],
        help_text="The longest final pause accepted",
    )
    bandwidth_mib_s = serializers.IntegerField(
        default=None, allow_null=True, min_value=BANDWIDTH_RANGE_MIB_S[0], max_value=BANDWIDTH_RANGE_MIB_S[1], help_text="Null: uncapped"
    )
    allow_post_copy = serializers.BooleanField(default=False)
    allow_auto_converge = serializers.BooleanField(default=True)
    reason = serializers.CharField(default="", allow_blank=True, max_length=500, help_text="For the audit trail and the task's page")
    datastore = serializers.PrimaryKeyRelatedField(
        queryset=Datastore.objects.all(), default=None, allow_null=True,
        help_text="A datastore of the target host: the VM's disks are copied to it live, with the memory. Null: the disks stay (on storage both hosts mount)",
    )

    disks = serializers.DictField(
        child=serializers.PrimaryKeyRelatedField(queryset=Datastore.objects.all()), default=dict,
        help_text="A datastore of the target host per disk (its target, e.g. vda), for disks that go elsewhere than `datastore`",
    )

    def disk_choice(self) -> DiskChoice | None:
        return _disk_choice(self.validated_data)

    def options(self) -> MigrationOptions:
        data = self.validated_data
        return MigrationOptions(
            priority=data["priority"], max_downtime_ms=data["max_downtime_ms"], bandwidth_mib_s=data["bandwidth_mib_s"],
            allow_post_copy=data["allow_post_copy"], allow_auto_converge=data["allow_auto_converge"], reason=data["reason"],
        )


def _disk_choice(data: dict) -> DiskChoice | None:
    datastore, per_disk = data["datastore"], data["disks"]
    if datastore is None and not per_disk:
        return None
    return DiskChoice(default=datastore.pk if datastore else None, per_disk={target: store.pk for target, store in per_disk.items()})


class StorageMoveRequestSerializer(StrictJsonTypes, serializers.Serializer):
    """A storage-only move as a script asks for it: the VM's disks to other datastores of its host."""

    vm = serializers.PrimaryKeyRelatedField(queryset=VirtualMachine.objects.select_related("host"), help_text="The VM's id")
    datastore = serializers.PrimaryKeyRelatedField(
        queryset=Datastore.objects.all(), default=None, allow_null=True, help_text="A datastore of the VM's host for every disk",
    )
    disks = serializers.DictField(
        child=serializers.PrimaryKeyRelatedField(queryset=Datastore.objects.all()), default=dict,
        help_text="A datastore of the VM's host per disk (its target, e.g. vda); the others go to `datastore`, or stay without one",
    )
    priority = PriorityField(default=Priority.NORMAL)
    bandwidth_mib_s = serializers.IntegerField(
        default=None, allow_null=True, min_value=BANDWIDTH_RANGE_MIB_S[0], max_value=BANDWIDTH_RANGE_MIB_S[1], help_text="Null: uncapped",
    )
    reason = serializers.CharField(default="", allow_blank=True, max_length=500, help_text="For the audit trail and the task's page")

    def validate(self, data: dict) -> dict:
        if data["datastore"] is None and not data["disks"]:
            raise serializers.ValidationError({"datastore": "Say where the disks go: a datastore, or one per disk in `disks`."})
        return data

    def disk_choice(self) -> DiskChoice:
        return _disk_choice(self.validated_data)

    def options(self) -> MigrationOptions:
        data = self.validated_data
        return MigrationOptions(priority=data["priority"], bandwidth_mib_s=data["bandwidth_mib_s"], reason=data["reason"])


class PredictionSerializer(serializers.Serializer):
    strategy = serializers.CharField(help_text="pre-copy, pre-copy with larger downtime, auto-converge, post-copy or cannot meet SLO")
    total_ms = serializers.IntegerField()
    downtime_ms = serializers.IntegerField()
    iterations = serializers.IntegerField()
    converges = serializers.BooleanField()
    explanation = serializers.CharField()
    summary = serializers.CharField(help_text="The forecast in one sentence, with what was measured")
    resident_bytes = serializers.IntegerField(help_text="QEMU's resident set")
    first_pass_bytes = serializers.IntegerField(help_text="What of the resident set the first pass is expected to send")
    dirty_rate_bytes_s = serializers.IntegerField(allow_null=True, help_text="Null when the hypervisor cannot measure it")
    link_bytes_s = serializers.IntegerField(help_text="The rate expected in the first pass")
    resend_bytes_s = serializers.IntegerField(help_text="The rate expected in later passes, which send only dirtied pages")
    measured_seconds_ago = serializers.IntegerField(allow_null=True, help_text="How old the inventory's measurement of the guest that the forecast rests on is")


class MigrationCheckSerializer(serializers.Serializer):
    passed = serializers.BooleanField(help_text="Whether submitting now would be accepted")
    message = serializers.CharField()
    active_task = serializers.IntegerField(allow_null=True, help_text="The VM's migration that has not ended yet, if any")
    checks = CheckSerializer(many=True)
    prediction = PredictionSerializer(allow_null=True, help_text="The forecast of the move, from the inventory's latest measurement of the guest; null unless it passed")
    prediction_error = serializers.CharField(help_text="Why there is no forecast, when it passed but the guest has not been measured yet")
    warnings = serializers.ListField(child=serializers.CharField(), help_text=WARNINGS_HELP)


class TaskActionSerializer(serializers.Serializer):
    message = serializers.CharField(help_text="What was done, or asked of the worker")
    task = TaskDetailSerializer()


class BlockedBySerializer(serializers.Serializer):
    check = serializers.CharField(source="name")
    message = serializers.CharField()


class CandidateSerializer(serializers.Serializer):
    host = serializers.IntegerField(source="host.id")
    host_name = serializers.CharField(source="host.name")
    eligible = serializers.BooleanField()
    score = serializers.FloatField(help_text="0-100, higher is better; 0 when the host cannot take the VM")
    reasons = serializers.ListField(child=serializers.CharField())
    soft_breaches = serializers.ListField(child=serializers.CharField(), help_text="The 'should' affinity rules the move would break")
    blocked_by = BlockedBySerializer(allow_null=True, help_text="The first check the host fails; null when it can take the VM")


class RecommendationSerializer(serializers.Serializer):
    vm = serializers.IntegerField()
    vm_name = serializers.CharField()
    candidates = CandidateSerializer(many=True, help_text="Every other host, best first; those that cannot take the VM last, with why")
