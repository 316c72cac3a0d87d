"""`python -m tap_maptable`: the same command as `tap-maptable`."""

from tap_maptable.cli import main

if __name__ == "__main__":
    main()
