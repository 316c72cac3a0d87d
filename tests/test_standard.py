"""singer-sdk's standard tap tests, plus the primary-key uniqueness check they lack."""

from __future__ import annotations

import atexit
from collections import Counter

from singer_sdk.testing import get_tap_test_class

from maptable_sandbox import Sandbox, SandboxConfig
from tap_maptable.tap import TapMapTable
from tests.helpers import APP_ID, APP_SECRET, KNOWN_SECRETS, sync, tap_config

# The standard test class is built at import time, so its sandbox starts here and lives for the
# whole session (it is unthrottled: these tests check shape, not pacing).
_SANDBOX = Sandbox(SandboxConfig(apps={APP_ID: APP_SECRET}, rate_limit=0, rows_per_table=30))
_SANDBOX.start()
atexit.register(_SANDBOX.stop)
CONFIG = tap_config(_SANDBOX, start_date="2020-01-01T00:00:00Z")

TestTapMapTable = get_tap_test_class(tap_class=TapMapTable, config=CONFIG)


def test_primary_keys_are_unique_in_every_stream() -> None:
    run = sync(CONFIG)
    KNOWN_SECRETS.update(_SANDBOX.issued_secrets())
    for stream, records in run.records.items():
        schema = run.schema(stream)
        key_properties = next(
            m["key_properties"] for m in run.of_type("SCHEMA") if m["stream"] == stream
        )
        assert key_properties, f"{stream} has no primary key"
        keys = Counter(tuple(r[k] for k in key_properties) for r in records)
        duplicates = [k for k, n in keys.items() if n > 1]
        assert not duplicates, f"{stream}: duplicate keys {duplicates[:3]}"
        assert all(k in schema["properties"] for k in key_properties)
