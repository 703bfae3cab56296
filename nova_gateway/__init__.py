"""The WebSocket gateway: sessions, resampling, VAD segmentation, ordered results."""
