"""The fault bench judges what it measured: a fault passes a round only when its test passed
and recorded the seconds from the fault to the task's final state; a failed, skipped or
missing test is a miss with its reason. No lab: the round's JUnit report is written by hand."""

from __future__ import annotations

from pathlib import Path

from bench.faults import outcomes

FAULTS = {
    "timed": "tests/lab/test_faults.py::test_timed",
    "untimed": "tests/lab/test_faults.py::test_untimed",
    "failed": "tests/lab/test_faults.py::test_failed",
    "skipped": "tests/lab/test_faults.py::test_skipped",
    "not run": "tests/lab/test_faults.py::test_not_run",
}

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest">
  <testcase classname="tests.lab.test_faults" name="test_timed" time="81.5">
    <properties><property name="seconds_to_final" value="22.4"/></properties>
  </testcase>
  <testcase classname="tests.lab.test_faults" name="test_untimed" time="40.0"/>
  <testcase classname="tests.lab.test_faults" name="test_failed" time="70.0">
    <properties><property name="seconds_to_final" value="12.0"/></properties>
    <failure>AssertionError: the guest runs on two hosts</failure>
  </testcase>
  <testcase classname="tests.lab.test_faults" name="test_skipped" time="0.0"><skipped message="no lab"/></testcase>
</testsuite></testsuites>
"""


def test_only_a_passed_test_with_its_time_to_final_passes_and_every_miss_says_why(tmp_path: Path):
    report = tmp_path / "round.xml"
    report.write_text(REPORT)

    result = outcomes(report, FAULTS)

    assert result["timed"] == {"passed": True, "seconds": 81.5, "seconds_to_final": 22.4, "message": ""}
    assert not result["untimed"]["passed"] and "no time from the fault" in result["untimed"]["message"]
    assert not result["failed"]["passed"] and result["failed"]["message"] == "failure"  # no message attribute: the element says
    assert not result["skipped"]["passed"] and result["skipped"]["message"] == "skipped"
    assert result["not run"] == {"passed": False, "seconds": 0.0, "seconds_to_final": None, "message": "did not run"}
