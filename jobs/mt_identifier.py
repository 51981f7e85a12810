"""``python -m jobs.mt_identifier``: the main-track identifier search (binary CNN per plane)."""

import sys

from jobs.job import main

if __name__ == "__main__":
    sys.exit(main("mt_identifier"))
