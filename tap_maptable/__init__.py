"""tap-maptable: a Singer tap for MapTable, built with the Meltano Singer SDK."""

# The one place the version is written: pyproject.toml reads it ([tool.hatch.version]), and the
# installed distribution's metadata (what `tap-maptable --version` and `--about` show) comes
# from there. `.devN` marks a version that is not released yet; see CHANGELOG.md.
__version__ = "0.2.0.dev0"
