"""Who is asking: the platform people know, the controller who answers for it
in law (GDPR Art. 13(1)(a)), and its data protection officer (Art. 13(1)(b)).

Every page, mail, notice and document names them, in every language; a notice
campaign does not start without them. They come from a YAML file (`--controller
FILE`, `$CONSENTRY_CONTROLLER`, or `controller.yaml` in `$CONSENTRY_HOME`) and
options that override it field by field:

    platform: Pixgram
    name: Pixgram Europe Ltd.
    address: 1 Harbour Square, Dublin 2, Ireland
    dpo: Dr. Ana Silva, dpo@pixgram.example
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from .errors import InputError

__all__ = ["FIELDS", "Controller", "load_controller"]

#: field -> (what it is, the option that sets it)
FIELDS = {
    "platform": ("the platform's name, as people know it", "--platform"),
    "name": ("the controller's legal name", "--controller-name"),
    "address": ("the controller's postal address", "--controller-address"),
    "dpo": ("the data protection officer's name and contact (mail address or web form)", "--dpo"),
}


class Controller(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    platform: str | None = None
    name: str | None = None
    address: str | None = None
    dpo: str | None = None

    @field_validator("*")
    @classmethod
    def _text(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = " ".join(str(value).split())
        return value or None

    def missing(self) -> list[str]:
        return [f for f in FIELDS if getattr(self, f) is None]

    def require(self, what: str) -> Controller:
        """This, complete; else an error that names each missing field and how to give it."""
        if missing := self.missing():
            lines = "; ".join(f"{FIELDS[f][1]} ({FIELDS[f][0]})" for f in missing)
            raise InputError(f"{what} needs to say who is asking; missing: {lines}",
                             fix="pass the options, or write them in controller.yaml (see `consentry notify --help`)")
        return self

    def merged(self, **overrides: str | None) -> Controller:
        return Controller(**{**self.model_dump(), **{k: v for k, v in overrides.items() if v}})


def load_controller(path: Path | None) -> Controller:
    """The controller file's fields (none when there is no file)."""
    if path is None:
        return Controller()
    import yaml

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise InputError(f"cannot read the controller file: {exc.strerror}", where=str(path)) from None
    except yaml.YAMLError as exc:
        raise InputError(f"the controller file is not valid YAML: {exc}", where=str(path)) from None
    if not isinstance(raw, dict):
        raise InputError("the controller file must hold platform, name, address and dpo", where=str(path))
    try:
        return Controller.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(x) for x in first["loc"])
        raise InputError(f"{field}: {first['msg']}", where=str(path),
                         fix=f"the file takes {', '.join(FIELDS)}") from None
