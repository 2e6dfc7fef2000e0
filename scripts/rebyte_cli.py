#!/usr/bin/env python3
# /// script
# requires-python = ">=3.9"
# dependencies = ["requests>=2.25"]
# ///
"""rebyte_cli.py: spawn and follow Rebyte cloud coding-agent tasks from a shell.

    python3 scripts/rebyte_cli.py --help

The commands live in the package rebyte/cli/ beside this file (imported, so that
Python caches their bytecode), and the HTTP client in rebyte_client.py.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from rebyte.cli.app import build_parser, main  # noqa: E402

__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    sys.exit(main())
