// Runs on the audio rendering thread: mixes the input to mono, converts it to PCM16
// little-endian and posts one ArrayBuffer per `frameSamples` samples (the page sends each as a
// binary WebSocket frame). Converting here keeps the main thread's work to one send per frame.

class PcmCapture extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const wanted = options.processorOptions && options.processorOptions.frameSamples;
    this.frameSamples = Math.max(128, Math.floor(wanted || sampleRate / 20));
    this.frame = new Int16Array(this.frameSamples);
    this.filled = 0;
    this.peak = 0;
  }

  process(inputs) {
    const input = inputs[0];
    // No input connected (yet, or any more): nothing to send, but stay alive.
    if (!input || input.length === 0) return true;
    const channels = input.length;
    const n = input[0].length;
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let c = 0; c < channels; c++) s += input[c][i];
      s /= channels;
      if (s > 1) s = 1;
      else if (s < -1) s = -1;
      const v = s < 0 ? s * 0x8000 : s * 0x7fff;
      const a = v < 0 ? -v : v;
      if (a > this.peak) this.peak = a;
      this.frame[this.filled++] = v;
      if (this.filled === this.frameSamples) {
        // Int16Array is in the platform's byte order: every browser platform is little-endian.
        const out = this.frame.buffer;
        this.port.postMessage({ pcm: out, peak: this.peak / 0x8000 }, [out]);
        this.frame = new Int16Array(this.frameSamples);
        this.filled = 0;
        this.peak = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-capture", PcmCapture);
