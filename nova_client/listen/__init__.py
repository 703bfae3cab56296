"""`nova listen`: live subtitles from a session's events, on a terminal or in an overlay window."""
