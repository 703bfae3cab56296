"""`nova`: one entry point, one subcommand per process or client."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nova_common.logging import configure_logging
from nova_common.settings import ConfigError, Settings, load_settings


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", metavar="FILE", help="TOML settings file (or NOVA_CONFIG)")
    common.add_argument("--nats-url", help="NATS server URL (or NOVA_NATS_URL)")
    common.add_argument("--data-dir", help="where models and NATS data live (or NOVA_DATA_DIR)")
    common.add_argument("--log-level", help="debug, info, warning, error")

    parser = argparse.ArgumentParser(
        prog="nova", description="Nova Voice: real-time speech-to-text on NATS JetStream"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", parents=[common], help="everything on one machine")
    up.add_argument("--port", type=int, help="gateway port (default 8765)")
    up.add_argument("--host", help="gateway bind address (default 127.0.0.1)")
    up.add_argument("--model", help="Whisper model: name, offline package or directory")

    gw = sub.add_parser("gateway", parents=[common], help="the WebSocket gateway only")
    gw.add_argument("--port", type=int)
    gw.add_argument("--host")

    stt = sub.add_parser("stt", parents=[common], help="one speech-to-text worker")
    stt.add_argument("--model")
    stt.add_argument("--device", help="cpu or cuda")
    stt.add_argument("--batch-size", type=int)
    stt.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")

    mt = sub.add_parser("mt", parents=[common], help="one translation worker")
    mt.add_argument(
        "--mt-model",
        dest="mt_models",
        action="append",
        metavar="MODEL",
        help="CTranslate2 model name or directory (repeatable; default: all installed)",
    )
    mt.add_argument("--mt-batch-size", type=int)
    mt.add_argument("--metrics-port", type=int, help="serve Prometheus metrics on this port")

    sub.add_parser("init", parents=[common], help="create streams and consumers, then exit")

    dlq = sub.add_parser(
        "dlq", parents=[common], help="dead letters: list, show, replay (ls | show ID | replay)"
    )
    dlq.add_argument("action", choices=["ls", "show", "replay"])
    dlq.add_argument("ids", nargs="*", type=int, metavar="ID", help="dead letter ids (from ls)")
    dlq.add_argument("--all", dest="every", action="store_true", help="replay: every one")
    dlq.add_argument("--json", action="store_true", help="ls: one JSON array")

    nats_config = sub.add_parser(
        "nats-config",
        parents=[common],
        help="per-role NATS users for nats-server: print the authorization block, or make keys",
    )
    nats_config.add_argument("--prefix", help="subject prefix (default: nats.subject_prefix)")
    nats_config.add_argument(
        "--out", type=Path, metavar="DIR", help="make a seed per role and a server config there"
    )

    models = sub.add_parser(
        "models", parents=[common], help="list the models Nova can use, or pull one"
    )
    models.add_argument("action", nargs="?", choices=["list", "pull"], default="list")
    models.add_argument(
        "name", nargs="?", help="for pull: a translation model, e.g. nllb-200-distilled-600M"
    )
    models.add_argument("--json", action="store_true", help="machine-readable output")

    tr = sub.add_parser("transcribe", parents=[common], help="stream audio files through a gateway")
    tr.add_argument("files", nargs="+", type=Path, metavar="FILE")
    tr.add_argument("--url", default="ws://127.0.0.1:8765/ws", help="gateway WebSocket URL")
    tr.add_argument(
        "--language",
        default="auto",
        help="auto; a language code such as en; or a list to detect among, en,de",
    )
    tr.add_argument("--task", default="transcribe", choices=["transcribe", "translate"])
    tr.add_argument("--format", default="text", choices=["text", "jsonl", "srt", "vtt"])
    tr.add_argument(
        "--translate-to",
        action="append",
        default=[],
        metavar="LANG[,LANG]",
        help="also translate each final, e.g. es or es,de (repeatable)",
    )
    tr.add_argument("--realtime", action="store_true", help="pace the audio like a microphone")
    tr.add_argument(
        "--words", action="store_true", help='word times in --format jsonl ("words": [...])'
    )
    tr.add_argument("--output-dir", type=Path, help="write one file per input here")
    _api_key_argument(tr)

    # The desktop clients share where their audio comes from.
    live = argparse.ArgumentParser(add_help=False)
    live.add_argument("--url", default="ws://127.0.0.1:8765/ws", help="gateway WebSocket URL")
    live.add_argument(
        "--input", type=Path, metavar="FILE", help="a file, paced at real time, not the microphone"
    )
    live.add_argument(
        "--device",
        metavar="N",
        help="microphone: a number from --list-devices, or part of its name",
    )
    live.add_argument("--list-devices", action="store_true", help="list the microphones and exit")
    _api_key_argument(live)
    live.add_argument(
        "--language",
        default="auto",
        help="auto; a language code such as en; or en,de to detect among",
    )

    ls = sub.add_parser(
        "listen", parents=[common, live], help="live subtitles in the terminal or an overlay window"
    )
    ls.add_argument(
        "--system-audio", action="store_true", help="what this machine plays, not the microphone"
    )
    ls.add_argument(
        "--translate-to",
        action="append",
        default=[],
        metavar="LANG[,LANG]",
        help="a translation under each line, e.g. es or es,de (repeatable)",
    )
    ls.add_argument(
        "--format",
        choices=["text", "jsonl"],
        default="text",
        help="text (live on a terminal; finals only when piped) or jsonl (finals and translations)",
    )
    ls.add_argument("--overlay", action="store_true", help="an always-on-top subtitle window")

    ty = sub.add_parser("type", parents=[common, live], help="voice typing into the focused window")
    ty.add_argument(
        "--toggle", action="store_true", help="pause or resume a running `nova type`, then exit"
    )
    ty.add_argument(
        "--finals-only",
        action="store_true",
        help="type only text that will not change (no tail corrected in place)",
    )
    ty.add_argument(
        "--hotkey",
        help="global key that pauses and resumes listening (default ctrl+alt+space; none: no hotkey)",
    )
    ty.add_argument(
        "--typer",
        choices=["auto", "xdotool", "wtype", "ydotool", "pynput"],
        default="auto",
        help="how keystrokes are sent (auto: xdotool on X11, wtype or ydotool on Wayland)",
    )
    ty.add_argument(
        "--log-finals", type=Path, metavar="FILE", help="also write each final as a JSON line here"
    )
    from nova_cli.keys import add_keys_arguments

    add_keys_arguments(
        sub.add_parser(
            "keys", parents=[common], help="the gateway's API keys: add NAME | ls | rm NAME"
        )
    )
    from nova_cli.bench import add_bench_arguments

    bench = sub.add_parser("bench", parents=[common], help="the real-time benchmark (--all: all)")
    add_bench_arguments(bench)
    return parser


def _api_key_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help="API key or session token for a gateway that wants one (or NOVA_API_KEY)",
    )


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    def pick(**fields: Any) -> dict[str, Any]:
        return {k: v for k, v in fields.items() if v is not None}

    return {
        "data_dir": getattr(args, "data_dir", None),
        "log_level": getattr(args, "log_level", None),
        "api_key": getattr(args, "api_key", None),
        "nats": pick(url=getattr(args, "nats_url", None)),
        "gateway": pick(host=getattr(args, "host", None)),
        "stt": pick(
            model=getattr(args, "model", None),
            device=getattr(args, "device", None),
            batch_size=getattr(args, "batch_size", None),
        ),
        "mt": pick(
            models=tuple(args.mt_models) if getattr(args, "mt_models", None) else None,
            batch_size=getattr(args, "mt_batch_size", None),
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings(config_file=args.config, overrides=_overrides(args))
    except ConfigError as exc:
        print(f"nova: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level, settings.log_format)
    try:
        return asyncio.run(_dispatch(args, settings))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from nova_common.nats_conn import NatsUnavailable
        from nova_common.nats_server import NatsServerError
        from nova_common.nats_users import NatsUsersError
        from nova_mt.models import MtModelNotAvailable
        from nova_stt.models import ModelNotAvailable

        known = (
            NatsUnavailable | NatsServerError | NatsUsersError | ModelNotAvailable
            | MtModelNotAvailable
        )  # fmt: skip
        from nova_gateway.auth.errors import ACCESS_ERRORS

        if isinstance(exc, known | ACCESS_ERRORS | OSError):
            print(f"nova {args.command}: {exc}", file=sys.stderr)
            return 1
        raise


async def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    command = args.command
    if command == "up":
        from nova_cli.services import run_up

        return await run_up(settings, port=args.port)
    if command == "gateway":
        from nova_cli.services import run_gateway

        return await run_gateway(settings, port=args.port)
    if command == "stt":
        from nova_cli.services import run_stt

        return await run_stt(settings, metrics_port=args.metrics_port)
    if command == "mt":
        from nova_cli.services import run_mt

        return await run_mt(settings, metrics_port=args.metrics_port)
    if command == "init":
        from nova_cli.services import run_init

        return await run_init(settings)
    if command == "dlq":
        from nova_cli.dlq import run_dlq

        return await run_dlq(settings, args.action, args.ids, every=args.every, as_json=args.json)
    if command == "nats-config":
        from nova_cli.nats_config import run_nats_config

        return run_nats_config(settings, prefix=args.prefix, out=args.out)
    if command == "models":
        if args.action == "pull":
            return _pull(settings, args.name)
        return _models(settings, as_json=args.json)
    if command == "transcribe":
        from nova_cli.transcribe import run_transcribe

        return await run_transcribe(
            args.files,
            url=args.url,
            language=args.language,
            task=args.task,
            fmt=args.format,
            realtime=args.realtime,
            words=args.words,
            output_dir=args.output_dir,
            translate_to=_codes(args.translate_to),
            api_key=settings.api_key,
        )
    if command == "listen":
        from nova_cli.listen import run_listen

        return await run_listen(
            url=args.url,
            input_file=args.input,
            device=args.device,
            list_devices=args.list_devices,
            system_audio=args.system_audio,
            language=args.language,
            translate_to=_codes(args.translate_to),
            fmt=args.format,
            overlay=args.overlay,
            api_key=settings.api_key,
        )
    if command == "type":
        from nova_cli.type import run_type

        return await run_type(
            url=args.url,
            input_file=args.input,
            device=args.device,
            list_devices=args.list_devices,
            language=args.language,
            toggle=args.toggle,
            finals_only=args.finals_only,
            hotkey=args.hotkey,
            typer=args.typer,
            log_finals=args.log_finals,
            api_key=settings.api_key,
        )
    if command == "keys":
        from nova_cli.keys import run_keys

        return run_keys(settings, args)
    if command == "bench":
        from nova_cli.bench import run_from_args

        return await asyncio.to_thread(run_from_args, args)
    raise AssertionError(command)


def _codes(values: list[str]) -> tuple[str, ...]:
    """``--translate-to es,de --translate-to fr`` → ("es", "de", "fr")."""
    return tuple(code.strip() for value in values for code in value.split(",") if code.strip())


def _models(settings: Settings, *, as_json: bool) -> int:
    import json

    from nova_mt.models import list_mt_models
    from nova_stt.models import list_models

    speech = list_models(settings.models_dir)
    translation = list_mt_models(settings.models_dir)
    if as_json:
        rows = [{"kind": "stt", **row.__dict__} for row in speech]
        rows += [{"kind": "mt", **row.__dict__} for row in translation]
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(name) for name in [*(r.name for r in speech), *(r.name for r in translation)])

    def show(rows: Sequence[Any]) -> None:
        for row in rows:
            mark = "✓" if row.available else " "
            print(f" {mark} {row.name:<{width}}  {row.source:<52}  {row.location}")

    print(f"speech-to-text models (default: {settings.stt.model}; set NOVA_STT_MODEL or --model)")
    show(speech)
    print("\ntranslation models (CTranslate2; used by `nova mt` when installed)")
    show(translation)
    print(
        f"   {'apertium':<{width}}  {'Debian rule-based pairs, e.g. apt-get install apertium-eng-spa':<52}  "
        f"{_apertium_pairs(settings)}"
    )
    return 0


def _apertium_pairs(settings: Settings) -> str:
    from nova_mt.apertium import ApertiumBackend

    backend = ApertiumBackend.discover(settings.mt.apertium_command)
    if backend is None:
        return "not installed"
    return ", ".join(f"{a}→{b}" for a, b in sorted(backend.pairs)) or "no pairs installed"


def _pull(settings: Settings, name: str | None) -> int:
    from nova_mt.models import CATALOG, pull_model

    if not name:
        print("nova models pull: name a model: " + ", ".join(e.name for e in CATALOG),
              file=sys.stderr)  # fmt: skip
        return 2
    path = pull_model(name, settings.models_dir)
    print(f"{name} is installed in {path}; `nova mt` and `nova up` use it from now on")
    return 0


if __name__ == "__main__":
    sys.exit(main())
