"""Every target the Makefile declares phony has a rule."""

import re
from pathlib import Path

MAKEFILE = Path(__file__).resolve().parents[2] / "Makefile"


def test_every_phony_target_has_a_rule():
    text = MAKEFILE.read_text()
    phony = set(re.search(r"^\.PHONY:(.*)$", text, re.MULTILINE).group(1).split())
    rules = set(re.findall(r"^([A-Za-z0-9_.-]+):", text, re.MULTILINE)) - {".PHONY"}
    assert phony <= rules, f"phony targets without a rule: {sorted(phony - rules)}"
