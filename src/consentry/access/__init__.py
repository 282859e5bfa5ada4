"""Who may act: sign-in links, rate limits, administrators and API clients."""

from . import tables  # noqa: F401  (registers the tables on the shared metadata)
from .admins import ROLES, Admin, Admins, ApiClients, check_password, hash_password
from .links import LINK_MINUTES, AddressError, LinkError, Links, normalise_address, same_address
from .ratelimit import RateLimiter, bucket
from .sessions import Lifetimes, Session, Sessions

__all__ = [
    "LINK_MINUTES",
    "ROLES",
    "AddressError",
    "Admin",
    "Admins",
    "ApiClients",
    "Lifetimes",
    "LinkError",
    "Links",
    "RateLimiter",
    "Session",
    "Sessions",
    "bucket",
    "check_password",
    "hash_password",
    "normalise_address",
    "same_address",
]
