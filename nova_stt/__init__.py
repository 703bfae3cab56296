"""Speech-to-text stage: faster-whisper behind a JetStream pull consumer."""
