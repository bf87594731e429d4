"""What can go wrong for a source, as pages: an HTTP status and two texts.

Handlers raise ``SourceProblem(PROBLEM, **params)``; the error middleware
renders it in the source's language. Texts are message ids (English), marked
with ``N_`` for extraction and translated when rendered.
"""

from __future__ import annotations

from dataclasses import dataclass

from relay.server.i18n import N_


@dataclass(frozen=True)
class Problem:
    """One kind of refusal: its status and what the source is told."""

    status: int
    title: str
    explanation: str
    nothing_stored: bool = True
    """Whether the page says that nothing was stored (true for every refused submission)."""
    retry_after_seconds: int | None = None
    """Sent as ``Retry-After`` when set (a relay too busy right now)."""


EMPTY_SUBMISSION = Problem(
    400,
    N_("Nothing to send"),
    N_("Your message is empty and no file is attached. Write a message or attach a file, "
       "then send again."),
)
INVALID_TEXT = Problem(
    400,
    N_("Your message could not be read"),
    N_("Your message did not arrive as valid UTF-8 text. Copy your text into the form again "
       "and resend it."),
)
MALFORMED_FORM = Problem(
    400,
    N_("The form could not be read"),
    N_("What arrived was not a complete form, perhaps because the connection broke. "
       "Please send again."),
)
TOO_MANY_FILES = Problem(
    400,
    N_("Too many files"),
    N_("You can attach at most %(count)s files to one message. Send fewer files, or send "
       "them in several messages."),
)
MESSAGE_TOO_LONG = Problem(
    413,
    N_("Your message is too long"),
    N_("A message can be at most %(limit)s. Shorten it, or save it as a file and attach it."),
)
SUBMISSION_TOO_LARGE = Problem(
    413,
    N_("Too much to send at once"),
    N_("One message with its files can be at most %(limit)s. Send fewer or smaller files, "
       "or send them in several messages."),
)
UPLOAD_TOO_SLOW = Problem(
    408,
    N_("Sending took too long"),
    N_("The upload took longer than this relay allows, so it was stopped. Please try again, "
       "perhaps with fewer or smaller files in each message."),
)
STORAGE_FULL = Problem(
    507,
    N_("The relay cannot accept messages right now"),
    N_("It is running out of storage space. Please try again later."),
)
RELAY_BUSY = Problem(
    503,
    N_("The relay cannot accept messages right now"),
    N_("Too many messages are arriving at this moment. Please wait a minute and send "
       "again."),
)
DERIVATION_BUSY = Problem(
    503,
    N_("The relay is busy"),
    N_("Too many people are reading replies at this moment, so your replies were not "
       "opened. Please try again in a minute."),
    nothing_stored=False,
    retry_after_seconds=60,
)
CANNOT_ENCRYPT = Problem(
    503,
    N_("The relay cannot accept messages right now"),
    N_("It cannot encrypt messages for our team at this moment. Please try again later."),
)
SERVER_SEALING_OFF = Problem(
    403,
    N_("This form needs JavaScript"),
    N_("This relay accepts only messages that your browser encrypts. Turn on JavaScript "
       "(in Tor Browser: Settings → Privacy & Security → Security Level: “Safer”), then "
       "reload the form."),
)
NOT_FOUND = Problem(
    404,
    N_("Page not found"),
    N_("There is no page at this address."),
    nothing_stored=False,
)
METHOD_NOT_ALLOWED = Problem(
    405,
    N_("This request is not possible here"),
    N_("This address does not accept that kind of request."),
    nothing_stored=False,
)
BAD_REQUEST = Problem(
    400,
    N_("The request could not be understood"),
    N_("Please go back to the form and try again."),
)
INTERNAL_ERROR = Problem(
    500,
    N_("Something went wrong"),
    N_("The relay could not complete your request. Please try again later."),
)

_BY_STATUS = {
    400: BAD_REQUEST,
    404: NOT_FOUND,
    405: METHOD_NOT_ALLOWED,
    408: UPLOAD_TOO_SLOW,
    413: SUBMISSION_TOO_LARGE,
    507: STORAGE_FULL,
}


def problem_for_status(status: int) -> Problem:
    """The page for an HTTP error raised by aiohttp itself (404, 405, 413, ...)."""
    return _BY_STATUS.get(status, BAD_REQUEST if status < 500 else INTERNAL_ERROR)


class SourceProblem(Exception):
    """A refusal to show the source; ``params`` fill the explanation's placeholders.

    Parameters are formatted per language by the middleware: ``limit`` is a
    byte count shown as a size, ``count`` a plain number.
    """

    def __init__(self, problem: Problem, **params: int) -> None:
        super().__init__(problem.title)
        self.problem = problem
        self.params = params
