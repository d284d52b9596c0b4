import sys

from phase1_platform.cli import main

sys.exit(main())
