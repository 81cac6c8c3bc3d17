"""``python -m lrtrain`` is the ``lrtrain`` command."""

from lrtrain.cli.app import main

if __name__ == "__main__":
    main()
