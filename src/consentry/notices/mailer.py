"""The SMTP mailer moved to `consentry.mail.smtp`; this name stays for older imports.

It is the same module object, not a copy of its names: code and tests that set
`consentry.notices.mailer._sleep` (the retry pause) change what the mailer uses.
"""

import sys

from consentry.mail import smtp as _smtp

sys.modules[__name__] = _smtp
