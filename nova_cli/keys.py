"""`nova keys add NAME | ls | rm NAME`: the gateway's API keys (stored hashed; shown once)."""

from __future__ import annotations

import argparse
import json
import sys
import time

from nova_common.settings import Settings
from nova_gateway.auth.keys import KeyLimits, KeyStore, KeyStoreError, StoredKey, keys_path

EXIT_USAGE = 2


def add_keys_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["add", "ls", "rm"])
    parser.add_argument("name", nargs="?", help="the key's name (add, rm)")
    limits = parser.add_argument_group("limits of the key (add; default: the access.* settings)")
    limits.add_argument(
        "--rate", type=float, metavar="X", help="audio seconds per second, over all its sessions"
    )
    limits.add_argument("--burst", type=float, metavar="S", help="audio seconds ahead of --rate")
    limits.add_argument(
        "--max-session-s", type=float, metavar="S", help="audio seconds in one session"
    )
    limits.add_argument("--max-sessions", type=int, metavar="N", help="sessions open at once")
    limits.add_argument("--max-frame-bytes", type=int, metavar="B", help="largest frame")
    parser.add_argument("--json", action="store_true", help="ls: one JSON array")


def run_keys(settings: Settings, args: argparse.Namespace) -> int:
    store = KeyStore(keys_path(settings.access.keys_file, settings.data_dir))
    if args.action == "ls":
        return _list(store, as_json=args.json)
    if not args.name:
        print(f"nova keys {args.action}: name the key", file=sys.stderr)
        return EXIT_USAGE
    if args.action == "rm":
        store.remove(args.name)
        print(f"removed key {args.name!r}: it and its tokens are refused from now on",
              file=sys.stderr)  # fmt: skip
        return 0
    try:
        limits = _limits(args)
    except ValueError as exc:
        print(f"nova keys add: {exc}", file=sys.stderr)
        return EXIT_USAGE
    key = store.add(args.name, limits)
    # The key alone on stdout (for scripts); it cannot be shown again.
    print(key)
    print(f"key {args.name!r} added to {store.path}; it is shown only this once: keep it "
          "(clients: --api-key or NOVA_API_KEY)", file=sys.stderr)  # fmt: skip
    return 0


def _limits(args: argparse.Namespace) -> KeyLimits:
    for flag in ("rate", "burst", "max_session_s", "max_sessions", "max_frame_bytes"):
        value = getattr(args, flag)
        if value is not None and value < 0:
            raise ValueError(f"--{flag.replace('_', '-')} may not be negative (0: no limit)")
    if args.burst is not None and args.burst < 1:
        raise ValueError("--burst must be at least 1 second")
    return KeyLimits(
        rate=args.rate,
        burst_s=args.burst,
        max_session_s=args.max_session_s,
        max_sessions=args.max_sessions,
        max_frame_bytes=args.max_frame_bytes,
    )


def _set_limits(key: StoredKey) -> dict[str, float | int]:
    """The limits the key sets itself (the rest are the gateway's defaults)."""
    own = (getattr(key.limits, name) for name in key.limits.__struct_fields__)
    return {
        name: value
        for name, value in zip(key.limits.__struct_fields__, own, strict=True)
        if value is not None
    }


def _row(key: StoredKey) -> dict[str, object]:
    return {"name": key.name, "id": key.key_id, "created": key.created, "limits": _set_limits(key)}


def _list(store: KeyStore, *, as_json: bool) -> int:
    try:
        keys = store.keys()
    except KeyStoreError as exc:
        print(f"nova keys ls: {exc}", file=sys.stderr)
        return 1
    if as_json:
        print(json.dumps([_row(k) for k in keys], indent=2))
        return 0
    if not keys:
        print(f"no API keys in {store.path}: the gateway is open, on loopback only",
              file=sys.stderr)  # fmt: skip
        return 0
    width = max(len(k.name) for k in keys)
    for key in keys:
        created = time.strftime("%Y-%m-%d %H:%M", time.localtime(key.created))
        limits = ", ".join(f"{k}={v:g}" for k, v in _set_limits(key).items())
        print(f"{key.name:<{width}}  nova_{key.key_id}_…  {created}  {limits or 'default limits'}")
    return 0
