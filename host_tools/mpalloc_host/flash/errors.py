"""The one error type of `mpalloc flash`: its message says what went wrong and what to do."""


class FlashError(Exception):
    """Flashing or verifying failed; nothing half-done is reported as success."""
