import sys

from pclean.cli import main

sys.exit(main())
