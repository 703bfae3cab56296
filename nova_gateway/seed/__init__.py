"""The seed's protocol on ``/ws/v0``, for the original Nova Voice desktop client."""
