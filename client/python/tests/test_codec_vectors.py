"""The payload-encryption test vectors every implementation must pass (contract/codec-vectors.json)."""
import asyncio
import base64
import json
from pathlib import Path

import pytest
from temporalio.api.common.v1 import Payload

from rbm_guard import EncryptionCodec, PayloadDecryptionError

VECTORS = json.loads((Path(__file__).resolve().parents[3] / "contract" / "codec-vectors.json").read_text())
KEYS = [(k["id"], base64.b64decode(k["key"])) for k in VECTORS["keys"]]


def from_wire(w):
    return Payload(metadata={k: base64.b64decode(v) for k, v in w["metadata"].items()}, data=base64.b64decode(w["data"]))


def to_wire(p):
    return {"metadata": {k: base64.b64encode(v).decode() for k, v in p.metadata.items()}, "data": base64.b64encode(p.data).decode()}


def test_vectors_cover_both_keys_and_every_reject():
    assert {v["keyId"] for v in VECTORS["vectors"]} == {"vector-1", "vector-2"}
    assert {r["error"] for r in VECTORS["rejects"]} == {"unknown-key", "authentication", "truncated"}


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_decrypts_the_typescript_payload(vector):
    [plain] = asyncio.run(EncryptionCodec(KEYS).decode([from_wire(vector["encrypted"])]))
    assert to_wire(plain) == vector["plain"]


@pytest.mark.parametrize("vector", VECTORS["vectors"], ids=lambda v: v["name"])
def test_round_trips_under_its_key_with_a_fresh_iv(vector):
    codec = EncryptionCodec(KEYS, vector["keyId"])
    a, b = asyncio.run(codec.encode([from_wire(vector["plain"]), from_wire(vector["plain"])]))
    assert a.metadata["encryption-key-id"] == vector["keyId"].encode()
    assert a.metadata["encoding"] == b"binary/encrypted"
    assert a.data[:12] != b.data[:12]
    [back] = asyncio.run(codec.decode([a]))
    assert to_wire(back) == vector["plain"]


@pytest.mark.parametrize("reject", VECTORS["rejects"], ids=lambda r: r["name"])
def test_refuses_naming_the_key_id(reject):
    with pytest.raises(PayloadDecryptionError) as info:
        asyncio.run(EncryptionCodec(KEYS).decode([from_wire(reject["encrypted"])]))
    assert info.value.key_id == reject["keyId"]
    assert f'"{reject["keyId"]}"' in str(info.value)
    expected = {"unknown-key": "not loaded", "authentication": "failed authentication", "truncated": "truncated"}[reject["error"]]
    assert expected in str(info.value)


def test_plain_payloads_pass_unchanged():
    plain = Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')
    assert asyncio.run(EncryptionCodec(KEYS).decode([plain])) == [plain]
