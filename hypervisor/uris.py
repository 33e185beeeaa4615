"""libvirt URIs as people may see them: a URI can carry a password (in its user part) or a
secret query parameter, and neither may reach a page, a log or the API."""

from urllib.parse import SplitResult, parse_qsl, quote, unquote, urlencode, urlsplit

HIDDEN = "********"
# Query parameters whose value is a secret; libvirt's own (keyfile, pkipath, known_hosts...)
# name files, which are not.
SECRET_PARAMETER_WORDS = ("pass", "secret", "token", "credential")


def redact(uri: str) -> str:
    """The URI with any password and secret parameter replaced by asterisks."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return HIDDEN  # not a URI libvirt would take: show nothing of it
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, hostport = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{HIDDEN}@{hostport}" if has_password else netloc
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode(
            [(key, HIDDEN if _is_secret(key) else value) for key, value in pairs], safe="/:*,", quote_via=quote
        )
    if (netloc, query) == (parts.netloc, parts.query):
        return uri
    return _join(parts, netloc, query)


def redact_text(text: str, uri: str) -> str:
    """`text` (an error message, say) with every occurrence of `uri` redacted."""
    shown = redact(uri)
    return text.replace(uri, shown) if shown != uri else text


class SecretNotRestored(ValueError):
    """Asterisks stand for a stored secret, but the edited URI reaches another place."""


def restore(edited: str, stored: str) -> str:
    """`edited`, a redacted URI that an administrator may have changed, with each secret it
    still shows as asterisks taken back from `stored`: a password left alone is kept, one
    typed anew replaces it. A secret goes back only to where it came from: when the scheme,
    host, port or user changed, asterisks standing for one raise SecretNotRestored."""
    if HIDDEN not in edited or not stored:
        return edited
    try:
        parts, old = urlsplit(edited), urlsplit(stored)
    except ValueError:
        return edited
    if _would_restore(parts, old) and not _same_place(parts, old):
        raise SecretNotRestored(
            "The asterisks stand for the stored password or secret, which vmotion sends only to the host it was saved for: "
            "with another scheme, host, port or user, type the secret again."
        )
    netloc = parts.netloc
    old_password = _password(old.netloc)
    if _password(netloc) == HIDDEN and old_password is not None:
        user = netloc.rpartition("@")[0].partition(":")[0]
        netloc = f"{user}:{old_password}@{netloc.rpartition('@')[2]}"
    return _join(parts, netloc, _restore_query(parts.query, old.query))


def _would_restore(parts: SplitResult, old: SplitResult) -> bool:
    if _password(parts.netloc) == HIDDEN and _password(old.netloc) is not None:
        return True
    old_keys = {part.split("=", 1)[0] for part in old.query.split("&") if "=" in part}
    for part in parts.query.split("&") if parts.query else []:
        key, _, value = part.partition("=")
        if unquote(value) == HIDDEN and _is_secret(unquote(key)) and key in old_keys:
            return True
    return False


def _same_place(parts: SplitResult, old: SplitResult) -> bool:
    try:
        ports = (parts.port, old.port)
    except ValueError:
        return False
    return (parts.scheme.lower(), parts.hostname, ports[0], parts.username) == (old.scheme.lower(), old.hostname, ports[1], old.username)


def _password(netloc: str) -> str | None:
    """The password of a URI's user part, as written; None when it has none."""
    userinfo, at, _ = netloc.rpartition("@")
    _, colon, password = userinfo.partition(":")
    return password if at and colon else None


def _restore_query(query: str, old_query: str) -> str:
    old_values = dict(part.split("=", 1) for part in old_query.split("&") if "=" in part)
    restored = []
    for part in query.split("&") if query else []:
        key, _, value = part.partition("=")
        if unquote(value) == HIDDEN and _is_secret(unquote(key)) and key in old_values:
            part = f"{key}={old_values[key]}"
        restored.append(part)
    return "&".join(restored)


def _join(parts: SplitResult, netloc: str, query: str) -> str:
    # Built by hand: urlunsplit drops the "//" of an empty host (qemu:///system).
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    return shown + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def _is_secret(key: str) -> bool:
    return any(word in key.lower() for word in SECRET_PARAMETER_WORDS)
