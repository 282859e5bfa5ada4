"""How a policy's validation errors are worded (a file's, by `load_policy`,
and a `Policy(...)` built in code): the field's path, a message in the
policy author's terms, and a fix where the cause is not the field's name."""

from __future__ import annotations


def path_of(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


#: Policies are read strictly (no '"false"' read as false, no yes read as 1): what to write instead.
_TYPE_HINTS = {
    "bool_type": "write true or false, without quotes",
    "int_type": "write a whole number, without quotes",
}


def _country_read_as_bool(err: dict) -> bool:
    return "countries" in err["loc"] and isinstance(err.get("input"), bool)


def fix_of(err: dict) -> str | None:
    """A fix of its own for the errors whose cause is not the field's name."""
    if _country_read_as_bool(err):
        return 'quote it: "NO"' if err["input"] is False else "quote the country code, e.g. \"GB\""
    return None


def message_of(err: dict) -> str:
    msg = err["msg"].removeprefix("Value error, ")
    if _country_read_as_bool(err):
        if err["input"] is False:
            return 'YAML reads NO (Norway), unquoted, as false, not as a country code: write "NO"'
        return (f"YAML read this country code as {str(err['input']).lower()} (it does so with yes/no/on/off, "
                f"unquoted): write it in quotes")
    if err["type"] == "extra_forbidden":
        return "unknown field (check its spelling)"
    if err["type"] == "missing" and err["loc"][-1] == "notice_days":
        return ("required: the days of notice before use (rule 12), e.g. notice_days: 30, "
                "or notice_days: null for no notice rule in this jurisdiction")
    hint = _TYPE_HINTS.get(err["type"])
    if hint:
        got = err.get("input")
        if err["type"] == "int_type" and err["loc"][-1] == "notice_days":
            hint += "; null (not no/false) means no notice rule"
        if isinstance(got, bool):
            hint += " (YAML reads yes/no/on/off/true/false, unquoted, as true/false)"
        return f"{msg}: {hint} (got {got!r})"
    if "input" in err and err["type"] not in ("missing",) and not isinstance(err["input"], dict):
        got = err["input"]
        # As the policy wrote it, not as Python spells the value YAML made of it (datetime.datetime(...)).
        return f"{msg} (got {got.isoformat() if hasattr(got, 'isoformat') else repr(got)})"
    return msg
