// Audio capture for the page: the microphone, or a shared tab's audio, through an AudioWorklet
// that hands over PCM16 frames at the AudioContext's own rate (the gateway resamples).

const FRAME_SECONDS = 0.05; // one binary frame per 50 ms of audio

export async function openCapture(kind, onFrame) {
  if (!window.isSecureContext || !navigator.mediaDevices) {
    throw new Error("The browser allows audio capture only on https:// or http://localhost; " +
      "open this page through one of those.");
  }
  let stream;
  if (kind === "tab") {
    if (!navigator.mediaDevices.getDisplayMedia) {
      throw new Error("This browser cannot share a tab's audio (try Chrome or Edge).");
    }
    stream = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: true });
    if (stream.getAudioTracks().length === 0) {
      stream.getTracks().forEach((t) => t.stop());
      throw new Error("The shared tab came without audio. Share again and tick " +
        "“Also share tab audio” (only tabs, not windows, can share audio in most browsers).");
    }
  } else {
    // Speech recognition wants the raw signal: the voice-call processing distorts it.
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false,
        autoGainControl: false },
    });
  }
  const audioTrack = stream.getAudioTracks()[0];
  // The device's own rate: the gateway resamples, and no browser resampler runs in between.
  const ctx = new AudioContext({ latencyHint: "interactive" });
  try {
    await ctx.audioWorklet.addModule(new URL("./audio-worklet.js", import.meta.url));
    const source = ctx.createMediaStreamSource(new MediaStream([audioTrack]));
    const node = new AudioWorkletNode(ctx, "pcm-capture", {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { frameSamples: Math.round(ctx.sampleRate * FRAME_SECONDS) },
    });
    node.port.onmessage = (e) => onFrame(e.data);
    source.connect(node);
    // Connected so the graph pulls it; its output is silence, so nothing is heard.
    node.connect(ctx.destination);
  } catch (err) {
    stream.getTracks().forEach((t) => t.stop());
    await ctx.close();
    throw err;
  }
  return {
    kind,
    ctx,
    stream,
    track: audioTrack,
    sampleRate: ctx.sampleRate,
    label: audioTrack.label || (kind === "tab" ? "shared tab" : "microphone"),
    close() {
      stream.getTracks().forEach((t) => t.stop());
      ctx.close().catch(() => {});
    },
  };
}
