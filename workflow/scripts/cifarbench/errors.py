"""The one exception type that means "the user's input is wrong": its message is the whole story."""

# A refusal is read on a terminal: longer than this, the rest is cut (a message can quote input).
MAX_MESSAGE_CHARS = 2000


class UserError(Exception):
    """Bad input (a corrupt download, a wrong checksum, a typo in the config, a missing GPU).

    The message is one line that names the file or config field and what is wrong with it;
    the scripts print it without a traceback. It stays one line whatever it quotes: a line
    break or other control character in a file name, a URL or a server's reply is shown
    escaped (`\\n`), never acted on by the terminal.
    """

    def __init__(self, message: str):
        super().__init__(one_line(str(message)))


def one_line(text: str) -> str:
    """`text` with its control characters escaped, cut to MAX_MESSAGE_CHARS."""
    shown = "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode() for char in text
    )
    if len(shown) > MAX_MESSAGE_CHARS:
        cut = len(shown) - MAX_MESSAGE_CHARS
        shown = f"{shown[:MAX_MESSAGE_CHARS]}... ({cut} more characters)"
    return shown


def brief(value) -> str:
    """A few words about an untrusted value for a message, never its whole repr: a pickle or a
    JSON file can hold an integer too long to print, or lists nested too deep to print."""
    if isinstance(value, bool | float | None):
        return repr(value)
    if isinstance(value, int):
        bits = value.bit_length()
        return repr(value) if bits <= 64 else f"an integer of {bits} bits"
    if isinstance(value, str | bytes):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    if isinstance(value, list | tuple | dict | set):
        return f"a {type(value).__name__} of length {len(value)}"
    if hasattr(value, "dtype") and hasattr(value, "shape"):  # a numpy array, without numpy
        return f"an array of {value.dtype}, shape {value.shape}"
    return f"a {type(value).__module__}.{type(value).__qualname__}"
