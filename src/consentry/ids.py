"""What makes an id unusable as a key (one home for the fact): the export's
validation and the ledger's intake refuse the same ids."""

from __future__ import annotations

import re

#: An id that begins or ends with white space (Unicode included, and the invisible
#: U+200B and U+FEFF) or holds a control character anywhere: it would not match
#: the same id in the ledger or another table, and trimming it would be a guess.
UNCLEAN_ID_RE = r"^[\pZ\x{200B}\x{FEFF}]|[\pZ\x{200B}\x{FEFF}]$|\p{Cc}"  # RE2 (DuckDB)
UNCLEAN_ID_PY = r"^[\s\u200b\ufeff]|[\s\u200b\ufeff]$|[\x00-\x1f\x7f-\x9f]"  # the same, for one value in Python

_UNCLEAN = re.compile(UNCLEAN_ID_PY)


def unclean(value: str) -> bool:
    """True when `value` could never match an id of a valid export."""
    return _UNCLEAN.search(value) is not None
