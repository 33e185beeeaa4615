"""python -m vmotion.lab up|down|status|stop-daemon HOST|start-daemon HOST (no Django needed)."""

import argparse
import sys

from vmotion.lab import cli
from vmotion.lab.config import LabError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vmotion.lab", description="The vmotion libvirt lab.")
    cli.add_arguments(parser)
    try:
        cli.run(vars(parser.parse_args(argv)))
    except LabError as error:
        print(f"vmotion.lab: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
