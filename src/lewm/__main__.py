import sys

from lewm.cli import main

sys.exit(main())
