"""Units shared by the library."""

MB = 1 << 20  # bytes in a mebibyte: the "MB" of every figure and message
