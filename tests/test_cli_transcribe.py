"""`nova transcribe` against one shared `nova up` (module-scoped, on the session's nats-server):
every output format, --realtime, several files, and its failure modes.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import pytest

from nova_client.streaming import GatewayError, stream_audio
from nova_common.audio_file import pcm_chunks, probe
from nova_common.messages import StartMessage
from nova_common.nats_server import EmbeddedNatsServer
from tests.processes import (
    NOVA,
    RUN_TIMEOUT,
    TWO_SENTENCES,
    RunningUp,
    in_fresh_loop,
    nova_env,
    nova_up,
    run_nova,
    unused_port,
)
from tests.speech import normalise, read_wav, resample, wer, write_wav

pytestmark = pytest.mark.slow


TIME_SRT = r"\d{2}:\d{2}:\d{2},\d{3}"
TIME_VTT = r"\d{2}:\d{2}:\d{2}\.\d{3}"


def seconds(stamp: str) -> float:
    h, m, rest = stamp.replace(",", ".").split(":")
    return int(h) * 3600 + int(m) * 60 + float(rest)


def parse_cues(body: str, time_re: str) -> list[tuple[str, float, float, str]]:
    """(number, start, end, text) per cue; asserts the layout of each block."""
    cues = []
    for block in body.strip().split("\n\n"):
        lines = block.split("\n")
        assert len(lines) >= 3, block
        number, span, text = lines[0], lines[1], "\n".join(lines[2:])
        match = re.fullmatch(rf"({time_re}) --> ({time_re})", span)
        assert match, span
        cues.append((number, seconds(match.group(1)), seconds(match.group(2)), text))
    return cues


@pytest.fixture(scope="module")
def up(nats_server: EmbeddedNatsServer, cli_dir: Path, cli_data_dir: Path) -> Iterator[RunningUp]:
    with nova_up(nats_server.url, cli_data_dir, cli_dir / "logs") as running:
        port = running.port
        assert re.search(rf"Nova Voice is up: http://127\.0\.0\.1:{port}/ ", running.process.stdout)
        assert f"ws://127.0.0.1:{port}/ws" in running.process.stdout
        assert f"NATS: {nats_server.url}" in running.process.stdout
        yield running


def transcribe(
    up: RunningUp, *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_nova("transcribe", *args, "--url", up.ws_url, env=env or nova_env(Path(os.devnull)))


# --------------------------------------------------------------------------- nova up + transcribe


def test_transcribe_text(up: RunningUp, two_sentences_wav: Path) -> None:
    result = transcribe(up, two_sentences_wav)  # --format text is the default
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert wer(TWO_SENTENCES, lines) <= 0.25, lines


def test_transcribe_realtime_is_paced_like_a_microphone(
    up: RunningUp, two_sentences_wav: Path
) -> None:
    audio, rate, _ = read_wav(two_sentences_wav)
    duration = len(audio) / rate
    began = time.monotonic()
    result = transcribe(up, two_sentences_wav, "--realtime")
    elapsed = time.monotonic() - began
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2, result.stdout
    # A paced stream cannot end before the audio has played (a lower bound: noise only adds).
    assert elapsed >= duration * 0.95, (elapsed, duration)


def test_transcribe_jsonl(up: RunningUp, two_sentences_wav: Path) -> None:
    result = transcribe(up, two_sentences_wav, "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["seq"] for r in records] == [0, 1], records
    for record in records:
        assert {"seq", "start", "end", "text", "language"} <= record.keys()
        assert 0 <= record["start"] < record["end"], record
        assert record["language"] == "en", record
        assert record["file"] == str(two_sentences_wav)
    assert records[0]["end"] <= records[1]["start"], records
    assert wer(TWO_SENTENCES, [r["text"] for r in records]) <= 0.25, records


def test_transcribe_jsonl_with_word_times(up: RunningUp, two_sentences_wav: Path) -> None:
    result = transcribe(up, two_sentences_wav, "--format", "jsonl", "--words")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 2, records
    for record in records:
        words = record["words"]
        assert normalise(" ".join(w["word"] for w in words)) == normalise(record["text"])
        times = [t for w in words for t in (w["start"], w["end"])]
        assert times == sorted(times) and record["start"] - 0.05 <= times[0], record
        assert times[-1] <= record["end"] + 0.05, record
    assert "words" not in json.loads(
        transcribe(up, two_sentences_wav, "--format", "jsonl").stdout.splitlines()[0]
    )


def test_transcribe_srt(up: RunningUp, two_sentences_wav: Path) -> None:
    result = transcribe(up, two_sentences_wav, "--format", "srt")
    assert result.returncode == 0, result.stderr
    assert re.match(rf"1\n00:00:00,\d{{3}} --> {TIME_SRT}\n", result.stdout), result.stdout
    cues = parse_cues(result.stdout, TIME_SRT)
    assert [c[0] for c in cues] == ["1", "2"], result.stdout
    assert all(start < end for _, start, end, _ in cues), cues
    assert cues[0][2] <= cues[1][1], cues
    assert wer(TWO_SENTENCES, [c[3] for c in cues]) <= 0.25, cues


def test_transcribe_vtt(up: RunningUp, two_sentences_wav: Path) -> None:
    result = transcribe(up, two_sentences_wav, "--format", "vtt")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("WEBVTT\n\n"), result.stdout
    cues = parse_cues(result.stdout.removeprefix("WEBVTT\n\n"), TIME_VTT)
    assert [c[0] for c in cues] == ["1", "2"], result.stdout
    assert all(start < end for _, start, end, _ in cues), cues
    assert wer(TWO_SENTENCES, [c[3] for c in cues]) <= 0.25, cues


def test_transcribe_several_files_into_output_dir(
    up: RunningUp, two_sentences_wav: Path, tmp_path: Path
) -> None:
    other = tmp_path / "second.wav"
    other.write_bytes(two_sentences_wav.read_bytes())
    refused = transcribe(up, two_sentences_wav, other, "--format", "srt")
    assert refused.returncode == 2 and "--output-dir" in refused.stderr, refused

    out_dir = tmp_path / "subs"
    result = transcribe(up, two_sentences_wav, other, "--format", "srt", "--output-dir", out_dir)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out_dir.iterdir()) == ["second.srt", "two.srt"]
    for path in out_dir.iterdir():
        assert [c[0] for c in parse_cues(path.read_text(), TIME_SRT)] == ["1", "2"]


def test_transcribe_missing_file(up: RunningUp, tmp_path: Path) -> None:
    missing = tmp_path / "nope.wav"
    result = transcribe(up, missing)
    assert result.returncode != 0
    assert "no such file" in result.stderr and str(missing) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""


def test_transcribe_missing_file_does_not_stop_the_others(
    up: RunningUp, two_sentences_wav: Path, tmp_path: Path
) -> None:
    result = transcribe(up, tmp_path / "nope.wav", two_sentences_wav)
    assert result.returncode == 1
    assert "no such file" in result.stderr, result.stderr
    assert len(result.stdout.splitlines()) == 2, result.stdout


def test_transcribe_a_4khz_file(up: RunningUp, two_sentences_wav: Path, tmp_path: Path) -> None:
    """The gateway takes 8000–192000 Hz; the client resamples a slower file to 16 kHz itself."""
    audio, rate, _ = read_wav(two_sentences_wav)
    slow = write_wav(tmp_path / "slow.wav", resample(audio, rate, 4000), 4000)
    result = transcribe(up, slow)
    assert result.returncode == 0, result.stderr
    assert "sample_rate" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    assert wer(TWO_SENTENCES, lines) <= 0.5, lines


def test_transcribe_refused_session_does_not_stop_the_others(
    up: RunningUp, two_sentences_wav: Path, tmp_path: Path
) -> None:
    """A session the gateway refuses fails its file; the next file still gets its own try."""
    other = tmp_path / "second.wav"
    other.write_bytes(two_sentences_wav.read_bytes())
    result = transcribe(up, two_sentences_wav, other, "--language", "xx")
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr, result.stderr
    refusals = [line for line in result.stderr.splitlines() if "refused the session" in line]
    assert len(refusals) == 2, result.stderr
    assert str(two_sentences_wav) in refusals[0] and str(other) in refusals[1], refusals
    assert all("unsupported_language" in line for line in refusals), refusals
    assert result.stdout == ""


def test_transcribe_not_audio(up: RunningUp, tmp_path: Path) -> None:
    text_file = tmp_path / "notes.txt"
    text_file.write_text("this is not audio\n" * 20)
    result = transcribe(up, text_file)
    assert result.returncode != 0
    assert str(text_file) in result.stderr and "cannot read audio" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def test_transcribe_unreachable_gateway(two_sentences_wav: Path) -> None:
    url = f"ws://127.0.0.1:{unused_port()}/ws"
    result = run_nova(
        "transcribe", two_sentences_wav, "--url", url, env=nova_env(Path(os.devnull)), timeout=120
    )
    assert result.returncode != 0
    assert "cannot reach" in result.stderr and url in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def write_adts(source: Path, target: Path) -> Path:
    """AAC in ADTS: FFmpeg only estimates its duration (from the bitrate), and too short."""
    with av.open(str(source)) as inp, av.open(str(target), "w", format="adts") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        resampler = av.AudioResampler(format=stream.format.name, layout="mono", rate=16000)
        for frame in inp.decode(audio=0):
            for piece in resampler.resample(frame):
                piece.pts = None
                out.mux(stream.encode(piece))
        out.mux(stream.encode(None))
    return target


def test_transcribe_progress_bar_on_a_terminal(
    up: RunningUp, two_sentences_wav: Path, tmp_path: Path
) -> None:
    """With stderr on a terminal the progress bar is drawn; a file whose container under-states
    its duration (ADTS AAC) must not break it."""
    for path in (two_sentences_wav, write_adts(two_sentences_wav, tmp_path / "two.aac")):
        master, slave = pty.openpty()
        # A fresh pty is 0 columns wide, and tqdm draws nothing into that.
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
        chunks: list[bytes] = []

        def drain(fd: int = master, sink: list[bytes] = chunks) -> None:
            with contextlib.suppress(OSError):  # EIO once the child closes the terminal
                while data := os.read(fd, 4096):
                    sink.append(data)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        try:
            proc = subprocess.Popen(
                [str(NOVA), "transcribe", str(path), "--url", up.ws_url],
                env=nova_env(Path(os.devnull)),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=slave,
                start_new_session=True,
            )
            os.close(slave)
            try:
                stdout, _ = proc.communicate(timeout=RUN_TIMEOUT)
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            reader.join(10)
        finally:
            os.close(master)
        terminal = b"".join(chunks).decode("utf-8", "replace")
        assert proc.returncode == 0, (path, terminal)
        assert "Traceback" not in terminal, terminal
        assert "audio sent" in terminal, terminal
        lines = stdout.decode().splitlines()
        assert len(lines) == 2, (path, stdout, terminal)


def test_client_callback_failure_ends_the_session(up: RunningUp, two_sentences_wav: Path) -> None:
    """A raising callback in the sender must end `stream_audio`, not leave it waiting forever."""

    def on_sent(seconds: float) -> None:
        if seconds > 1.0:
            raise RuntimeError("progress display broke")

    async def go() -> str:
        info = probe(two_sentences_wav)
        start = StartMessage(sample_rate=info.sample_rate, channels=info.channels)
        chunks = pcm_chunks(two_sentences_wav, info)
        with pytest.raises(GatewayError) as caught:
            await asyncio.wait_for(stream_audio(up.ws_url, start, chunks, on_sent=on_sent), 60)
        return str(caught.value)

    message = in_fresh_loop(go)
    assert "progress display broke" in message, message
