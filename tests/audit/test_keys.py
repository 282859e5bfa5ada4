"""The audit key as an operator hands it over: every wrong file is refused with
what is wrong with it, which file, and how to make a good one, from every
command that reads a key, and nothing is written.

Found by trying it as a new user would: `audit receipt --key` with a missing
or malformed file ended in a Python traceback (FileNotFoundError, then
cryptography's "Unable to load PEM file ... MalformedFraming")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func, select
from typer.testing import CliRunner

from consentry.cli import app
from consentry.errors import InputError
from consentry.ledger import Ledger, NewEvent
from consentry.ledger.tables import audit_checkpoints
from consentry.signing import private_key, public_key

PEM, PKCS8, SPKI = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.PublicFormat.SubjectPublicKeyInfo


def _write(folder: Path, name: str, data: bytes) -> Path:
    (folder / name).write_bytes(data)
    return folder / name


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    ed = Ed25519PrivateKey.generate()
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    none = serialization.NoEncryption()
    return {
        "ed": _write(tmp_path, "ed.pem", ed.private_bytes(PEM, PKCS8, none)),
        "ed_pub": _write(tmp_path, "ed.pub.pem", ed.public_key().public_bytes(PEM, SPKI)),
        "rsa": _write(tmp_path, "rsa.pem", rsa_key.private_bytes(PEM, PKCS8, none)),
        "rsa_pub": _write(tmp_path, "rsa.pub.pem", rsa_key.public_key().public_bytes(PEM, SPKI)),
        "ec": _write(tmp_path, "ec.pem", ec_key.private_bytes(PEM, PKCS8, none)),
        "encrypted": _write(tmp_path, "enc.pem", ed.private_bytes(
            PEM, PKCS8, serialization.BestAvailableEncryption(b"a passphrase"))),
        "garbage": _write(tmp_path, "garbage.pem", b"not a key at all\n"),
        "missing": tmp_path / "no-such.pem",
        "folder": tmp_path,
    }


#: (key, what the message says) for a key that should be an Ed25519 *private* key.
PRIVATE_REFUSALS = [
    ("missing", "no such file"),
    ("folder", "is a folder, not a key file"),
    ("garbage", "is not a PEM private key"),
    ("ed_pub", "is a public key; signing needs the private key"),
    ("rsa", "holds a key of type RSA; the audit key is Ed25519"),
    ("ec", "holds a key of type EC; the audit key is Ed25519"),
    ("encrypted", "is encrypted with a passphrase"),
]
PUBLIC_REFUSALS = [
    ("missing", "no such file"),
    ("garbage", "is not a PEM public key"),
    ("ed", "is a private key; checking needs only its public half"),
    ("rsa_pub", "holds a key of type RSA; the audit key is Ed25519"),
]


@pytest.mark.parametrize(("name", "words"), PRIVATE_REFUSALS)
def test_a_bad_private_key_is_refused_by_name(keys, name, words) -> None:
    with pytest.raises(InputError) as e:
        private_key(keys[name])
    assert words in str(e.value) and str(keys[name]) in str(e.value)


@pytest.mark.parametrize(("name", "words"), PUBLIC_REFUSALS)
def test_a_bad_public_key_is_refused_by_name(keys, name, words) -> None:
    with pytest.raises(InputError) as e:
        public_key(keys[name])
    assert words in str(e.value) and str(keys[name]) in str(e.value)


def test_good_keys_are_read_from_a_file_or_bytes(keys) -> None:
    k = private_key(keys["ed"])
    assert private_key(keys["ed"].read_bytes()).public_key() == k.public_key()
    assert public_key(keys["ed_pub"]) == k.public_key()


@pytest.mark.slow
@pytest.mark.parametrize(("name", "words"), PRIVATE_REFUSALS)
def test_commands_that_sign_refuse_a_bad_key_and_write_nothing(tmp_path, keys, name, words) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    Ledger(url).record(NewEvent(user_id="u1", type="objected", at="2024-02-01T00:00:00Z", channel="web"))
    runner = CliRunner()
    for args in (["audit", "checkpoint"], ["audit", "receipt", "u1"]):
        r = runner.invoke(app, [*args, "--key", str(keys[name]), "--ledger", url])
        assert r.exit_code == 2, (args, r.output, r.exception)
        assert words in r.output and "Traceback" not in r.output, r.output
    with Ledger(url).engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(audit_checkpoints)).scalar_one() == 0
    good = runner.invoke(app, ["audit", "checkpoint", "--key", str(keys["ed"]), "--ledger", url])
    assert good.exit_code == 0, good.output


@pytest.mark.slow
@pytest.mark.parametrize(("name", "words"), PUBLIC_REFUSALS)
def test_commands_that_check_refuse_a_bad_public_key(tmp_path, keys, name, words) -> None:
    url = f"sqlite:///{tmp_path / 'l.db'}"
    Ledger(url).record(NewEvent(user_id="u1", type="objected", at="2024-02-01T00:00:00Z", channel="web"))
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps({"receipt": {"kind": "consentry.purge_receipt"}, "signature": {}}))
    runner = CliRunner()
    for args in (["audit", "verify"], ["audit", "verify-receipt", str(receipt)]):
        r = runner.invoke(app, [*args, "--public-key", str(keys[name]), "--ledger", url])
        assert r.exit_code == 2, (args, r.output, r.exception)
        assert words in r.output and "Traceback" not in r.output, r.output


@pytest.mark.slow
@pytest.mark.parametrize(("name", "words"), PRIVATE_REFUSALS)
def test_serve_refuses_a_bad_receipt_key(tmp_path, keys, monkeypatch, name, words) -> None:
    monkeypatch.setenv("CONSENTRY_SECRET_KEY", "k9fT2xQ7mZ4pL8sV1bN6cR3wY0hJ5dG2")
    r = CliRunner().invoke(app, ["serve", "--data", str(tmp_path), "--ledger", f"sqlite:///{tmp_path / 'l.db'}",
                                 "--mail-dir", str(tmp_path), "--receipt-key", str(keys[name])])
    assert r.exit_code == 2 and f"--receipt-key: the receipt key {keys[name]}" in r.output and words in r.output, r.output


def test_counts_of_one_take_the_singular(tmp_path, keys) -> None:
    """`audit verify` said "1 signed checkpoints verified", "1 records"."""
    url = f"sqlite:///{tmp_path / 'l.db'}"
    Ledger(url).record(NewEvent(user_id="u1", type="objected", at="2024-02-01T00:00:00Z", channel="web"))
    runner = CliRunner()
    assert runner.invoke(app, ["audit", "checkpoint", "--key", str(keys["ed"]), "--ledger", url]).exit_code == 0
    r = runner.invoke(app, ["audit", "verify", "--public-key", str(keys["ed_pub"]), "--ledger", url])
    said = " ".join(r.output.split())
    assert r.exit_code == 0 and "audit log intact: 1 record, head" in said and "1 signed checkpoint verified" in said, said
    r = runner.invoke(app, ["audit", "export", "--out", str(tmp_path / "a.jsonl"), "--ledger", url])
    assert "wrote 1 audit record to" in " ".join(r.output.split()), r.output
