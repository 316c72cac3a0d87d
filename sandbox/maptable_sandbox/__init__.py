"""A fake MapTable Open API server for tests and demos of tap-maptable.

It follows the vendor's documented behaviour (auth, token refresh with rotation, 60 requests per
minute per app) and the SDK's read endpoints, and it misbehaves on demand (``FaultPlan``) the way
real servers and proxies do. Rows are generated lazily from a seed, so huge tables cost nothing.
"""

from maptable_sandbox.config import FaultPlan, RequestLogEntry, SandboxConfig
from maptable_sandbox.data import Dataset, TableInfo
from maptable_sandbox.server import Sandbox

__version__ = "0.2.0"
__all__ = ["Dataset", "FaultPlan", "RequestLogEntry", "Sandbox", "SandboxConfig", "TableInfo"]
