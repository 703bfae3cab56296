"""The access errors that stop a command with a message for the operator (no traceback)."""

from __future__ import annotations

from nova_gateway.auth.access import AccessRefused
from nova_gateway.auth.keys import KeyStoreError
from nova_gateway.auth.secret import SecretError
from nova_gateway.auth.tls import TlsError

ACCESS_ERRORS = AccessRefused | KeyStoreError | SecretError | TlsError
