"""``python -m phase1_platform.ingestion [options]`` = ``phase1 ingest [options]``."""

import sys

from phase1_platform.cli import main

sys.exit(main(["ingest", *sys.argv[1:]]))
