"""Who may act: sign-in links, rate limits, administrators and API clients."""

from . import tables  # noqa: F401  (registers the tables on the shared metadata)
from .admins import Admin, Admins, ApiClients, check_password, hash_password
from .links import LINK_MINUTES, LinkError, Links
from .ratelimit import RateLimiter, bucket

__all__ = [
    "LINK_MINUTES",
    "Admin",
    "Admins",
    "ApiClients",
    "LinkError",
    "Links",
    "RateLimiter",
    "bucket",
    "check_password",
    "hash_password",
]
