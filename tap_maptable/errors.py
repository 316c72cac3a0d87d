"""The tap's own exceptions: each one's text is a single line that is safe to show a user.

Safe means: it names the endpoint, the HTTP status, the API's `message` and `requestID`, and never
a secret, a token or a whole response body. The command-line entry point prints exactly that line.
"""

from __future__ import annotations

from singer_sdk.exceptions import FatalAPIError, RetriableAPIError


class MapTableError(Exception):
    """Base class: an error whose text is one line, fit for a user's terminal and logs."""


class ConfigurationError(MapTableError):
    """The settings, catalog or state cannot be used; raised before any request is sent."""


class AuthenticationError(MapTableError, FatalAPIError):
    """MapTable refused the app's credentials or tokens; retrying would not help."""


class NetworkError(MapTableError, FatalAPIError):
    """MapTable could not be reached, and the retry policy has given up (or would not help)."""


class RateLimitExhaustedError(MapTableError, FatalAPIError):
    """MapTable kept answering 429 after every wait the tap was willing to make."""


class MapTableAPIError(MapTableError, FatalAPIError):
    """A request failed in a way that retrying will not fix."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        """Keep the HTTP status, so callers can tell "not found or forbidden" from the rest."""
        super().__init__(message)
        self.status = status

    @property
    def client_error(self) -> bool:
        """A 403 or 404: this one resource is gone or not the app's to read."""
        return self.status in {403, 404}


class TransientAPIError(MapTableError, RetriableAPIError):
    """A request failed in a way that a later retry may fix (5xx, proxy page, cut-off body)."""


class SegmentLoopError(MapTableError, FatalAPIError):
    """The server sent a table segment the tap has already read: paging would never end."""


class ColumnShapeError(MapTableError):
    """A table's first segment has no columns the tap can map (no list, or columns without ids)."""


class TablesSkippedError(MapTableError):
    """The run extracted every table it could, but skipped some it could not read.

    Raised after the last STATE, so that everything extracted is committed; the command line
    reports it in one line and exits with `EXIT_TABLES_SKIPPED`, which a scheduler can tell from
    a failed run (1) and from a complete one (0).
    """

    def __init__(self, skipped: list[tuple[str, str]]) -> None:
        """`skipped`: each skipped stream and why."""
        listed = "; ".join(f"{stream}: {why}" for stream, why in skipped)
        super().__init__(
            f"{len(skipped)} table(s) skipped, every other table was extracted: {listed}"
        )
        self.skipped = skipped


# Exit code of a run that extracted every table but the skipped ones (see TablesSkippedError).
EXIT_TABLES_SKIPPED = 3

# What concerns one table alone, during a sync: the run skips that table (its bookmark stays
# where it was) and extracts the others. An API error here is a 4xx other than 401/429, or an
# envelope code that is neither transient, a token refusal nor a rate limit: an answer about
# this table (gone, not this app's to read). Authentication, budget, network and transient
# failures that outlast their tries are not here: they concern every table, and end the run.
TABLE_ERRORS: tuple[type[Exception], ...] = (MapTableAPIError, SegmentLoopError, ColumnShapeError)


def describe_failure(  # noqa: PLR0913 - each part is a field of the one-line message
    *,
    method: str,
    path: str,
    status: int | None,
    message: str,
    code: int | None = None,
    request_id: str | None = None,
) -> str:
    """Build the one-line description every API error uses, so users can grep and report it."""
    parts = [f"{method} {path}"]
    if status is not None:
        parts.append(f"HTTP {status}")
    if code is not None:
        parts.append(f"code {code}")
    text = ", ".join(parts) + f": {one_line(message)}"
    if request_id:
        text += f" (requestID {request_id})"
    return text


# Values that must never be shown (the app secret, tokens): a backstop for a server that echoes
# what it was sent into its error message.
_SECRETS: set[str] = set()
_SHORTEST_SECRET = 6


def never_show(*values: str) -> None:
    """Remember secret values, so that no error line can show them."""
    _SECRETS.update(v for v in values if len(v) >= _SHORTEST_SECRET)


def one_line(text: str, limit: int = 300) -> str:
    """Fold whitespace, hide known secrets and cut long text: one readable, safe line."""
    folded = " ".join(str(text).split())
    for secret in _SECRETS:
        folded = folded.replace(secret, "***")
    return folded if len(folded) <= limit else folded[: limit - 3] + "..."
