"""The core's user-facing errors: one base class, one not-found error.

``UserError``: something the person who asked can fix or must know; its text is the message shown to them
(German, or an English message id the portal translates, as each subclass documents). ``NotFound``: the
object does not exist *for this tenant*; missing and foreign objects look the same, and the portal answers
404 for every one of them through a single error handler (``portal.create_app``), so views need not catch it.
Subclasses keep their former built-in base as a second base, so ``except ValueError`` still catches what it did.
"""


class UserError(Exception):
    """An error whose text is for the user."""


class NotFound(UserError, LookupError):
    """Missing, or belongs to another tenant: answered with 404 either way."""
