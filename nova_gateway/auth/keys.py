"""API keys: made once, shown once, kept only as a salted scrypt hash in a JSON file.

A key reads ``nova_<id>_<secret>``: the id finds its record without trying every hash, the
secret (256 random bits) is checked against the record's scrypt hash. The file is re-read when
it changes, so `nova keys add|rm` takes effect on running gateways without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import time
from collections import OrderedDict
from pathlib import Path

import msgspec

KEY_PREFIX = "nova_"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_KEY = re.compile(r"nova_([0-9a-f]{12})_([A-Za-z0-9_-]{43})")
# scrypt with 16 MiB of memory: ~50 ms a check here. The secrets are random, so the cost only
# matters for a stolen file; verified keys are remembered (see KeyStore._verified).
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 1 << 14, 8, 1
_VERIFIED_CACHE = 1024


class KeyStoreError(ValueError):
    """A key operation that cannot be done; the message says why (shown to operators)."""


class KeyLimits(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A key's own limits; None: the gateway's default (``access.*``); 0: none."""

    rate: float | None = None
    burst_s: float | None = None
    max_session_s: float | None = None
    max_sessions: int | None = None
    max_frame_bytes: int | None = None


class StoredKey(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str
    key_id: str
    salt: str
    digest: str
    n: int = _SCRYPT_N
    r: int = _SCRYPT_R
    p: int = _SCRYPT_P
    created: float = 0.0
    limits: KeyLimits = msgspec.field(default_factory=KeyLimits)


class KeysFile(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    version: int = 1
    keys: tuple[StoredKey, ...] = ()


def _digest(secret: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(secret.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 << 20, dklen=32)


def looks_like_key(credential: str) -> bool:
    """An API key rather than a signed token (which never starts so)."""
    return credential.startswith(KEY_PREFIX)


def keys_path(keys_file: str | None, data_dir: str | Path) -> Path:
    """Where the keys are kept: ``access.keys_file``, else in the data dir."""
    return Path(keys_file) if keys_file else Path(data_dir) / "access" / "keys.json"


class KeyStore:
    def __init__(self, path: Path | None) -> None:
        # None: no keys file at all (a gateway built without settings: open, loopback only).
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._keys: dict[str, StoredKey] = {}  # by key id
        # sha256 of a presented key -> its id, for keys already checked against this file.
        self._verified: OrderedDict[bytes, str] = OrderedDict()

    # ------------------------------------------------------------------ reading

    def keys(self) -> list[StoredKey]:
        self._refresh()
        return sorted(self._keys.values(), key=lambda k: k.name)

    def __bool__(self) -> bool:
        self._refresh()
        return bool(self._keys)

    def by_name(self, name: str) -> StoredKey | None:
        return next((k for k in self.keys() if k.name == name), None)

    def verify(self, presented: str) -> StoredKey | None:
        """The key ``presented`` is, or None (unknown, malformed, or removed)."""
        self._refresh()
        match = _KEY.fullmatch(presented)
        if match is None:
            return None
        stored = self._keys.get(match[1])
        if stored is None:
            return None
        fingerprint = hashlib.sha256(presented.encode()).digest()
        if self._verified.get(fingerprint) == stored.key_id:
            self._verified.move_to_end(fingerprint)
            return stored
        digest = _digest(match[2], bytes.fromhex(stored.salt), stored.n, stored.r, stored.p)
        if not hmac.compare_digest(digest, bytes.fromhex(stored.digest)):
            return None
        self._verified[fingerprint] = stored.key_id
        if len(self._verified) > _VERIFIED_CACHE:
            self._verified.popitem(last=False)
        return stored

    def _refresh(self) -> None:
        if self.path is None:
            return
        try:
            st = self.path.stat()
        except FileNotFoundError:
            stamp = None
        else:
            stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if stamp == self._stamp and (stamp is not None or not self._keys):
            return
        loaded = self._load()
        self._keys = {k.key_id: k for k in loaded.keys}
        self._stamp = stamp
        self._verified.clear()

    def _load(self) -> KeysFile:
        if self.path is None:
            return KeysFile()
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return KeysFile()
        except OSError as exc:
            raise KeyStoreError(f"cannot read the keys file {self.path}: {exc}") from exc
        try:
            return msgspec.json.decode(raw, type=KeysFile)
        except msgspec.DecodeError as exc:
            raise KeyStoreError(f"the keys file {self.path} is damaged: {exc}") from exc

    # ------------------------------------------------------------------ changing

    def add(self, name: str, limits: KeyLimits) -> str:
        """A new key named ``name``; the key itself is returned once and never stored."""
        if not _NAME.fullmatch(name):
            raise KeyStoreError(
                f"invalid key name {name!r}: 1-64 letters, digits, '.', '_' or '-', "
                "starting with a letter or digit"
            )
        current = self._load()
        if any(k.name == name for k in current.keys):
            raise KeyStoreError(
                f"a key named {name!r} exists: remove it first (nova keys rm {name})"
            )
        key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        salt = secrets.token_bytes(16)
        stored = StoredKey(
            name=name,
            key_id=key_id,
            salt=salt.hex(),
            digest=_digest(secret, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P).hex(),
            created=time.time(),
            limits=limits,
        )
        self._write(KeysFile(keys=(*current.keys, stored)))
        return f"{KEY_PREFIX}{key_id}_{secret}"

    def remove(self, name: str) -> None:
        current = self._load()
        kept = tuple(k for k in current.keys if k.name != name)
        if len(kept) == len(current.keys):
            raise KeyStoreError(f"no key named {name!r}")
        self._write(KeysFile(keys=kept))

    def _write(self, content: KeysFile) -> None:
        if self.path is None:
            raise KeyStoreError("this gateway has no keys file")
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        # Created 0600 before anything is written: the hashes are no one else's business.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(msgspec.json.format(msgspec.json.encode(content)) + b"\n")
        # One rename: a gateway reading the file sees the old keys or the new, never half.
        os.replace(tmp, self.path)
