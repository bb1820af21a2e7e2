"""How results, status lines and errors look in a notebook: one place for every display bundle.

Every bundle has ``text/html`` and ``text/plain``. :mod:`.html`, :mod:`.pictures`, :mod:`.progress`
and :mod:`.records` build them and know nothing of IPython; :mod:`.live` and :mod:`.fullsize` are
the live parts (a status line updated in place, full-size buttons), used by the notebook faces.
"""
