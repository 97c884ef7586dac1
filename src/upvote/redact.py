"""One place that masks passwords in anything that may be printed or logged.

Every message, log line or progress line that can carry a database URL or libpq connection string
goes through :func:`redact`. It masks

- the password of a URL's user info, ``scheme://user:PASSWORD@host``, even when the password itself
  holds ``@`` (user info ends at the *last* ``@`` before the host);
- ``password=...`` query parameters (``?password=`` or ``&password=``);
- libpq ``key=value`` strings (``host=db password=secret`` or ``password='a b'``);
- and, when the DSN is known, any verbatim (or percent-decoded) copy of its password elsewhere in
  the text, e.g. inside a driver's error message.

It has no dependencies so that every layer (data, embeddings, service) can use it.
"""

import re
from urllib.parse import unquote

MASK = "***"

# scheme://userinfo@host...: the user info is everything up to the last "@" before the query
# string (a password may hold "@" and "/"); without "@" there is no user info to mask.
_URL = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)(?P<rest>[^\s\"'<>]+)")
_QUERY_PASSWORD = re.compile(r"(?i)([?&;]password=)[^&#\s\"']*")
_KEYWORD_PASSWORD = re.compile(
    r"""(?i)((?<![?&;])\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)"""
)


def _mask_userinfo(match: re.Match) -> str:
    scheme, rest = match.group("scheme"), match.group("rest")
    authority, sep, query = rest.partition("?")
    at = authority.rfind("@")
    if at < 0:
        return scheme + rest
    userinfo, host = authority[:at], authority[at + 1 :]
    user, colon, _ = userinfo.partition(":")
    return f"{scheme}{user}{':' + MASK if colon else ''}@{host}{sep}{query}"


def passwords(dsn: str) -> list[str]:
    """The password(s) a DSN carries (URL user info, query parameter or libpq keyword)."""
    found = []
    url = _URL.search(dsn)
    if url:
        authority = url.group("rest").partition("?")[0]
        at = authority.rfind("@")
        if at >= 0 and ":" in authority[:at]:
            found.append(authority[:at].partition(":")[2])
    found += [m.group(0).split("=", 1)[1] for m in _QUERY_PASSWORD.finditer(dsn)]
    for m in _KEYWORD_PASSWORD.finditer(dsn):
        value = m.group(2)
        found.append(value[1:-1] if value[:1] in "'\"" else value)
    return [p for p in found if p]


def redact(text: str, dsn: str | None = None) -> str:
    """``text`` with every password masked as ``***`` (see the module docstring).

    ``dsn``: the connection string ``text`` may quote in other forms (a driver's error message):
    its password is also masked wherever it appears verbatim or percent-decoded.
    """
    text = str(text)
    secrets = passwords(dsn) if dsn else []
    secrets += [unquote(p) for p in secrets]
    # libpq ends the user info at the FIRST "@": it then quotes the rest as a host name
    secrets += [piece for p in secrets for piece in p.split("@")]
    text = _URL.sub(_mask_userinfo, text)
    text = _QUERY_PASSWORD.sub(lambda m: m.group(1) + MASK, text)
    text = _KEYWORD_PASSWORD.sub(lambda m: m.group(1) + MASK, text)
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 3:  # a one- or two-character password would mask unrelated text
            text = text.replace(secret, MASK)
    return text
