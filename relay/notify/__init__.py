"""The team's digest: how much is waiting on the relay, never when it came.

At fixed times of day (UTC, the operator's choice), whether or not anything
arrived, the relay sends every channel the same fixed-size text: how many
submissions wait on the relay and how many arrived since the last digest. No
id, no time, nothing a tip contains. One module per job:

    schedule.py  the digest times: their rules, and the next one after now
    digest.py    the two counts, rendered to a text of one fixed length
    channels.py  the channels' secrets file (Apprise URLs): read, checked, never logged
    sending.py   one digest to every channel, in worker threads, with a timeout
                 per channel and bounded retries; counts logged, never URLs
    loop.py      the background task: wait for the next time, count, send

Only ``sending.py`` imports Apprise (and ``channels.py``, to check URLs).
"""
