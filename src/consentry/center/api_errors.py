"""The API's error codes: every JSON error of `/api/` carries `detail` (a
sentence for people, which may change) and `code` (one of `CODES`, stable, for
programs). Held here, apart from the routes, because the middlewares that
answer before any route (the body limit, a busy ledger) say them too."""

from __future__ import annotations

from fastapi import HTTPException

#: code -> (HTTP status, what it means). A code is never renamed or reused; new ones may be added.
CODES: dict[str, tuple[int, str]] = {
    "missing_api_key": (401, "no `Authorization: Bearer` key was sent"),
    "unknown_api_key": (401, "the key is unknown or revoked"),
    "scope_denied": (403, "the key lacks the scope (read for GET, write for POST)"),
    "not_found": (404, "no such route"),
    "receipts_disabled": (404, "this privacy center issues no receipts (no --receipt-key)"),
    "method_not_allowed": (405, "the route does not take this method"),
    "not_in_force": (409, "nothing in force to withdraw; nothing was recorded"),
    "body_too_large": (413, "the body is over the server's limit; nothing was read"),
    "invalid_request": (422, "the path, the body or a header is not valid; `errors` says where"),
    "invalid_idempotency_key": (422, "the Idempotency-Key header is not 1-128 printable ASCII characters"),
    "idempotency_key_reused": (422, "the Idempotency-Key was sent before with another request"),
    "internal_error": (500, "the server failed; the request may or may not have been recorded"),
    "ledger_busy": (503, "the ledger is busy; nothing was recorded: retry after Retry-After seconds"),
}

#: The code of an error no route named (routing's 404 and 405, the body limit, validation, a busy ledger).
BY_STATUS = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large", 422: "invalid_request",
             500: "internal_error", 503: "ledger_busy"}


def refusal(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> HTTPException:
    """An API error with its code (read back by `code_of`)."""
    if CODES[code][0] != status:
        raise ValueError(f"API error code {code} is a {CODES[code][0]}, not a {status}")
    exc = HTTPException(status_code=status, detail=detail, headers=headers)
    exc.consentry_code = code  # type: ignore[attr-defined]
    return exc


def code_of(exc: Exception, status: int) -> str:
    return getattr(exc, "consentry_code", None) or BY_STATUS.get(status, "invalid_request" if status < 500 else "internal_error")


def body(code: str, detail: object) -> dict:
    """The JSON of an API error."""
    return {"detail": detail, "code": code}


#: The OpenAPI schema of an error body.
SCHEMA = {"content": {"application/json": {"schema": {
    "type": "object",
    "properties": {"detail": {"description": "What went wrong, for people (wording may change)"},
                   "code": {"type": "string", "enum": sorted(CODES), "description": "Stable, for programs"}},
    "required": ["detail", "code"]}}}}
