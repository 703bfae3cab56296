"""Gateway access: API keys, signed tokens, the middleware that checks them, and per-key limits."""
