"""Secrets out of what is printed, stored or reported: a URL's password replaced by ***."""

from __future__ import annotations

import re


def redact(url: str) -> str:
    """A storage URL fit for messages: the password, if any, replaced by ***, both in the user info
    (where it may itself hold '@', '/' or '?': everything up to the last '@' of the authority goes) and in
    password-like query parameters (`?password=`, `sslpassword=`, tokens, secrets, keys)."""
    scheme, sep, rest = url.partition("://")
    if sep:
        query = rest.find("?")
        at = rest.rfind("@", 0, query if query >= 0 else len(rest))
        if at < 0:
            at = rest.rfind("@")  # a password holding '?'; at worst this hides more than the password
        if at >= 0:
            user, colon, _ = rest[:at].partition(":")
            if colon:
                rest = f"{user}:***{rest[at:]}"
        url = f"{scheme}{sep}{rest}"
    return re.sub(r"([?&;][^=&;#]*(?:pass|pwd|secret|token|key)[^=&;#]*=)[^&;#]*", r"\1***", url, flags=re.I)
