"""Secrets out of what is printed, stored or reported: every URL in a text with its credentials replaced by ***.

A message may hold several URLs (a command line, a chained error), so `redact` scans the whole text, not one URL.
Within a URL it hides the password of the user info (which may itself hold '@', '/' or '?': everything up to the
last '@' of the authority goes), the whole user info of an http(s) URL (a token is often given as the user name),
and the value of every query or fragment parameter whose name, once percent-decoded, says secret (`password`,
`p%61ssword`, `sslpassword`, tokens, keys, signatures, credentials). Erring towards hiding more is intended: the
result only ever goes into messages.

`url_secret` says what secret a URL holds, for refusing it where it would be stored (params.yaml, dvc.lock,
Prefect's parameters), which no redaction can undo.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")
_END = re.compile(r"[\s'\"<>`]")  # where a URL in running text ends
_PARAM = re.compile(r"([?&;#])([^=&;#]*)=([^&;#]*)")
_SECRET_NAME = re.compile(r"pass|pwd|secret|token|key|signature|credential|auth|^sig$", re.I)
# Schemes whose user name is routinely a secret itself (https://TOKEN@host/...).
_TOKEN_USER_SCHEMES = {"http", "https", "git+https", "git+http"}


def _split_userinfo(scheme: str, rest: str) -> tuple[str, str] | None:
    """(user info, the rest from its '@') of the part after `scheme://`, or None when there is none."""
    query = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    at = rest.rfind("@", 0, query)
    if at < 0:
        at = rest.rfind("@")  # a password holding '?' or '#'; at worst this hides more than the password
    if at < 0:
        return None
    userinfo = rest[:at]
    if ":" not in userinfo and "/" in userinfo:
        return None  # an '@' in the path (https://host/@scope/pkg), not a user
    return userinfo, rest[at:]


def _redact_url(url: str) -> str:
    scheme, _, rest = url.partition("://")
    split = _split_userinfo(scheme, rest)
    if split is not None:
        userinfo, tail = split
        user, colon, _ = userinfo.partition(":")
        if colon:
            rest = f"{user}:***{tail}"
        elif scheme.lower() in _TOKEN_USER_SCHEMES and userinfo:
            rest = f"***{tail}"
    return f"{scheme}://" + _PARAM.sub(_redact_param, rest)


def _redact_param(m: re.Match) -> str:
    sep, name, value = m.groups()
    return f"{sep}{name}=***" if value and _SECRET_NAME.search(unquote(name)) else m.group(0)


def redact(text: str) -> str:
    """`text` with every URL in it redacted (a bare URL is a text holding one)."""
    text = str(text)
    out, pos = [], 0
    while (m := _SCHEME.search(text, pos)) is not None:
        end = _END.search(text, m.end())
        stop = end.start() if end else len(text)
        nxt = _SCHEME.search(text, m.end(), stop)  # two URLs glued together (a,b or a;b)
        if nxt is not None:
            stop = nxt.start()
            while stop > m.end() and not text[stop - 1].isalnum() and text[stop - 1] not in "/":
                stop -= 1  # leave the separator before the next scheme to the text
        out += [text[pos : m.start()], _redact_url(text[m.start() : stop])]
        pos = stop
    out.append(text[pos:])
    return "".join(out)


def url_secret(url: str) -> str | None:
    """What secret `url` holds ("a password in its user info", "a user name...", "the parameter 'x'"), or None:
    the same rules as `redact`, so a URL holds a secret exactly when redaction would change it."""
    url = str(url)
    if redact(url) == url:
        return None
    scheme, sep, rest = url.partition("://")
    split = _split_userinfo(scheme, rest) if sep else None
    if split is not None and ":" in split[0]:
        return "a password in its user info"
    if split is not None and scheme.lower() in _TOKEN_USER_SCHEMES:
        return "a user name, which in an http(s) URL is often a token"
    names = [unquote(p.group(2)) for p in _PARAM.finditer(rest) if _SECRET_NAME.search(unquote(p.group(2)))]
    return f"the parameter {names[0]!r}" if names else "a credential"
