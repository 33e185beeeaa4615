"""libvirt URIs as people may see them: a URI can carry a password (in its user part) or a
secret query parameter, and neither may reach a page, a log or the API."""

from urllib.parse import parse_qsl, quote, urlencode, urlsplit

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
    # Built by hand: urlunsplit drops the "//" of an empty host (qemu:///system).
    shown = f"{parts.scheme}://{netloc}{parts.path}"
    return shown + (f"?{query}" if query else "") + (f"#{parts.fragment}" if parts.fragment else "")


def redact_text(text: str, uri: str) -> str:
    """`text` (an error message, say) with every occurrence of `uri` redacted."""
    shown = redact(uri)
    return text.replace(uri, shown) if shown != uri else text


def _is_secret(key: str) -> bool:
    return any(word in key.lower() for word in SECRET_PARAMETER_WORDS)
