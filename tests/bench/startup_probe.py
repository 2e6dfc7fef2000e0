"""Where `rebyte_cli.py --help` spends its time past the interpreter's start, in one process.

    python tests/bench/startup_probe.py SCRIPTS_DIR

Imports rebyte_cli as a module (its top level imports rebyte.cli.app), builds the parser
and formats the help, and prints the seconds each took as JSON. Run in a fresh process
per sample, so nothing is imported already.
"""

import json
import sys
import time


def main() -> None:
    sys.path.insert(0, sys.argv[1])
    started = time.perf_counter()
    import rebyte_cli

    imported = time.perf_counter()
    parser = rebyte_cli.build_parser()
    built = time.perf_counter()
    parser.format_help()
    formatted = time.perf_counter()
    times = {
        "top level": imported - started,
        "build_parser": built - imported,
        "format_help": formatted - built,
    }
    print(json.dumps(times))


if __name__ == "__main__":
    main()
