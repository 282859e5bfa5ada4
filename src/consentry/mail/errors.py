"""What can go wrong handing a mail over, in the two kinds a sender must tell
apart: try again later (TemporaryFailure) or stop and tell someone
(PermanentFailure). Every transport raises these."""

from __future__ import annotations

from typing import Any

from consentry.errors import ConsentryError


class MailError(ConsentryError):
    """The mail was not handed over. `code` and `server_text` are the server's reply, if it gave one."""

    def __init__(
        self,
        problem: str,
        *,
        server: str,
        stage: str,
        code: int | None = None,
        server_text: str = "",
        recipient: str | None = None,
    ) -> None:
        self.problem = problem
        self.server = server
        self.stage = stage
        self.code = code
        self.server_text = server_text
        self.recipient = recipient
        super().__init__(self.render())

    def render(self) -> str:
        to = f" for <{self.recipient}>" if self.recipient else ""
        reply = f" (server said: {self.code} {self.server_text})" if self.code is not None else ""
        return f"SMTP {self.server}, {self.stage}{to}: {self.problem}{reply}"

    def __reduce__(self) -> tuple[Any, ...]:
        kwargs = {k: getattr(self, k) for k in ("server", "stage", "code", "server_text", "recipient")}
        return (_rebuild_error, (type(self), self.problem, kwargs))


def _rebuild_error(cls: type[MailError], problem: str, kwargs: dict[str, Any]) -> MailError:
    return cls(problem, **kwargs)


class TemporaryFailure(MailError):
    """4xx reply, refused/reset connection or timeout: the same mail may go through later."""


class PermanentFailure(MailError):
    """5xx reply or a setup the server will never accept: retrying will not help."""

