"""A plugin whose hook name is misspelled: ``sbts_reader`` instead of ``sbts_readers``."""

from sbts.core.api import hookimpl


@hookimpl
def sbts_reader():
    return []
