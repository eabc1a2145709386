"""English is the source language: fill its catalog with each message as written.

Run by `make translations` after `pybabel update`, so that the English catalog, like the
Spanish one, holds a translation for every message (tests/test_i18n.py checks both).
"""

import os

from babel.messages.pofile import read_po, write_po

PATH = os.path.join(os.path.dirname(__file__), "en", "LC_MESSAGES", "messages.po")

with open(PATH, "rb") as f:
    catalog = read_po(f, locale="en")
for message in catalog:
    if not message.id:
        continue
    if isinstance(message.id, tuple):
        if not all(message.string):
            message.string = (message.id[0], message.id[1])
    elif not message.string:
        message.string = message.id
    message.flags.discard("fuzzy")
with open(PATH, "wb") as f:
    write_po(f, catalog, width=100, omit_header=False, sort_output=True)
