"""Clients of the gateway: file decoding, the streaming WebSocket client, output formats."""
