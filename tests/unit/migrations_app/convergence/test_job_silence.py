from migrations_app.convergence.job_silence import NOTE_AFTER_SECONDS, JobSilence


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_long_silence_is_noted_once_and_its_end_too():
    clock, notes = Clock(), []
    silence = JobSilence("kvm1", notes.append, clock)

    silence.failed(TimeoutError("cannot acquire state change lock"))
    clock.now += NOTE_AFTER_SECONDS - 1
    silence.failed(TimeoutError("cannot acquire state change lock"))
    assert notes == []

    clock.now += 1
    silence.failed(TimeoutError("cannot acquire state change lock"))
    clock.now += 20
    silence.failed(TimeoutError("cannot acquire state change lock"))
    silence.answered()

    assert notes == [
        "libvirt on kvm1 has not given the migration's statistics for 10 s (cannot acquire state change lock). "
        "The migration stays libvirt's to end; vmotion keeps asking and ends the task by where the VM runs.",
        "libvirt on kvm1 answers again after 30 s.",
    ]


def test_a_short_silence_goes_unnoted_and_the_next_one_counts_afresh():
    clock, notes = Clock(), []
    silence = JobSilence("kvm1", notes.append, clock)

    silence.failed(TimeoutError("busy"))
    clock.now += 5
    silence.answered()
    clock.now += 6
    silence.failed(TimeoutError("busy"))

    assert notes == []
