"""The one exception type that means "the user's input is wrong": its message is the whole story."""


class UserError(Exception):
    """Bad input (a corrupt download, a wrong checksum, a typo in the config, a missing GPU).

    The message is one line that names the file or config field and what is wrong with it;
    the scripts print it without a traceback.
    """
