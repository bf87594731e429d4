"""What the form page hands to the browser-sealing script (relay/web/js/app.js).

Three JSON blocks (``type="application/json"``: data, not script, so the CSP
forbids nothing) rendered by ``templates/browser_sealing.html``:

- ``#recipients``: the age recipients to encrypt to and their fingerprint;
- ``#sealing-settings``: the tus endpoint, chunk size, retry delays, limits,
  the page language and the UTC day that goes into ``submission.json``;
- ``#sealing-messages``: every text the script may show, already translated
  into the page's language (the script holds no text of its own).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from relay.server import i18n
from relay.server.appkeys import CONFIG, KEYRING
from relay.server.i18n import N_
from relay.server.rendering import request_language
from relay.server.uploads import UPLOADS_PATH

RETRY_DELAYS_MS = (0, 1_000, 3_000, 5_000, 10_000, 20_000, 30_000, 60_000, 60_000, 60_000)
"""Tor circuits drop and take a while to be rebuilt: about five minutes of retries
before the page asks the source to press "Try again" (which resumes, too)."""

MESSAGES: dict[str, str] = {
    "encrypting": N_("Encrypting in your browser and sending…"),
    "retrying": N_("The connection dropped. Reconnecting and continuing where it stopped…"),
    "done": N_(
        "Received. Your message and files were encrypted in your browser before they were "
        "sent; the relay stored only the encrypted copy."
    ),
    "failed_network": N_(
        "The connection was lost and could not be restored. What was sent so far is kept "
        "for a while: press “Try again” to continue where it stopped."
    ),
    "failed_refused": N_(
        "The relay refused the encrypted message. Nothing was stored. Reload the page and "
        "send again."
    ),
    "failed_too_large": N_(
        "Too much to send at once: one message with its files can be at most %(limit)s. "
        "Send fewer or smaller files, or send them in several messages."
    ),
    "failed_storage": N_(
        "The relay cannot accept messages right now: it is running out of storage space. "
        "Please try again later."
    ),
    "slow_sealing": N_(
        "Encrypting and sending in this browser will take about %(time)s more. You can keep "
        "this page open and wait. Or stop, and send fewer or smaller files. Or turn "
        "JavaScript off (in Tor Browser: the “Safest” security level) and send again: the "
        "server then encrypts what you send, which is less safe."
    ),
    "stop_sealing": N_("Stop"),
    "stopped": N_("Stopped. Nothing was stored. Choose what to send, then send again."),
    "failed_local": N_(
        "Your browser could not read or encrypt the files (perhaps one changed or was moved "
        "while it was being sent). Nothing was stored. Choose the files again and send again."
    ),
    "empty": N_(
        "Nothing to send: your message is empty and no file is attached. Write a message or "
        "attach a file, then send again."
    ),
    "too_many_files": N_(
        "You can attach at most %(count)s files to one message. Send fewer files, or send "
        "them in several messages."
    ),
    "message_too_long": N_(
        "A message can be at most %(limit)s. Shorten it, or save it as a file and attach it."
    ),
    # What each attachment gives away (relay/web/js/metadata/panel.js).
    "metadata_place": N_("Place: where it was made (GPS coordinates)"),
    "metadata_device": N_("Device: the camera or phone that made it (make, model, serial number)"),
    "metadata_people": N_("People: names of the author, the last editor or the organisation"),
    "metadata_times": N_("Times: when it was made or changed"),
    "metadata_software": N_("Software: the programs that made or changed it"),
    "metadata_notes": N_("Notes: comments, titles or descriptions written into the file"),
    "metadata_none": N_(
        "no hidden details found. What it shows (faces, places, names, numbers) can still "
        "identify you."
    ),
    "metadata_plain_text": N_(
        "plain text, which has no hidden details. What it says can still identify you."
    ),
    "metadata_unknown": N_("this kind of file is not checked here. It may carry hidden details."),
    "metadata_unreadable": N_(
        "could not be checked (it may be damaged). It may carry hidden details."
    ),
    "metadata_removable": N_(
        "These details will be removed before encrypting, unless you untick the box below. "
        "The picture itself stays exactly the same."
    ),
    "metadata_kept": N_("These details stay in the file: see the note below."),
    "metadata_kept_picture": N_(
        "These details cannot be removed from this kind of picture here. Send a screenshot "
        "of it instead, or save it as JPEG first."
    ),
    "fingerprint_mismatch": N_(
        "The reviewers' keys on this page do not match their fingerprint. Do not send "
        "anything from this page."
    ),
}


def browser_sealing_context(request: web.Request) -> dict[str, Any] | None:
    """The ``browser_sealing`` value that ``browser_sealing.html`` renders, in the
    request's language (source_views passes it to index.html); None when no
    reviewer's key works (every OpenPGP key expired): then the form is the no-JS
    one, whose answer says the team cannot be written to."""
    usable = request.app[KEYRING].usable()
    if usable is None:
        return None
    config = request.app[CONFIG]
    language = request_language(request)
    gettext = i18n.translations(language).gettext
    recipients = usable.recipients_document()
    placeholders = {
        "limit": i18n.format_size(config.max_submission_bytes, language),
        "count": str(config.max_attachments),
    }
    messages = {key: gettext(text) for key, text in MESSAGES.items()}
    messages["failed_too_large"] %= placeholders
    messages["too_many_files"] %= placeholders
    messages["message_too_long"] %= {
        "limit": i18n.format_size(config.max_message_bytes, language)
    }
    settings = {
        "endpoint": UPLOADS_PATH,
        "chunkSize": config.upload_chunk_bytes,
        "sealWorkersMax": config.seal_workers_max,
        "slowWarningSeconds": config.seal_slow_warning_seconds,
        "retryDelays": list(RETRY_DELAYS_MS),
        "maxSubmissionBytes": config.max_submission_bytes,
        "maxMessageBytes": config.max_message_bytes,
        "maxAttachments": config.max_attachments,
        "language": language,
        "day": datetime.now(UTC).date().isoformat(),
    }
    return {
        "recipients": recipients,
        "fingerprint": recipients["fingerprint"],
        "settings": settings,
        "messages": messages,
    }
