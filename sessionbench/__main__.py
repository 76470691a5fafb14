"""``python -m sessionbench``: the command line (see ``python -m sessionbench --help``)."""

from sessionbench.cli import run

if __name__ == "__main__":
    run()
