"""The few errors every adapter and provider translates its own failures into.

ReplyStream and the responder act on these; nothing above an adapter sees a platform exception.
"""

from __future__ import annotations


class SwitchboardError(Exception):
    """Base of every error Switchboard raises on purpose."""


class ConfigError(SwitchboardError):
    """A config file or value is wrong; the message names the key and the reason."""


# --- platform side (raised by ReplySurface implementations) ---------------------------------


class StartupError(SwitchboardError):
    """Something the runtime needs at start is not there (a port in use); the message says the fix."""


class PlatformError(SwitchboardError):
    """The platform refused or failed a call for a reason not covered below."""


class RateLimited(PlatformError):
    """The platform said: wait `retry_after` seconds before the next call."""

    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__(message or f"rate limited, retry after {retry_after}s")
        self.retry_after = float(retry_after)


class NotModified(PlatformError):
    """An edit carried the text the message already shows: that is success."""


class MarkupRejected(PlatformError):
    """The platform could not parse our markup; the same text should go again as plain text."""


class MessageGone(PlatformError):
    """The message to edit no longer exists (deleted, too old)."""


class ClientGone(MessageGone):
    """Nobody is there to see this reply any more (the browser tab closed): stop it, quietly."""


# --- provider side (raised by Provider implementations) -------------------------------------


class ProviderError(SwitchboardError):
    """A model call failed. `retryable` says whether another model in the chain may succeed."""

    retryable = True

    def __init__(self, message: str, *, provider: str = "", status: int | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status


class ProviderRateLimited(ProviderError):
    def __init__(
        self, message: str, *, retry_after: float | None = None, provider: str = "", status: int | None = None
    ) -> None:
        super().__init__(message, provider=provider, status=status)
        self.retry_after = retry_after


class ProviderAuthError(ProviderError):
    """Bad or missing key: no retry on this provider will help."""


class ProviderUnavailable(ProviderError):
    """Connection refused, timeout, 5xx: the provider is down for now."""


class ProviderBadRequest(ProviderError):
    """The request itself was refused (context too long, bad parameter)."""


class UnknownModel(SwitchboardError, KeyError):
    """A model name that is neither a known "provider/model" ref nor an alias."""
