"""The payload encryption every rbm-guard process speaks (docs/payload-encryption.md): AES-256-GCM over
each payload's protobuf bytes, a fresh 12-byte IV, the key id as authenticated data and in the
metadata. All loaded keys decrypt; the current one (default: the last) encrypts."""
from __future__ import annotations

import base64
import binascii
import os
import re
from typing import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

from .contract import CONTRACT

_FORMAT = CONTRACT["payloadEncryption"]
ENCRYPTED_ENCODING: bytes = _FORMAT["metadata"]["encoding"].encode()
KEY_ID_METADATA: str = _FORMAT["metadata"]["keyId"]
_KEY_ID_RE = re.compile(_FORMAT["keyIdPattern"])
_IV = _FORMAT["ivBytes"]
_TAG = _FORMAT["tagBytes"]


class PayloadDecryptionError(Exception):
    """A payload this codec cannot decrypt: unknown key id, altered bytes, or a truncated envelope."""

    def __init__(self, message: str, key_id: str | None = None) -> None:
        super().__init__(message)
        self.key_id = key_id


def parse_keys(text: str) -> list[tuple[str, bytes]]:
    """`id:base64key` entries, comma- or newline-separated (`#` starts a comment line)."""
    keys: list[tuple[str, bytes]] = []
    entries = [e.strip() for line in text.splitlines() if not line.strip().startswith("#") for e in line.split(",")]
    for n, entry in enumerate((e for e in entries if e), start=1):
        key_id, sep, material = entry.partition(":")
        if not sep:
            raise ValueError(f"encryption keys: entry {n} is not id:base64key")
        try:
            key = base64.b64decode(material.strip(), validate=True)
        except binascii.Error:
            raise ValueError(f'encryption keys: key "{key_id}" is not base64') from None
        keys.append((key_id.strip(), key))
    if not keys:
        raise ValueError("encryption keys: none (expected id:base64key, comma-separated)")
    return keys


class EncryptionCodec(PayloadCodec):
    def __init__(self, keys: Sequence[tuple[str, bytes]], current_key_id: str | None = None) -> None:
        if not keys:
            raise ValueError("EncryptionCodec: no keys")
        self._keys: dict[str, AESGCM] = {}
        for key_id, key in keys:
            if not _KEY_ID_RE.match(key_id):
                raise ValueError(f'EncryptionCodec: bad key id "{key_id}"')
            if key_id in self._keys:
                raise ValueError(f'EncryptionCodec: key id "{key_id}" appears twice')
            if len(key) != _FORMAT["keyBytes"]:
                raise ValueError(f'EncryptionCodec: key "{key_id}" is {len(key)} bytes, not {_FORMAT["keyBytes"]}')
            self._keys[key_id] = AESGCM(key)
        self.current_key_id = current_key_id or keys[-1][0]
        if self.current_key_id not in self._keys:
            raise ValueError(f'EncryptionCodec: current key "{self.current_key_id}" is not loaded')

    @classmethod
    def from_text(cls, text: str, current_key_id: str | None = None) -> "EncryptionCodec":
        return cls(parse_keys(text), current_key_id)

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.current_key_id
        iv = os.urandom(_IV)
        # AESGCM returns ciphertext || tag; the key id is authenticated data.
        sealed = self._keys[key_id].encrypt(iv, payload.SerializeToString(), key_id.encode())
        return Payload(metadata={"encoding": ENCRYPTED_ENCODING, KEY_ID_METADATA: key_id.encode()}, data=iv + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """Our payloads decrypted; any other payload (written before encryption was on) unchanged."""
        if payload.metadata.get("encoding") != ENCRYPTED_ENCODING:
            return payload
        raw_id = payload.metadata.get(KEY_ID_METADATA)
        if not raw_id:
            raise PayloadDecryptionError(f"encrypted payload has no {KEY_ID_METADATA} in its metadata")
        key_id = raw_id.decode("utf-8", "replace")
        aead = self._keys.get(key_id)
        if aead is None:
            raise PayloadDecryptionError(
                f'payload is encrypted with key id "{key_id}", which is not loaded (loaded: {", ".join(self._keys)}); '
                "add that key to the key list to read it",
                key_id,
            )
        data = payload.data
        if len(data) < _IV + _TAG:
            raise PayloadDecryptionError(f'encrypted payload (key "{key_id}") is truncated: {len(data)} bytes', key_id)
        try:
            plain = aead.decrypt(data[:_IV], data[_IV:], key_id.encode())
        except InvalidTag:
            raise PayloadDecryptionError(
                f'encrypted payload (key "{key_id}") failed authentication: it was altered, or "{key_id}" now names a different key', key_id
            ) from None
        return Payload.FromString(plain)

    @property
    def key_ids(self) -> Iterable[str]:
        return list(self._keys)
