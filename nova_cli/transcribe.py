"""`nova transcribe FILE…`: stream files through a running gateway and print the finals (and
their translations with ``--translate-to``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TextIO

from tqdm import tqdm

from nova_client.formats import FinalWriter, Format
from nova_client.streaming import (
    GatewayError,
    GatewayRefused,
    GatewayUnreachable,
    SessionRefused,
    start_message,
    stream_audio,
)
from nova_common.audio_file import AudioFileError, AudioInfo, pcm_chunks, probe
from nova_common.messages import (
    ErrorEvent,
    FinalEvent,
    NoticeEvent,
    SessionStarted,
    StartMessage,
    Task,
    TranslationEvent,
)


async def run_transcribe(
    files: list[Path],
    *,
    url: str,
    language: str,
    task: Task,
    fmt: Format,
    realtime: bool,
    output_dir: Path | None,
    translate_to: tuple[str, ...] = (),
    words: bool = False,
    api_key: str | None = None,
) -> int:
    if len(files) > 1 and fmt in ("srt", "vtt") and output_dir is None:
        print(f"nova transcribe: --format {fmt} with several files needs --output-dir",
              file=sys.stderr)  # fmt: skip
        return 2
    status = 0
    for path in files:
        try:
            info = probe(path)
        except AudioFileError as exc:
            print(f"nova transcribe: {exc}", file=sys.stderr)
            status = 1
            continue
        start = start_message(
            language,
            task=task,
            sample_rate=info.sample_rate,
            channels=info.channels,
            translate_to=translate_to,
            partials=False,  # only finals are printed: partial windows would be wasted work
            word_timestamps=words,
        )
        try:
            ok = await _transcribe_file(
                path, info, url=url, start=start, fmt=fmt, realtime=realtime,
                output_dir=output_dir, api_key=api_key,
            )  # fmt: skip
        except (GatewayUnreachable, GatewayRefused) as exc:
            # No connection at all, or none for this credential: other files would fare no better.
            print(f"nova transcribe: {exc}", file=sys.stderr)
            return 1
        except GatewayError as exc:
            # This session was refused or broke off: a failure of this file only.
            print(f"nova transcribe: {path}: {exc}", file=sys.stderr)
            ok = False
        if not ok:
            status = 1
    return status


def _output_path(output_dir: Path | None, path: Path, fmt: Format) -> Path | None:
    if output_dir is None:
        return None
    output_dir.mkdir(parents=True, exist_ok=True)
    return output_dir / f"{path.stem}.{'txt' if fmt == 'text' else fmt}"


async def _transcribe_file(
    path: Path,
    info: AudioInfo,
    *,
    url: str,
    start: StartMessage,
    fmt: Format,
    realtime: bool,
    output_dir: Path | None,
    api_key: str | None = None,
) -> bool:
    """Stream one file and write its finals; False when the file, a segment or a translation
    failed."""
    out_path = _output_path(output_dir, path, fmt)
    out: TextIO = out_path.open("w") if out_path is not None else sys.stdout
    # Made once the gateway says which targets it normalised the asked ones to: translations
    # are named by those.
    writer: FinalWriter | None = None
    bar = tqdm(
        total=round(info.duration, 1) if info.duration else None,
        unit="s",
        desc=path.name,
        disable=not sys.stderr.isatty(),
        file=sys.stderr,
        # {total_fmt}, not {total:.1f}: tqdm sets total to None when it is unknown, and also once
        # n overtakes it (containers such as ADTS only estimate their duration).
        bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total_fmt}s audio sent {postfix}",
    )
    finals = translations = 0

    def progress() -> None:
        more = f", {translations} translations" if start.translate_to else ""
        bar.set_postfix_str(f"{finals} finals{more}", refresh=False)

    def on_started(started: SessionStarted) -> None:
        nonlocal writer
        writer = FinalWriter(out, fmt, source=str(path), targets=started.translate_to)

    def on_final(final: FinalEvent) -> None:
        nonlocal finals
        finals += 1
        progress()
        assert writer is not None  # finals only come after `started`
        writer.write(final)

    def on_translation(event: TranslationEvent) -> None:
        nonlocal translations
        translations += 1
        progress()
        assert writer is not None
        writer.translation(event)

    def on_error(error: ErrorEvent) -> None:
        bar.write(f"nova transcribe: {path.name}: {error.code}: {error.reason}", file=sys.stderr)
        if writer is not None and error.seq is not None and error.language is not None:
            writer.translation_failed(error.seq, error.language)

    noticed: set[tuple[str, str]] = set()

    def on_notice(notice: NoticeEvent) -> None:
        # Informational only: never a failure. The gateway may repeat one (at start and at stop).
        if (notice.code, notice.reason) not in noticed:
            noticed.add((notice.code, notice.reason))
            bar.write(f"nova transcribe: note: {path.name}: {notice.reason}", file=sys.stderr)

    def on_sent(seconds: float) -> None:
        bar.update(round(seconds, 1) - bar.n)

    try:
        result = await stream_audio(
            url,
            start,
            pcm_chunks(path, info),
            realtime=realtime,
            on_final=on_final,
            on_error=on_error,
            on_sent=on_sent,
            on_notice=on_notice,
            on_started=on_started,
            on_translation=on_translation,
            api_key=api_key,
        )
    except (GatewayUnreachable, SessionRefused):
        if out_path is not None:  # nothing was transcribed: leave no empty output file behind
            out.close()
            out_path.unlink(missing_ok=True)
        raise
    finally:
        bar.close()
        # Also when the session broke off: finals still waiting for translations are kept.
        if writer is not None:
            writer.finish()
        if out_path is not None:
            out.close()
    ok = not result.errors and not result.translation_errors
    if start.translate_to and not result.translate_to:
        print(f"nova transcribe: {path.name}: this gateway does not translate; "
              "--translate-to was ignored", file=sys.stderr)  # fmt: skip
        ok = False
    if result.input_error is not None:
        print(f"nova transcribe: {result.input_error}", file=sys.stderr)
        return False
    return ok
