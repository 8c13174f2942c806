"""Retry schedules of webmail senders as measured under greylisting (mail-facts.md §6).

Pagani et al., DSN 2016, recorded the retry times of large senders under a 6 h greylist.
Each becomes the default ``offsets`` of a :class:`~mailnet.policies.retry.schedule.ScheduleRetry`
preset (see ``registry``).

Those senders were watched under a 6 h greylist, so nothing past about 7 h was seen:
after each list the last gap repeats (except AOL, which gave up), and the 5 d lifetime
is RFC 5321 §4.5.4.1's 4-5 d give-up (also Postfix's and Sendmail's default), an
assumption rather than a measurement. Hotmail's "then every 4 min" is written out as
one more offset so that the repeated gap is exactly 4 min; its 94th attempt falls at
360:10, the first after the 6 h greylist, matching the 94 attempts reported.
"""

from __future__ import annotations

from mailnet.policies.retry.base import MINUTE


def mmss(*stamps: str) -> list[float]:
    """Offsets written as the paper prints them, "min:sec", in seconds."""
    return [float(int(m) * 60 + int(s)) for m, s in (stamp.split(":") for stamp in stamps)]


GMAIL = mmss("6:02", "29:02", "56:36", "98:44", "162:03", "229:44", "309:05", "434:46")
YAHOO = mmss("2:07", "5:39", "12:58", "27:16", "55:13", "109:35", "216:47", "430:36")
_HOTMAIL_MEASURED = mmss("1:01", "2:03", "3:04", "5:06", "8:07", "12:08", "16:10")
HOTMAIL_EVERY = 4 * MINUTE
HOTMAIL = [*_HOTMAIL_MEASURED, _HOTMAIL_MEASURED[-1] + HOTMAIL_EVERY]
GMX = mmss("5:01", "12:33", "23:50", "40:46", "66:09", "104:14", "161:22", "247:04", "375:36")
AOL = mmss("5:32", "11:32", "21:32", "31:32")
