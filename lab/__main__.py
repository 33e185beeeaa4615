"""python -m lab up|down|status|stop-daemon HOST|start-daemon HOST (no Django needed)."""

import argparse
import sys

from lab import cli
from lab.config import LabError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab", description="The vmotion libvirt lab.")
    cli.add_arguments(parser)
    try:
        cli.run(vars(parser.parse_args(argv)))
    except LabError as error:
        print(f"lab: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
