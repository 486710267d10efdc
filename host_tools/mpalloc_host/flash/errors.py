"""The one error type of `mpalloc flash` (errors.FlashError): its message says what went wrong
and what to do."""
from ..errors import FlashError  # noqa: F401
