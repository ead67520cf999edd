"""`python -m <package> <stage>` runs one stage of the model lifecycle."""

import sys

from .cli import main

sys.exit(main())
