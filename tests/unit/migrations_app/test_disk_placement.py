"""Where each disk of a VM goes when it moves, and what keeps a move from being made."""

from migrations_app.storage.placement import DestinationStore, VmDisk, place_disks

GIB = 1024**3
SHARED, LOCAL_SRC, LOCAL_DST, SMALL = 1, 2, 3, 4
STORES = {
    SHARED: DestinationStore(SHARED, "nfs-vms", "nfs", "/srv/nfs", 500 * GIB),
    LOCAL_DST: DestinationStore(LOCAL_DST, "images (kvm2)", "images", "/var/lib/libvirt/images", 100 * GIB),
    SMALL: DestinationStore(SMALL, "scratch (kvm2)", "scratch", "/srv/scratch", 10 * GIB),
}
MOUNTED = {SHARED, LOCAL_DST, SMALL}


def disk(target="vda", datastore=LOCAL_SRC, allocation=8 * GIB, fmt="qcow2", source=None, capacity=40 * GIB) -> VmDisk:
    return VmDisk(target, source or f"/var/lib/libvirt/images/web-{target}.qcow2", fmt, capacity, allocation, datastore, "images (kvm1)" if datastore == LOCAL_SRC else "nfs-vms")


def test_a_disk_on_shared_storage_stays_and_a_local_one_goes_where_chosen():
    placements, problems = place_disks([disk("vda"), disk("vdb", datastore=SHARED)], "kvm2", MOUNTED, STORES, chosen={"vda": LOCAL_DST})

    assert problems == []
    assert [(p.disk.target, p.moves, p.destination_path) for p in placements] == [
        ("vda", True, "/var/lib/libvirt/images/web-vda.qcow2"),
        ("vdb", False, "/var/lib/libvirt/images/web-vdb.qcow2"),
    ]


def test_the_moves_datastore_takes_every_disk_not_already_on_it():
    placements, problems = place_disks([disk("vda"), disk("vdb", datastore=SHARED), disk("vdc", datastore=LOCAL_DST)], "kvm2", MOUNTED, STORES, default=LOCAL_DST)

    assert problems == []
    assert [(p.disk.target, p.moves) for p in placements] == [("vda", True), ("vdb", True), ("vdc", False)]


def test_a_disk_can_be_sent_to_a_datastore_of_its_own_even_from_shared_storage():
    placements, problems = place_disks([disk("vda"), disk("vdb", datastore=SHARED)], "kvm2", MOUNTED, STORES, chosen={"vda": SMALL, "vdb": LOCAL_DST})

    assert problems == []
    assert [(p.disk.target, p.store.name) for p in placements] == [("vda", "scratch (kvm2)"), ("vdb", "images (kvm2)")]


def test_a_local_disk_without_a_datastore_chosen_is_refused_with_what_to_do():
    _placements, problems = place_disks([disk("vda")], "kvm2", MOUNTED, STORES)

    assert problems == ["Disk vda is on images (kvm1) which kvm2 does not mount: choose a datastore of kvm2 to copy it to."]


def test_room_for_the_copies_and_a_margin_is_needed_on_each_datastore():
    disks = [disk("vda", allocation=5 * GIB), disk("vdb", allocation=9 * GIB // 2)]

    assert place_disks(disks, "kvm2", MOUNTED, STORES, default=LOCAL_DST)[1] == []
    _placements, problems = place_disks(disks, "kvm2", MOUNTED, STORES, default=SMALL)

    assert problems == ["scratch (kvm2) has 10.0 GiB free; the disks copied to it take 9.5 GiB, 10.4 GiB with the 10% margin for writes during the copy."]


def test_a_disk_without_a_known_allocation_counts_at_its_full_size():
    _placements, problems = place_disks([disk("vda", allocation=None, capacity=12 * GIB)], "kvm2", MOUNTED, STORES, default=SMALL)

    assert problems and "take 12.0 GiB" in problems[0]


def test_what_cannot_be_copied_is_refused_disk_by_disk():
    disks = [disk("vda", fmt="vmdk"), disk("vdb", source="rbd:vms/web")]

    _placements, problems = place_disks(disks, "kvm2", MOUNTED, STORES, chosen={"vdz": SMALL}, default=9)

    assert problems == [
        "The VM has no disk vdz.",
        "Disk vda cannot go to that datastore: kvm2 does not mount it, or its pool there is inactive.",
        "Disk vdb cannot go to that datastore: kvm2 does not mount it, or its pool there is inactive.",
    ]
    _placements, problems = place_disks(disks, "kvm2", MOUNTED, STORES, default=LOCAL_DST)
    assert problems == [
        "Disk vda is a vmdk image: vmotion copies raw and qcow2 images.",
        "Disk vdb (rbd:vms/web) is not a file or device path: vmotion copies file images only.",
    ]


def test_an_inactive_pool_takes_no_copy():
    stores = {LOCAL_DST: DestinationStore(LOCAL_DST, "images (kvm2)", "images", "/var/lib/libvirt/images", 100 * GIB, active=False)}

    _placements, problems = place_disks([disk("vda")], "kvm2", {LOCAL_DST}, stores, default=LOCAL_DST)

    assert problems == ["Disk vda cannot go to that datastore: kvm2 does not mount it, or its pool there is inactive."]
