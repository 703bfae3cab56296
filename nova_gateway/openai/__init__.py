"""The OpenAI-compatible audio API under ``/v1`` on the gateway's port."""
