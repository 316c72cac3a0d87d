"""Every MapTable path, parameter, field name and error code the tap relies on.

The MapTable Open API is documented only in part (the vendor's access-token page, plus a third-party
SDK's guesses for the read endpoints). Keeping every name here means a correction to the API's
shape is a one-line change, and a reader can see at a glance what the tap assumes.
"""

from __future__ import annotations

from typing import Final

API_PREFIX: Final = "/open/api/v1"  # every path's start: the `api_url` setting is the root
AUTH_PATH: Final = f"{API_PREFIX}/auth/"
REFRESH_PATH: Final = f"{API_PREFIX}/token/refresh/"
WORKSPACES_PATH: Final = f"{API_PREFIX}/workspaces/"
WORKSPACE_DETAIL_PATH: Final = f"{API_PREFIX}/workspaces/{{workspaceType}}/{{workspaceId}}/"
TABLE_SEGMENT_PATH: Final = f"{API_PREFIX}/tablenodes/{{tableId}}/partial/"

# Query parameters.
PAGE_PARAM: Final = "page"
PAGE_SIZE_PARAM: Final = "pageSize"
LAST_SEGMENT_ROW_PARAM: Final = "lastSegmentRowID"

# Request and response bodies.
AUTH_APP_ID: Final = "appId"
AUTH_APP_SECRET: Final = "appSecret"  # noqa: S105 - a field name, not a secret
REFRESH_BODY_FIELD: Final = "refreshtoken"
TOKEN_FIELD: Final = "token"  # noqa: S105 - a field name, not a secret
REFRESH_TOKEN_FIELD: Final = "refreshToken"  # noqa: S105 - a field name, not a secret
BEARER_PREFIX: Final = "Bearer "

# The envelope every response is wrapped in.
ENVELOPE_CODE: Final = "code"
ENVELOPE_MESSAGE: Final = "message"
ENVELOPE_DETAIL: Final = "detail"
ENVELOPE_REQUEST_ID: Final = "requestID"

# Table nodes whose rows can be read (a "group" node only groups other nodes).
ROW_TABLE_TYPES: Final = frozenset({"table", "bigTable"})

# Access tokens live 8 hours (vendor page); used when a token carries no JWT `exp` claim.
DEFAULT_TOKEN_LIFETIME_S: Final = 8 * 60 * 60

# Envelope codes. The vendor documents only "0 is success"; the rest are the tap's assumptions:
# codes in the 401xx range (and HTTP 401) mean "the token is not accepted", 429xx (and HTTP 429)
# mean "slow down", and 5xxxx mean a transient server failure worth retrying.
SUCCESS_CODE: Final = 0
AUTH_FAILURE_CODES: Final = frozenset({401, *range(40100, 40200)})
RATE_LIMIT_CODES: Final = frozenset({429, *range(42900, 43000)})


def is_transient_code(code: int) -> bool:
    """Tell whether a non-zero envelope code names a server-side failure worth retrying."""
    return 50000 <= code <= 59999  # noqa: PLR2004 - the documented-by-assumption range
