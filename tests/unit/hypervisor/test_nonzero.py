"""A guest's non-zero memory from a sample of its physical memory: where its RAM lies, where
the sample reads, and the estimate from what it read. Pure: no libvirt."""

import pytest

from hypervisor.nonzero import CHUNK, GIB, PAGE, guest_ram_ranges, nonzero_bytes, nonzero_pages, sample_addresses

MIB = 2**20


def test_a_small_x86_guests_ram_lies_from_zero_up():
    assert guest_ram_ranges(256 * MIB, "x86_64", "pc-i440fx-9.2") == [(0, 256 * MIB)]
    assert guest_ram_ranges(256 * MIB, "x86_64", "pc-q35-9.2") == [(0, 256 * MIB)]


def test_a_large_x86_guests_ram_continues_above_4_gib_past_the_pci_hole():
    assert guest_ram_ranges(8 * GIB, "x86_64", "pc-q35-9.2") == [(0, 2 * GIB), (4 * GIB, 6 * GIB)]
    assert guest_ram_ranges(8 * GIB, "x86_64", "pc-i440fx-9.2") == [(0, 3 * GIB + GIB // 2), (4 * GIB, 4 * GIB + GIB // 2)]
    assert guest_ram_ranges(3 * GIB, "x86_64", "pc-i440fx-9.2") == [(0, 3 * GIB)]


def test_an_architecture_whose_layout_is_not_known_is_not_sampled():
    assert guest_ram_ranges(GIB, "aarch64", "virt") == []
    assert list(sample_addresses([], 64)) == []


def test_the_sample_reads_one_page_aligned_chunk_in_each_slice_within_the_ram():
    ranges = guest_ram_ranges(8 * GIB, "x86_64", "pc-q35-9.2")

    addresses = list(sample_addresses(ranges, 64, seed=1))

    assert len(addresses) == 64 and all(a % PAGE == 0 for a in addresses)
    assert all(any(start <= a and a + CHUNK <= start + length for start, length in ranges) for a in addresses)
    assert sum(a >= 4 * GIB for a in addresses) == 48  # 6 of the 8 GiB lie above 4 GiB
    assert addresses == sorted(addresses)


def test_the_estimate_scales_the_share_of_non_zero_pages_sampled_to_the_whole_ram():
    data, zero = b"\x01" + bytes(PAGE - 1), bytes(PAGE)
    chunk = data * 4 + zero * 12  # 4 of 16 pages hold data

    assert nonzero_pages(chunk) == 4
    assert nonzero_bytes([chunk, zero * 16], 256 * MIB) == 32 * MIB
    assert nonzero_bytes([], 256 * MIB) is None


@pytest.mark.parametrize("share", [0.1, 0.4, 0.9])
def test_a_stratified_sample_of_64_chunks_finds_a_guests_data_within_a_few_percent(share):
    # A guest whose data lies in runs of 2 MiB (its kernel, page cache, heaps) spread over 1 GiB.
    pages = GIB // PAGE
    run_pages = 2 * MIB // PAGE
    filled = {run for run in range(pages // run_pages) if (run * 2654435761 % 1000) < share * 1000}

    read = [
        b"".join(b"\x01" * PAGE if (address // PAGE + p) // run_pages in filled else bytes(PAGE) for p in range(CHUNK // PAGE))
        for address in sample_addresses([(0, GIB)], 64, seed=7)
    ]

    truth = len(filled) * 2 * MIB
    assert abs(nonzero_bytes(read, GIB) - truth) <= 0.15 * truth + 16 * MIB
