"""Find, read and validate policies; errors point at the field to change."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml
from pydantic import ValidationError

from ..errors import PolicyError
from .model import Policy
from .wording import fix_of, message_of, path_of

DEFAULT_POLICY = "recommended"


def preset_names() -> list[str]:
    folder = resources.files(__package__) / "presets"
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir() if p.name.endswith(".yaml"))


def preset_text(name: str) -> str:
    if name not in preset_names():
        raise PolicyError(
            f"there is no built-in policy '{name}'",
            fix=f"use one of {', '.join(preset_names())}, or the path of a policy file",
        )
    return (resources.files(__package__) / "presets" / f"{name}.yaml").read_text("utf-8")


def load_policy(name_or_path: str | Path | None = None) -> Policy:
    """A preset by name, else a YAML file by path."""
    ref = str(name_or_path) if name_or_path is not None else DEFAULT_POLICY
    if ref in preset_names():
        return parse_policy(preset_text(ref), source=f"built-in policy '{ref}'")
    path = Path(ref)
    if not path.is_file():
        raise PolicyError(
            f"'{ref}' is neither a built-in policy nor a file",
            fix=f"use one of {', '.join(preset_names())}, or the path of a policy YAML file "
            f"(start from `consentry policy show recommended > my-policy.yaml`)",
        )
    policy = parse_policy(_read_utf8(path), source=str(path))
    if policy.name in preset_names() and policy.hash != parse_policy(preset_text(policy.name)).hash:
        # Lists, reports and pages show a policy by its name: this file would pass for the built-in one.
        raise PolicyError(
            f"name: '{policy.name}' is a built-in policy's, and this file's rules differ from it "
            f"({policy.hash}, the built-in is {parse_policy(preset_text(policy.name)).hash})",
            where=str(path),
            fix=f"give it a name of its own (e.g. {policy.name}-custom), or use `--policy {policy.name}`")
    return policy


def _read_utf8(path: Path) -> str:
    """The file's text; one that is not UTF-8 (Windows editors save UTF-16) is refused, named."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        if data[:4] in (b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff"):
            found, source = "UTF-32 (it starts with a UTF-32 byte order mark)", "UTF-32"
        elif data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            found, source = "UTF-16 (it starts with a UTF-16 byte order mark)", "UTF-16"
        else:
            found, source = f"byte 0x{data[exc.start]:02x} at line {line} is not UTF-8", "LATIN1"
            raise PolicyError(
                f"the file is not UTF-8: {found}",
                where=str(path),
                fix=f"save it as UTF-8, e.g. `iconv -f {source} -t UTF-8 {path} > policy-utf8.yaml` "
                f"(if it was not Latin-1, name its encoding after -f)",
            ) from None
        raise PolicyError(
            f"the file is not UTF-8: it is {found}",
            where=str(path),
            fix=f"save it as UTF-8, e.g. `iconv -f {source} -t UTF-8 {path} > policy-utf8.yaml`",
        ) from None


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice: in a policy, the second
    'minimum_age' silently winning would be a legal mistake."""

    def construct_mapping(self, node, deep=False):  # noqa: ANN001, ANN201
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                # `<<: *anchor` is not a key of its own: SafeLoader's construct_mapping merges
                # it (keys written here win over merged ones, as YAML says). Only the keys
                # written in this mapping are checked for being given twice.
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"the key '{key}' is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_timestamp(self, node):  # noqa: ANN001, ANN201
        """A date YAML reads as one but the calendar has not (2024-13-01,
        2024-02-30, an offset of +25:00) raised a bare ValueError: name it."""
        try:
            return super().construct_yaml_timestamp(node)
        except ValueError as exc:
            why = "its offset from UTC is out of range" if "offset" in str(exc) else str(exc)
            raise _NotADate(f"'{node.value}' is not a real date ({why})", node.start_mark) from None


class _NotADate(yaml.YAMLError):
    def __init__(self, problem: str, mark) -> None:  # noqa: ANN001 - a yaml Mark
        super().__init__(problem)
        self.problem, self.problem_mark = problem, mark


_StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _StrictLoader.construct_yaml_timestamp)


def parse_policy(text: str, *, source: str = "policy") -> Policy:
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}, line {mark.line + 1}" if mark else source
        if isinstance(exc, _NotADate):
            raise PolicyError(exc.problem, where=where, fix="write a date like 2024-06-26") from None
        raise PolicyError(f"not valid YAML ({getattr(exc, 'problem', exc)})", where=where) from None
    if not isinstance(data, dict):
        raise PolicyError("a policy is a YAML mapping (name:, kinds:, jurisdictions: ...)", where=source)
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        problems = [f"{path_of(err['loc'])}: {message_of(err)}" for err in errors]
        fixes = list(dict.fromkeys(f for f in map(fix_of, errors) if f))
        raise PolicyError(
            "invalid policy:\n    " + "\n    ".join(problems),
            where=source,
            fix="; ".join(fixes) if fixes else "compare with `consentry policy show recommended`",
        ) from None
