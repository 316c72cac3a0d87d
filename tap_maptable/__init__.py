"""tap-maptable: a Singer tap for MapTable, built with the Meltano Singer SDK."""
