"""The one rule table: which names hold secrets or personal data, and which values are secrets by shape.

A reviewer reads this file to know what diagkit redacts. Every rule carries the samples that prove it
(`yes` must match, `no` must not); tests/test_redact_rules.py checks each of them. The decide stage
(decide.py), the free-text scanner (scan.py) and the leak gate (gate.py) all read these tables; nothing
else holds a list of names or patterns.

Names are compared in one normal form: camelCase and separators become `_`, lower case, and a claim
URI is reduced to its last segment (`.../claims/givenname` -> `givenname`, `X-Goog-Signature` ->
`x_goog_signature`, `SAMLResponse` -> `saml_response`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@functools.lru_cache(maxsize=65536)
def normal_name(name: str) -> str:
    name = name.rstrip("/").rsplit("/", 1)[-1] if "://" in name or name.startswith("/") else name
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    return "_".join(re.findall(r"[a-z0-9]+", name.lower()))


def _w(alternatives: str) -> str:
    """Whole words of a normal name."""
    return rf"(?:^|_)(?:{alternatives})(?:_|$)"


@dataclass(frozen=True)
class NameRule:
    id: str      # the rule named in the report
    kind: str    # the pseudonym's kind: <KIND:hex>
    pattern: str
    yes: tuple[str, ...]
    no: tuple[str, ...] = ()

    @functools.cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern)


# Kinds decided by the shape of the whole value, not by a pseudonym of it (decide.py handles them).
SAML, AUTHORIZATION, COOKIE, URL, OAUTH_CONTEXT, KEEP = "SAML", "AUTH", "COOKIE", "URL", "OAUTH", "KEEP"
QUERY = "QUERY"  # a query string in free text whose URL has no scheme (`GET /cb?email=...`): read as a form

# Names first; the first rule that matches decides. Public siblings of secret names come first.
NAME_RULES: tuple[NameRule, ...] = (
    NameRule("url", URL, r"^(?:url|href|src|action|location|referer|referrer|origin|redirect_url|redirect_uri|"
             r"content_location|path|return_to|return_url|post_logout_redirect_uri|target_link_uri)$",
             yes=(":path", "Location", "redirectURL", "redirect_uri"), no=("url_count",)),
    NameRule("public_metadata", KEEP,
             r"(?:^|_)(?:uri|url|urls|endpoint|endpoints|type|types|supported|expires|expiry|expiration|in|at|"
             r"lifetime|ttl|length|count|hint_type|method|methods|alg|algorithm|format|policy|required|enabled|"
             r"version|usage|path|location|label|description|mode|status|name|names|duration|timeout|field|store|helpers?|"
             r"web_?socket_key|web_?socket_accept|time|ref|crc\w*|identifier)$|^(?:azp|aud)$|^existing_",
             yes=("token_uri", "token_type", "client_secret_expires_at", "SharedAccessKeyName", "SessionDuration",
                  "password_policy", "token_endpoint", "auth_time", "secretKeyRef", "existingSecretPasswordKey"),
             no=("password", "session_state", "client_secret", "first_name")),
    NameRule("saml_message", SAML, r"(?:^|_)(?:saml_response|saml_request|wresult|samlresponse|samlrequest)$",
             yes=("SAMLResponse", "SAMLRequest", "wresult"), no=("saml_metadata", "saml_request_id")),
    NameRule("authorization", AUTHORIZATION, r"^(?:proxy_)?authori[sz]ation$|^authentication$",
             yes=("Authorization", "proxy-authorization", "Authentication"), no=("authorization_code",)),
    NameRule("cookie", COOKIE, r"^(?:set_)?cookie2?(?:_line|_header|_string)?$", yes=("Cookie", "set-cookie", "cookieLine"),
             no=("cookie_consent",)),
    NameRule("oauth_code_or_state", OAUTH_CONTEXT, r"^(?:code|state)$", yes=("code", "state"),
             no=("error_code", "state_token", "status")),
    NameRule("password", "PASSWORD",
             r"password|passwd|passphrase|passcode|requirepass|" + _w("pass|pwd|pw|pin|otp|totp|mfa_code"),
             yes=("password", "SmtpPassword", "DB_PASS", "pass", "passcode", "new_password", "pwd", "requirepass"),
             no=("bypass", "compass", "passenger", "pinned")),
    NameRule("secret", "SECRET", r"secret", yes=("client_secret", "SecretKey", "webhook_secret"), no=("secondary",)),
    NameRule("token", "TOKEN", r"token|" + _w("s_ft|sft"), yes=("sFT", "access_token", "stateToken", "X-Auth-Token", "authenticity_token",
                                              "__RequestVerificationToken", "csrf-token"), no=("took",)),
    NameRule("key", "KEY",
             r"apikey|privatekey|accountkey|accesskey|secretkey|" + _w(
                 r"(?:api|access|secret|private|signing|account|shared_access|sas|client|master|encryption|"
                 r"subscription|storage|license|app|auth|session|sig)_key"),
             yes=("apiKey", "x-api-key", "AccountKey", "SharedAccessKey", "private_key", "private_key_id", "signing_key"),
             no=("key", "cache_key", "sort_key", "keyboard", "primary_key_column_x")),
    NameRule("signature", "SIGNATURE", _w("sig|sign|signature|hmac|x_goog_signature|x_amz_signature"),
             yes=("sig", "X-Goog-Signature", "X-Amz-Signature", "signature", "sign"), no=("signed_headers", "design")),
    NameRule("credential", "CREDENTIAL", r"credential|" + _w("creds|auth|x_amz_security"),
             yes=("credential", "credentials", "auth", "creds"), no=("oauth", "author")),
    NameRule("session", "SESSION", r"session|sessid|" + _w("sid|connect_sid|sso_id"),
             yes=("session_state", "SessionIndex", "JSESSIONID", "PHPSESSID", "sid", "connect.sid"),
             no=("side", "obsidian")),
    NameRule("anti_forgery", "CSRF", r"csrf|xsrf|anti_?forgery|" + _w("nonce|request_verification|relay_state|canary"),
             yes=("_csrf", "xsrf", "nonce", "csrf", "canary"), no=("once",)),
    NameRule("oauth_secret", "CODE", _w("code_verifier|device_code|user_code|assertion|"
                                        "client_assertion|ticket|saml_art|samlart|sam_lart|id_token_hint"),
             yes=("code_verifier", "client_assertion", "SAMLart"), no=("code", "assertion_consumer_service_url", "code_challenge")),
    NameRule("card_number", "CARD", _w("card_?number|cc_?number|ccnum|pan|credit_card|card_no"),
             yes=("card_number", "cardNumber", "ccnumber"), no=("panel", "card_brand")),
    NameRule("card_code", "SECRET", _w("cvc|cvv|cvv2|cvc2|csc|security_code|card_code"),
             yes=("card_cvc", "cvv", "securityCode"), no=("cvs",)),
    NameRule("email", "EMAIL", r"e_?mail|" + _w("upn|login_hint|user_principal_name"),
             yes=("email", "emailaddress", "ADMIN_EMAIL", "login_hint", "upn"), no=("female",)),
    NameRule("user", "USER", r"(?:^|_)(?:user|username|user_name|login|preferred_username|sam_account_name|nameid|"
             r"name_id|unique_name|sub|oid|uid|user_id|userid|principal|usernames)$",
             yes=("username", "login", "NameID", "sub", "preferred_username", "bindUser", "p_any_usernames"),
             no=("user_agent", "subject_type", "client_id", "AccountName")),
    NameRule("person_name", "PERSON",
             r"given_?name|family_?name|first_?name|last_?name|full_?name|middle_?name|surname|"
             r"(?:^|(?:^|_)(?:user|owner|author|actor|member|contact|account|customer|person|profile|sender|recipient)_)"
             r"display_?name|"
             r"nickname|cardholder|customer_name|contact_name|recipient_name",
             yes=("given_name", "firstName", "surname", "displayName", "givenname", "userDisplayName"),
             no=("file_name", "host_name", "appDisplayName", "resourceDisplayName")),
    NameRule("phone", "PHONE", _w("phone|phones|mobile|msisdn|telephone|tel|fax|phonenumber|mobilephone|cell"),
             yes=("phone", "mobilePhone", "phone_number", "msisdn"), no=("telemetry", "iphone_model_x")),
    NameRule("postal_address", "ADDRESS", r"street|address_line|postal_code|postcode|zip_?code|home_address|" + _w("zip"),
             yes=("street", "streetAddress", "postal_code", "zip"), no=("ip_address", "zipper")),
    NameRule("birth_date", "DATE", r"birth|" + _w("dob|bday"), yes=("dob", "birthdate", "date_of_birth"), no=("doberman",)),
    NameRule("national_id", "ID", _w("ssn|national_id|tax_id|passport|passport_number|nino|drivers_license|"
                                     "employee|employee_number|employee_no|employee_id|employeenumber|employeeid"),
             yes=("ssn", "employeeNumber", "employee_id", "https://corp.example/claims/employee"), no=("employer",)),
    NameRule("client_ip", "IP", r"client_ip|src_ip|source_ip|remote_addr|remote_ip(?!_address)|forwarded_for|real_ip|"
             r"true_client_ip|connecting_ip|user_ip|login_ip|client_host|ip_addresses|^forwarded$",
             yes=("X-Forwarded-For", "client_ip", "src_ip", "CF-Connecting-IP", "ClientHost", "p_any_ip_addresses"),
             no=("server_ip", "remoteIPAddress")),  # CDP's remoteIPAddress: the server the browser reached
    NameRule("mac_address", "MAC", _w("mac|mac_address|macaddress|hwaddr"), yes=("mac", "macAddress"), no=("machine",)),
)


@functools.lru_cache(maxsize=65536)
def name_rule(name: str) -> NameRule | None:
    """The rule for a header, parameter, key, attribute or flag name; None: the name says nothing."""
    normal = normal_name(name)
    if not normal:
        return None
    first = next((rule for rule in NAME_RULES if rule.regex.search(normal)), None)
    if first is None or first.kind != KEEP:
        return first
    # "token_uri", "SharedAccessKeyName": metadata about a secret, kept; "first_name" stays personal
    other = next((rule for rule in NAME_RULES if rule.kind != KEEP and rule.regex.search(normal)), None)
    if other is None:
        return None
    return other if other.kind in PERSONAL_KINDS else first


PERSONAL_KINDS = frozenset({"EMAIL", "USER", "PERSON", "PHONE", "ADDRESS", "DATE", "ID", "IP", "MAC"})

# Names under which an IP address is a server's (kept): HAR serverIPAddress, DNS answers, probe targets.
SERVER_IP_NAME = re.compile(r"server|dst|dest|target|upstream|resolve|answer|^addresses$|nameserver|^ns$|host|peer|"
                            r"local_address|remote_ip_address|"  # envoy's own side; CDP's remoteIPAddress
                            r"version|^ver$")  # and a version that looks like an address (29.0.4.1)
# Words just before an address in free text that say it is a server's, or a version (`v="99.0.0.0"`).
SERVER_IP_CONTEXT = re.compile(r"(?i)(?:server|dst|dest\w*|target|upstream|resolve[sd]?(?: to)?|answer|nameserver|"
                               r"connect(?:ed|ing)? to|-connect|Trying|->|→|host|via|A record|AAAA record|"
                               r"(?:\b|_)v(?:er(?:sion)?)?\W{0,2}[=:]\W{0,2}|[A-Za-z];)"  # `browser_version=`, `Brand;99.0.0.0`
                               r"(?:\W{1,3}[\w.:-]+(?:,| \())*\W{0,3}$")  # "Answer: 192.0.2.1, 192.0.2.2", curl's "Connected to h (ip)"

# Parameters whose presence beside `code`/`state` (or an OAuth-like path) makes them OAuth secrets.
OAUTH_MARKERS = frozenset({"client_id", "redirect_uri", "response_type", "response_mode", "grant_type", "code_verifier",
                           "code_challenge", "session_state", "id_token", "access_token", "token_type", "nonce",
                           "scope", "iss"})
OAUTH_PATH = re.compile(r"(?i)authori[sz]e|oauth|openid|oidc|/token|callback|signin|sign-in|/cb\b|/login|/sso|/auth")

# Free text that stays by its shape alone (a name that says what a value is, a birth date's or a PIN's,
# a secret's, is read first), and that the gate does not look into either: a timestamp (RFC 3339, or with a
# space for the T); a number of up to 12 digits, shorter than any card number, the only value rule a run of
# digits without separators can match; an id in lowercase hex with a letter (a trace, a request, a hash) or a
# UUID, where a rule matches only by chance (one random 16-digit hex id in some 3,000 holds a run of 13
# digits that passes a card's checks). Uppercase hex is not kept: a German IBAN is written in its letters.
_TIMESTAMP = r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?"
_HEX_OR_UUID = r"(?=[0-9]*[a-f])[0-9a-f]{16,}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
KEPT_SHAPE = re.compile(rf"\d{{1,12}}|{_TIMESTAMP}|{_HEX_OR_UUID}")

# Values that are never a secret whatever name precedes them in free text ("using password: YES").
NOT_SECRET_WORDS = frozenset({"yes", "no", "true", "false", "null", "none", "nil", "empty", "unset", "required",
                              "invalid", "expired", "missing", "redacted", "hidden", "masked", "changed", "ok",
                              "set", "n/a", "undefined", "enabled", "disabled", "on", "off", "failed", "reset",
                              "success", "succeeded", "failure", "denied", "unauthenticated", "authenticated",
                              "unknown", "no value"})

# Accounts of a system, not of a person: the user a process, a database or a login runs as stays
# (`USER: root`, `DB_USER=postgres`), as whether it is root is often the answer.
SYSTEM_ACCOUNTS = frozenset({"root", "admin", "administrator", "nobody", "daemon", "www-data", "postgres", "mysql",
                             "ubuntu", "ec2-user", "git", "system", "guest", "anonymous", "sa", "jenkins", "docker"})
_SENTENCE_WORDS = frozenset({"from", "with", "in", "on", "at", "the", "a", "an", "account", "accounts", "authentication",
                             "session", "request", "id", "name", "not", "is", "was", "has", "does", "and", "or", "to",
                             "of", "unknown", "none", "null", "user", "users", "password", "login", "by", "for"})


def user_word(value: str) -> bool:
    """A user's name in a log line, not a word of the sentence or a system's account."""
    return value.lower() not in SYSTEM_ACCOUNTS and value.lower() not in _SENTENCE_WORDS

# What a secret's name may stand before without a secret after it: a word above, a timestamp
# (`SessionNotOnOrAfter`), a flag of one or two characters (`Sec-Fetch-User: ?1`, `accesskey="c"`), a template's
# placeholder (`{{token}}`, `${API_KEY}`, `$TOKEN`, `%PASSWORD%`) or what a person hid already (`xxxx`,
# `REDACTED_FOR_THIS_ISSUE`), and, for what only machines make (signatures,
# sessions, nonces, codes, tokens), a plain word of up to 12 letters (`resultSignature: SUCCESS`).
# Personal kinds are not read this way (a birth date is a date, a user may be called "admin").
MACHINE_KINDS = frozenset({"SIGNATURE", "SESSION", "CSRF", "CODE", "TOKEN"})
_TIMESTAMP_RE = re.compile(_TIMESTAMP)
# (a bare value in free text ends before a closing brace: `token={{token` is read as a placeholder too)
_PLACEHOLDER = re.compile(r"\{\{[^{}]*(?:\}\}?)?|\$\{[^{}]*\}?|\$[A-Z_][A-Z0-9_]*|%[A-Z_][A-Z0-9_]*%|"
                          r"[^\s*•]{0,4}(?:[*•]{4,}|x{4,}|X{4,})[^\s*•]{0,4}|"  # what a tool masked (`****B4XB`, `sk_****`)
                          r"[A-Z_]*REDACTED[A-Z_]*|[a-z_]*redacted[a-z_]*|"  # and what a person already hid
                          r"\[(?i:filtered|redacted|hidden|masked|removed)\]|"  # Rails' `[FILTERED]`
                          r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|"  # the name of a variable holding it (`JOBSERVICE_SECRET`)
                          r"S-1-\d+(?:-\d+){1,2}|0x[0-9a-fA-F]+|"  # a well-known SID (`S-1-5-18`), a number in hex
                          r"[A-Z0-9-]*(?:HMAC|SHA\d+|RSA|ECDSA)[A-Z0-9-]*|"  # an algorithm's name (`AWS4-HMAC-SHA256`)
                          r"(?:/[\w.@~-]+){2,}/?")  # a path (`PWD=/opt/app`, the working directory)


# In free text (a script in a page), `name = value` whose value is code, not data: a keyword
# (`var dataUser = new Data()`), a class (`OAuth2::Error`), a call or a short index (`nonce=jQuery.now()`,
# `token=tokens[i]`), or escaped
# characters (`MapPin:"\ue707"`).
_CODE_VALUE = re.compile(r"new|this|function|typeof|void|await|return|undefined|[A-Z]\w*(?:::[A-Z]\w*)+|"
                         r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*(?:\([a-z]?\)?|\[[\w$.]{0,3}\]?)|"
                         r"(?:\\u[0-9A-Fa-f]{4}|\\x[0-9A-Fa-f]{2})+|"
                         r"\$[a-z_][A-Za-z_]*|\[?[A-Z][A-Za-z]*!\]?!?|"  # GraphQL: `$password: String!`
                         r"\$\(.*|\$\{[^}]*\}?")  # a shell's `$(command …`, `${variable}`


def code_value(value: str) -> bool:
    return _CODE_VALUE.fullmatch(value) is not None


def masked(value: str) -> bool:
    """What a tool or a person hid already, or a template's placeholder (`******`, `{{email}}`, `{PII Removed}`)."""
    plain = value.strip().strip("'\"")
    return _MASKED.fullmatch(plain) is not None or (_PLACEHOLDER.fullmatch(plain) is not None
                                                     and not plain[:1].isalnum())  # not a variable's or a SID's name


_MASKED = re.compile(r"[*•xX]{3,}|\{[^{}]*(?i:removed|redacted|hidden|masked)[^{}]*\}|(?i:no value|n/a|-)")


def not_secret(kind: str, value: str) -> bool:
    """Whether `value`, under a name whose rule gives `kind` (not a personal one), is no secret."""
    plain = value.strip().strip("'\"")
    return (plain.lower() in NOT_SECRET_WORDS or len(plain) <= 2 or _TIMESTAMP_RE.fullmatch(plain) is not None
            or _PLACEHOLDER.fullmatch(plain) is not None
            or (kind in MACHINE_KINDS and plain.isascii() and plain.isalpha() and len(plain) <= 12))


# ---------------------------------------------------------------- values


@functools.cache
def _recognizer(name: str) -> Any:
    """One of presidio's predefined recognizers, made once; only its public `validate_result` (the
    checksum that recognizer applies to a match) is used. Imported on first need: presidio is heavy
    (about 2 s and 90 MB with the spaCy it imports), so a run that meets no IBAN- or NHS-shaped value
    never loads it."""
    from presidio_analyzer import predefined_recognizers

    return getattr(predefined_recognizers, name)()


_CARD_ISSUER = re.compile(r"4|5[1-5]|2[2-7]|3[47]|6(?:011|5)|35")


@functools.lru_cache(maxsize=65536)  # a pure check of one match; logs repeat them ("+0000")
def luhn(text: str) -> bool:
    """A payment card number: an issuer's prefix, 13-19 digits and the Luhn check digit (python-stdnum, a
    light import, so card-shaped digit runs in ids do not load presidio and spaCy)."""
    from stdnum import luhn as stdnum_luhn

    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and _CARD_ISSUER.match(digits) is not None and stdnum_luhn.is_valid(digits)


@functools.lru_cache(maxsize=65536)  # a pure check of one match; logs repeat them ("+0000")
def iban_ok(text: str) -> bool:
    """presidio's IBAN check: the mod-97 check digits, then the country's length and format. The check
    digits are tested first with python-stdnum (presidio refuses any text that fails them), so IBAN-shaped
    ids in scripts and pages do not load presidio and spaCy."""
    from stdnum.iso7064 import mod_97_10

    compact = text.replace(" ", "").replace("-", "").upper()  # presidio's own sanitising
    if not (compact[2:4].isdigit() and compact.isalnum() and mod_97_10.is_valid(compact[4:] + compact[:4])):
        return False
    return bool(_recognizer("IbanRecognizer").validate_result(text))


@functools.lru_cache(maxsize=65536)  # a pure check of one match; logs repeat them ("+0000")
def nhs_ok(text: str) -> bool:
    """presidio's NHS number check digit (mod 11)."""
    return bool(_recognizer("NhsRecognizer").validate_result(text))


def cpf_ok(text: str) -> bool:
    """A Brazilian taxpayer number (CPF): its two check digits (python-stdnum)."""
    from stdnum.br import cpf

    return bool(cpf.is_valid(text))


@functools.lru_cache(maxsize=65536)  # a pure check of one match; logs repeat them ("+0000")
def phone_ok(text: str) -> bool:
    import phonenumbers

    try:
        number = phonenumbers.parse(text, None if text.startswith("+") else "US")
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_possible_number(number)


@functools.lru_cache(maxsize=65536)  # a pure check of one match; logs repeat them ("+0000")
def ip_ok(text: str) -> bool:
    """An address a person could be given: private ranges too (a VPN or office address is a person's);
    not loopback, multicast or unspecified."""
    import ipaddress

    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    if ip.version == 6 and "::" not in text and text.count(":") != 7:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:  # ::ffff:127.0.0.1 is the IPv4 address it maps
        ip = ip.ipv4_mapped
    if ip.version == 4 and all(len(part) == 1 for part in text.split(".")):
        return False  # "4.1.2.5": a section or version number, not an address anyone is given
    return not (ip.is_loopback or ip.is_unspecified or ip.is_multicast
                or any(ip in net for net in _LOCAL_NETS if net.version == ip.version))


def _nets() -> tuple:
    import ipaddress

    return tuple(ipaddress.ip_network(n) for n in ("0.0.0.0/8", "255.255.255.255/32"))


_LOCAL_NETS = _nets()


HAS_DIGITS = re.compile(r"\d")


@dataclass(frozen=True)
class ValueRule:
    id: str
    kind: str
    pattern: str
    yes: tuple[str, ...]
    no: tuple[str, ...] = ()
    check: Callable[[str], bool] | None = None
    group: int = 0     # the part of the match that is the value (0: all of it)
    gate: bool = True  # the leak gate refuses output where this still matches
    needs: tuple[str, ...] = ()  # a text holding none of these cannot match (the regex is not run); () = digits
    # No match holds a line break, and the pattern reads a line's end as it reads the text's end (no `$`,
    # `^`, `\s` or class that admits "\n"; a lookaround or `\b` at either is satisfied the same way): in a
    # long text such a rule runs only on the lines holding one of its `needs`.
    one_line: bool = False
    # A class every match's first character is in (the first character the pattern consumes, after its
    # lookbehind or `\b`): put in front as a lookahead, it lets `re` reject other places at once.
    starts: str = ""
    # A pattern every match holds: a long text (a log) without it is not scanned with this rule, as one
    # search for it costs less than the rule's own pass (most when it starts with a literal character).
    hint: str = ""

    @functools.cached_property
    def regex(self) -> re.Pattern[str]:
        return re.compile(f"(?={self.starts})(?:{self.pattern})" if self.starts else self.pattern)

    @functools.cached_property
    def hint_regex(self) -> re.Pattern[str] | None:
        return re.compile(self.hint) if self.hint else None


_URL_USERINFO = r"\b[a-zA-Z][\w+.-]{1,20}://([^/\s:@'\"<>]+):([^/\s@'\"<>]+)@"
_DATE = r"\d{4}-\d{2}-\d{2}|\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{1,2} [A-Z][a-z]+ \d{4}|[A-Z][a-z]+ \d{1,2},? \d{4}"
_STREET = (r"Street|St|Avenue|Ave|Road|Rd|Lane|Ln|Drive|Dr|Boulevard|Blvd|Way|Court|Ct|Place|Pl|Terrace|Close|"
           r"Crescent|Square|Parkway|Highway|Hwy|Strasse|Straße")

# Secrets and personal data recognised by their shape, wherever they are. Order matters: the first
# rule to claim a span keeps it (a card before a phone, a MAC before an IPv6 address).
VALUE_RULES: tuple[ValueRule, ...] = (
    ValueRule("pem_private_key", "PRIVATE_KEY",
              r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|$)",
              needs=("PRIVATE KEY",), yes=("-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----",),
              no=("-----BEGIN CERTIFICATE-----",)),
    ValueRule("jwe", "JWE", r"\beyJ[\w-]{10,}\.[\w-]*\.[\w-]+\.[\w-]+\.[\w-]+",
              needs=("eyJ",), one_line=True, yes=("eyJhbGciOiJSU0EtT0FFUCJ9.ZGVm.aXYxMjM.Y2lwaGVy.dGFn",), no=("eyJhbGciOiJIUzI1NiJ9.e30.c2ln",)),
    ValueRule("jwt", "JWT", r"\beyJ[\w-]{10,}={0,2}\.eyJ[\w-]*={0,2}\.[\w-]*={0,2}", needs=("eyJ",), one_line=True,
              yes=("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "eyJhbGciOiJSUzI1NiJ9=.eyJzdWIiOiIxIn0=.c2lnbmF0dXJl"),
              no=("eyJhbGciOiJIUzI1NiJ9",), gate=False),  # rewritten with its claims redacted, never passed whole
    # A URL's password, and its user beside it (as decide.Redaction.url hides both): the password keeps the
    # pseudonym it has everywhere else, and the user is no longer readable beside it, so a password equal to
    # its user (postgres:postgres) shows only that they are equal, not what they are.
    ValueRule("url_password", "SECRET", rf"{_URL_USERINFO}", needs=("://",), one_line=True,
              yes=("postgres://app:hunter2@db", "https://u:p@h"), no=("https://h:443/x", "mailto:a@b.c"), group=2),
    ValueRule("url_user", "USER", rf"{_URL_USERINFO}", needs=("://",), one_line=True,
              yes=("postgres://app:hunter2@db",), no=("https://h:443/x", "https://app@h/x"), group=1, gate=False),
    ValueRule("aws_access_key", "KEY", r"\b(?:AKIA|ASIA|ABIA|ACCA|AROA|AIDA)[A-Z0-9]{16}\b",
              needs=("AKIA", "ASIA", "ABIA", "ACCA", "AROA", "AIDA"), one_line=True, yes=("AKIAIOSFODNN7EXAMPLE",), no=("AKIA123",)),
    ValueRule("github_token", "TOKEN", r"\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{40,})",
              needs=("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"), one_line=True,
              yes=("ghp_1A2b3C4d5E6f7G8h9I0jK1lM2nO3pQ4rS5tU",
                   "github_pat_11ABCDEF0123456789_abcdefijklmnopqrstuvwxyzABCDEFIJKLMNOP"), no=("ghp_short",)),
    ValueRule("gitlab_token", "TOKEN", r"\b(?:glpat|glrt|gldt|glptt|glsoat|glcbt)-[\w-]{20,}|\bGR1348941[\w-]{20,}",
              needs=("glpat-", "glrt-", "gldt-", "glptt-", "glsoat-", "glcbt-", "GR1348941"), one_line=True,
              yes=("glpat-abcdefghij0123456789", "GR1348941aB3dE5fG7hJ9kL1mN2pQ", "glrt-abcdefghij0123456789"),
              no=("glpat-short",)),
    ValueRule("slack_token", "TOKEN", r"\bxox[abposre]-[\w-]{10,}", needs=("xox",), one_line=True, yes=("xoxb-1234567890-abcdefghij",)),
    ValueRule("google_api_key", "KEY", r"\bAIza[\w-]{35}", needs=("AIza",), one_line=True, yes=("AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",)),
    ValueRule("stripe_key", "KEY", r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}", needs=("k_live_", "k_test_"), one_line=True, yes=("sk_live_51Hx0aB2cD3eF4gH5iJ6kL7mN8",),
              no=("pk_live_51Hx0aB2cD3eF4gH5iJ6kL7mN8",)),
    ValueRule("sendgrid_key", "KEY", r"\bSG\.[\w-]{16,}\.[\w-]{16,}", needs=("SG.",), one_line=True, yes=("SG.abcdefghijklmnop.qrstuvwxyz0123456",)),
    ValueRule("google_auth_code", "CODE", r"\b4/0A[\w-]{30,}", needs=("4/0A",), one_line=True,
              yes=("4/0AfteXvtM-2XB5q-cTe-l-oYTkkRg-3QZf8V44cEvrRvCpPR9gSX",), no=("4/0A-short",)),
    ValueRule("package_token", "TOKEN", r"\b(?:npm_[A-Za-z0-9]{36}|pypi-[\w-]{50,})",
              needs=("npm_", "pypi-"), one_line=True, yes=("npm_abcdefghijklmnopqrstuvwxyz0123456789",)),
    # The person in an AWS principal's ARN (`arn:aws:iam::123456789012:user/jane.doe`, an assumed role's session
    # name, often the person's email), and the user an authentication log names (sshd's `Failed password for
    # invalid user mwilson from`, `Accepted publickey for fred`, `login attempt by user 'x'`): system accounts stay
    ValueRule("aws_principal", "USER", r"\barn:aws[\w-]*:(?:iam|sts)::\d{12}:(?:user(?:/[\w+=,.@-]+)*|"
              r"assumed-role/[\w+=,.@-]+|federated-user)/([\w+=,.@-]+)", needs=("arn:aws",), one_line=True, group=1,
              yes=("arn:aws:iam::123456789012:user/jane.doe", "arn:aws:sts::123456789012:assumed-role/Admin/jane@corp.test"),
              no=("arn:aws:iam::123456789012:role/Admin", "arn:aws:s3:::bucket/user/x"), gate=False, check=user_word),
    ValueRule("auth_log_user", "USER", r"(?:\b(?:for|by|with)(?: invalid| illegal)? user |\b(?:Accepted|Failed) \w+ for "
              r"(?:invalid user )?)['\"]?([A-Za-z0-9_][\w.@-]{0,63})", needs=("user ", "Accepted ", "Failed "),
              one_line=True, group=1, gate=False, check=user_word,
              yes=("Failed password for invalid user mwilson from", "Accepted publickey for fred from",
                   "login attempt by user 'realuser'"),
              no=("Failed password for root from", "token for user from", "Failed login for user admin")),
    # FTP's login as a packet capture prints it (tshark/Wireshark: `Request: USER jdoe`, `Request: PASS …`)
    ValueRule("ftp_login", "PASSWORD", r"\bRequest: PASS ([^\s\\]+)", needs=("Request: PASS",), one_line=True, group=1,
              yes=("Request: PASS Tr0ub4dorFake",), no=("Request: PASV",)),
    ValueRule("ftp_user", "USER", r"\bRequest: USER ([^\s\\]+)", needs=("Request: USER",), one_line=True, group=1,
              gate=False, yes=("Request: USER jdoe",), no=("Request: USERS",)),
    # a database connection opened in PHP, its password a positional argument (a stack trace's frame:
    # `PDO->__construct('mysql:host=…', 'app', 'secret', Array)`)
    ValueRule("php_connect_password", "PASSWORD", r"\b(?:PDO->__construct|new PDO|mysqli(?:_connect|_real_connect|"
              r"->__construct|->real_connect)?)\(\s*'[^']*',\s*'[^']*',\s*'([^'\s][^']*)'", group=1,
              needs=("PDO", "mysqli"), one_line=True,
              yes=("PDO->__construct('mysql:host=db;dbname=app', 'app', 'Xk9pLq2vRw7', Array)",
                   "mysqli_connect('db', 'app', 'Xk9pLq2vRw7')"), no=("PDO->__construct('sqlite::memory:')",)),
    ValueRule("email", "EMAIL", r"(?<![\w.+%-])(?!git@[^\s@:]+:)[\w.+%-]{1,64}@(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}(?![\w-])",
              needs=("@",), one_line=True, yes=("alice@example.com", "jürgen.weiß@bücher-example.test"), no=("user@localhost", "a@b", "git@github.com:org/repo.git")),
    # 13 to 19 digits in one run, or in the groups a card is printed in (4-4-4-4, 4-4-4-4-3, Amex's 4-6-5): a
    # pair of ids (`X-Varnish: 531183735 70674845`) whose digits pass the check is no card
    ValueRule("credit_card", "CARD", r"(?<![\w.])(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{1,4}(?:\1\d{1,3})?|"
              r"\d{4}([ -])\d{6}\2\d{4,5})(?![\w.])",
              yes=("4111 1111 1111 1111", "4111111111111111", "3400 000000 00009", "5500-0000-0000-0004"),
              # a run glued to a letter is part of an id (a hex trace id's digits), as presidio's \b reads it
              no=("4111 1111 1111 1112", "1893456000000", "531183735 70674845", "4247247926275c08"), check=luhn,
              starts=r"\d"),
    ValueRule("iban_code", "IBAN", r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b",
              yes=("GB82WEST12345698765432", "DE89 3704 0044 0532 0130 00"), no=("GB00WEST12345698765432",),
              check=iban_ok, starts="[A-Z]", hint=r"[A-Z]{2}\d{2}"),
    ValueRule("us_ssn", "SSN", r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b", yes=("123-45-6789",),
              no=("000-12-3456",), starts=r"\d", hint=r"-\d{2}-\d{4}"),
    ValueRule("br_cpf", "ID", r"(?<![\d.])\d{3}\.\d{3}\.\d{3}-\d{2}(?![\d.-])", yes=("111.444.777-35",),
              no=("111.444.777-36", "1.111.444.777-35"), check=cpf_ok, starts=r"\d", hint=r"\.\d{3}-\d"),
    ValueRule("uk_nino", "NINO", r"\b[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b",
              yes=("AB123456C", "AB 12 34 56 C"), no=("DA123456C",), starts="[A-Z]", hint=r"[A-Z]{2} ?\d{2} ?\d{2}"),
    ValueRule("uk_nhs", "NHS", r"(?i:\bnhs)(?: number| no\.?)?[\s:#]*(\d{3}[ -]?\d{3}[ -]?\d{4})\b",
              needs=("nhs", "NHS", "Nhs"),
              yes=("NHS number 943 476 5919",), no=("NHS number 943 476 5918", "order 9434765919"), check=nhs_ok,
              group=1),
    # Exactly six octets: a longer run of hex pairs is a certificate or key fingerprint, which stays.
    ValueRule("mac_address", "MAC", r"(?<![0-9A-Fa-f][:-])\b[0-9A-Fa-f]{2}(?:(?::[0-9A-Fa-f]{2}){5}|(?:-[0-9A-Fa-f]{2}){5})\b"
              r"(?![:-][0-9A-Fa-f])",
              yes=("3C:22:FB:7A:19:E4", "3c-22-fb-7a-19-e4", "mac=3C:22:FB:7A:19:E4;"),
              no=("12:30:45", "3F:6A:2B:1C:9D:8E:7F:60:A1:B2:C3:D4:E5:F6:07:18"), starts="[0-9A-Fa-f]",
              hint=r"[0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}[:-][0-9A-Fa-f]{2}[:-]"),
    ValueRule("phone_number", "PHONE", r"(?<![\w+/.-])(?:\+\d{1,3}[ .-]?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{2,5}){1,4}|"
              r"\(\d{3}\) ?\d{3}[-. ]\d{4}|\d{3}[-.]\d{3}[-.]\d{4})(?![\w.-])",
              yes=("+447911123456", "(415) 555-0173", "+1 415 555 0173"), no=("771234567890", "2030-01-01"),
              check=phone_ok),
    ValueRule("ip_address", "IP", r"(?<![\w./:-])(?:(?:[0-9A-Fa-f]{0,4}:){2,6}(?:\d{1,3}\.){3}\d{1,3}|"  # ::ffff:198.51.100.7
              r"(?:\d{1,3}\.){3}\d{1,3}|(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?!:[0-9A-Fa-f]))"
              r"(?!\.?\d)(?![A-Za-z_])",
              yes=("198.51.100.7", "2001:db8::7", "10.1.2.3:8443", "::ffff:198.51.100.7"),
              no=("127.0.0.1", "120.0.0.0.1", "12:30:45", "4.1.2.5", "3F:6A:2B:1C:9D:8E:7F:60:A1:B2:C3:D4:E5:F6:07:18"), check=ip_ok, gate=False,
              starts=r"[\dA-Fa-f:]"),
    ValueRule("birth_date", "DATE", rf"(?i:\b(?:dob|d\.o\.b\.?|born(?: on)?|birth ?date|date of birth|birthday))[\s:=]*({_DATE})",
              needs=("dob", "DOB", "Dob", "D.O.B", "d.o.b", "born", "Born", "BORN", "birth", "Birth", "BIRTH"),
              yes=("born 1984-03-17", "DOB: 17/03/1984", "date of birth March 17, 1984"), no=("created 1984-03-17",),
              group=1, gate=False),
    # a street, and the suite, city, state and ZIP code written after it (`26 Buttercup Ln, Newtown, PA 18940`)
    ValueRule("street_address", "ADDRESS", rf"\b\d{{1,5}} (?:[A-Z][a-z]+ ){{1,3}}(?:{_STREET})\b\.?"
              r"(?:,? (?:Suite|Apt\.?|Unit|#) ?[\w-]+)?(?:,? (?:[A-Z][a-z]+ ){0,2}[A-Z][a-z]+,? [A-Z]{2} \d{5}(?:-\d{4})?)?",
              yes=("742 Evergreen Terrace", "10 Downing Street", "26 Buttercup Ln, Newtown, PA 18940-3204",
                   "82023 Peters Road, Suite 1000 Plantation, FL 33324"), no=("42 items", "3 Days Ago"), gate=False,
              hint=r"\d [A-Z][a-z]"),
    ValueRule("uk_postcode", "ADDRESS", r"\b(?:[A-PR-UWYZ][A-HK-Y]?\d[A-Z\d]?) \d[ABD-HJLNP-UW-Z]{2}\b",
              yes=("SW1A 1AA", "M1 1AE"), no=("HTTP 200",), gate=False, starts="[A-Z]", hint=r" \d[ABD-HJLNP-UW-Z]{2}"),
)

# SECRET_WORD_IN_PROSE is run on a text whose lower case holds one of SECRET_WORDS (token, pass..., secret),
# or that holds an API_KEY_WORD match: its `api[ _-]?key` alternative alone, with the same case folding
# (whose "key" lower-cases to "key", a Kelvin sign's too, so `"key" in lower` is a sound first test).
SECRET_WORDS = ("token", "pass", "secret")
API_KEY_WORD = re.compile(r"(?i)api[ _-]?key")
# The value after a secret word in prose is a secret only when it looks like one (not "token validation").
SECRET_WORD_IN_PROSE = re.compile(r"(?i)\b(?:token|password|passwd|secret|api[ _-]?key|passcode)\b(?: (?:is|was))?"
                                  r"[ \t]+[\"']?([^\s\"',;(){}]{6,})")  # on the same line


def looks_secret(value: str) -> bool:
    """An opaque credential rather than a word: digits mixed with letters, or symbols, or mixed case."""
    if value.lower() in NOT_SECRET_WORDS or len(value) < 6:
        return False
    classes = sum(bool(re.search(p, value)) for p in (r"[a-z]", r"[A-Z]", r"\d", r"[^\w\s]"))
    return classes >= 2 and not re.fullmatch(r"[A-Z]?[a-z]+", value)


# A name ending in `key` that no rule above names (`validationKey`, `decryptionKey`, `"Jwt": {"Key": ...}`) holds
# a key when its value is opaque: 16 or more characters of a key's alphabet, letters and digits mixed (a public
# key, and `Sec-WebSocket-Key`, a handshake's nonce, stay).
_ENDS_IN_KEY = re.compile(r"(?:^|_|[a-z])key$")
_PUBLIC_METADATA = next(rule for rule in NAME_RULES if rule.id == "public_metadata")
_OPAQUE = re.compile(r"[A-Za-z0-9+/=_.~-]{16,}")


def keyed_secret(name: str, value: str) -> bool:
    normal = normal_name(name)
    return (_ENDS_IN_KEY.search(normal) is not None and "public" not in normal
            and _PUBLIC_METADATA.regex.search(normal) is None
            and _OPAQUE.fullmatch(value) is not None
            and re.search(r"\d", value) is not None and re.search(r"[A-Za-z]", value) is not None)


# A secret found once is hidden wherever else it appears (decide.Redaction.sweep): a token copied into a parameter
# with a neutral name, a cookie echoed in a page, curl's note of a cookie it stored. Only values no word or id of a
# protocol could be: 10 or more characters of a token's alphabet, letters and digits both, of a secret's kind;
# and a user's login that is no word. (Not an address: the same one is a server's where it is named so.)
ECHO_KINDS = frozenset({"PASSWORD", "SECRET", "TOKEN", "KEY", "SIGNATURE", "CREDENTIAL", "SESSION", "CSRF", "CODE",
                        "COOKIE"})
# Where a found secret is looked for: a token of its alphabet (never ending in a full stop, which ends a
# sentence), and each segment of a token's path; each of five characters or more.
ECHO_TOKEN = re.compile(r"[A-Za-z0-9+/_.~-]{5,}(?<!\.)={0,2}")
ECHO_PIECE = re.compile(r"[A-Za-z0-9+_.~-]{5,}(?<!\.)")
_ECHO_SECRET = re.compile(r"(?=[^\d]*\d)(?=[^A-Za-z]*[A-Za-z])[A-Za-z0-9+/_.~-]{10,}={0,2}")  # letters and digits
# a user's login, swept too when it is no word: letters with a digit or a separator (`jane.doe`, `jdoe42`)
_ECHO_USER = re.compile(r"(?=[^A-Za-z]*[A-Za-z])(?=.*[\d._-])[A-Za-z0-9._-]{5,64}")


def echo_candidates(token: str) -> list[tuple[int, str]]:
    """(offset, text) a found secret could be within an ECHO_TOKEN match: the token, and each segment of a
    URL's path in it (`/services/T0/B0/Xy...`)."""
    return [(0, token)] + ([m.span()[:1] + (m.group(0),) for m in ECHO_PIECE.finditer(token)] if "/" in token else [])


def echo_hashes(texts: Iterable[str]) -> set[int]:
    """The hash of everything in `texts` a found secret could be (echo_candidates): numbers, not text, as they
    are sent between processes. Two texts sharing a hash only cost a sweep that finds nothing."""
    found: set[int] = set()
    for text in texts:
        if len(text) >= 5:
            found.update(map(hash, ECHO_TOKEN.findall(text)))
            if "/" in text:  # every path segment of a token is among the text's runs without a slash
                found.update(map(hash, ECHO_PIECE.findall(text)))
    return found


def echo_worthy(kind: str, value: str) -> bool:
    if kind == "USER":
        return _ECHO_USER.fullmatch(value) is not None and value.lower() not in SYSTEM_ACCOUNTS
    return len(value) >= 10 and kind in ECHO_KINDS and _ECHO_SECRET.fullmatch(value) is not None


# A mail's ids (`Message-ID: <…@mail.example>`, `References:`, an inline image's `cid:`) are shaped like
# addresses and are no one's: scan.find does not take them for emails, and the gate does not look into them.
MAIL_ID = re.compile(r"(?i)\b(?:message-id|content-id|in-reply-to|references)[\"']?[ \t]*[:=][ \t]*(?:<[^<>\s]+>[ \t]*)+|"
                     r"\bcid:[^\s\"'<>]+")


# In a sign-in request's query or form (an OAuth/OIDC or login endpoint, decide.Ctx.oauth), an opaque value
# under a name no rule knows is a credential of the flow (Google's rapt, Entra's ctx): 20 or more characters
# of a token's alphabet mixing upper case, lower case and digits. The client id and PKCE's code_challenge,
# public by design, stay.
# No dot or colon (a JWT, a host, a URN are read as what they are), but Google's `at=…:1698075926579`; an id
# (`reqId`, `request_id`) is a correlation id.
_FLOW_VALUE = re.compile(r"[A-Za-z0-9_~+/=-]{20,}(?::\d+)?")
FLOW_PUBLIC = frozenset({"client_id", "code_challenge", "code_challenge_method", "audience", "resource"})


def flow_credential(name: str, value: str) -> bool:
    normal = normal_name(name)
    return (normal not in FLOW_PUBLIC and not re.search(r"(?:^|_)ids?$", normal) and _FLOW_VALUE.fullmatch(value) is not None
            and re.search(r"[a-z]", value) is not None and re.search(r"[A-Z]", value) is not None
            and re.search(r"\d", value) is not None)


# Okta's ids of an app (its client id), of its SAML signing key and of an authorization server: public parts
# of an IdP's URLs (`http://www.okta.com/exk…` is a SAML issuer, `/oauth2/aus…/v1/authorize` an OIDC one)
_OKTA_PUBLIC_ID = re.compile(r"(?:0oa|exk|aus)[A-Za-z0-9]{17}")


def opaque_path_segment(segment: str) -> bool:
    """A URL path segment that is a credential (a webhook's secret), not a word, number, hex id or file name."""
    return (len(segment) >= 20 and re.fullmatch(r"[A-Za-z0-9_-]+", segment) is not None
            and _OKTA_PUBLIC_ID.fullmatch(segment) is None
            and re.search(r"[a-z]", segment) is not None and re.search(r"[A-Z]", segment) is not None
            and re.search(r"\d", segment) is not None)


class Table:
    """A list of value rules run one after the other over a text, each only where it can match: the
    rules that need digits where there are two in a row, the others where one of their `needs` is."""

    def __init__(self, table: tuple[ValueRule, ...]) -> None:
        self.rules = table
        self._by_digits = any(not rule.needs for rule in table)  # whether any rule runs in digit windows
        needs = sorted({n for rule in table for n in rule.needs}, key=len, reverse=True)
        self._literals = re.compile(_trie(needs)) if needs else None
        self._needs = tuple(needs)
        # the rules worth trying on a text, in table order: all, or only those with needs (no place for a number
        # in it), or only those without (no need in it)
        self._needing = tuple(rule for rule in table if rule.needs)
        self._numbers = tuple(rule for rule in table if not rule.needs)

    def hits(self, text: str) -> Iterator[tuple[ValueRule, re.Match[str], int]]:
        """(rule, match, group of the value) for each match whose rule's check accepts it, rule by rule.

        Rules without `needs` (numbers: cards, phones, addresses ...) run only in windows around the places
        DIGIT_CANDIDATE finds, which every one of their matches holds (tests check each rule's samples)."""
        long = len(text) >= 16384
        if long:  # each need looked for on its own (a substring search) costs less than the alternation's pass
            present = {n for n in self._needs if n in text}
            literal = bool(present)
        else:
            literal = self._literals is not None and self._literals.search(text) is not None
            present = {n for n in self._needs if n in text} if literal else set()
        if not self._by_digits or HAS_DIGITS.search(text) is None:
            windows = []
        else:
            windows = _windows(text, dense_stop=long)
        if not literal and not windows:
            return
        for rule in self.rules if literal and windows else self._needing if literal else self._numbers:
            if rule.needs:  # (tried only when the text holds a need: see the loop's choice of rules)
                if present.isdisjoint(rule.needs):
                    continue
                # a match lies on one line and holds a need; finditer bounded by a line reads that line's
                # end as the text's end, which such a rule treats alike (ValueRule.one_line)
                spans = _lines_holding(text, present.intersection(rule.needs)) if long and rule.one_line else [(0, len(text))]
            else:
                if long and rule.hint_regex is not None and rule.hint_regex.search(text) is None:
                    continue
                spans = windows
            for start, end in spans:
                for m in rule.regex.finditer(text, start, end):
                    if rule.check is None or rule.check(m.group(rule.group)):
                        yield rule, m, rule.group


def _trie(words: Iterable[str]) -> str:
    """A regex matching any of `words`, their common prefixes factored out (`gh(?:o_|p_)`): a search tries a
    position's next character once instead of once for each word."""
    tree: dict = {}
    for word in words:
        node = tree
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}  # a word ends here
    return _trie_node(tree)


def _trie_node(node: dict) -> str:
    branches = [re.escape(ch) + _trie_node(below) for ch, below in sorted(node.items()) if ch]
    if not branches:
        return ""
    if len(branches) == 1 and "" not in node:
        return branches[0]
    return "(?:" + "|".join(branches) + ")" + ("?" if "" in node else "")


def _lines_holding(text: str, needs: set[str]) -> list[tuple[int, int]]:
    """(start, end) of each line of `text` holding one of `needs`, in order, without its line break."""
    starts: set[int] = set()
    for need in needs:
        at = text.find(need)
        while at >= 0:
            start = text.rfind("\n", 0, at) + 1
            starts.add(start)
            end = text.find("\n", at)
            at = text.find(need, end) if end >= 0 else -1
    out = []
    for start in sorted(starts):
        end = text.find("\n", start)
        out.append((start, end if end >= 0 else len(text)))
    return out


# Where a number-shaped value may be: a run of digits and separators, hex pairs with colons, a house
# number before a capitalised word, a postcode; each starts with a digit. Every VALUE_RULE without `needs` matches
# only around one of these (each rule's `yes` samples are checked against it).
DIGIT_CANDIDATE = re.compile(r"\d(?:[\d .:()/-]{4,}\d|[0-9A-Fa-f]{0,3}::?[0-9A-Fa-f]{0,4}:?|[0-9A-Fa-f]?-[0-9A-Fa-f]{2}-|"
                             r" [A-Z][a-z]|[A-Z\d]? \d[A-Z]{2})")
_MARGIN = 48


def _windows(text: str, dense_stop: bool = False) -> list[tuple[int, int]]:
    """Spans of _MARGIN characters around each candidate, overlapping ones merged (an end may lie past the
    text's end: finditer stops there). dense_stop: once past 16 kB, windows covering half of what was read
    (a log, numbers all over) give way to the whole text, as one pass of each rule beats a window at a time.
    Either answer holds every candidate."""
    out: list[tuple[int, int]] = []
    covered = 0
    for m in DIGIT_CANDIDATE.finditer(text):
        start, end = m.span()
        start = start - _MARGIN if start > _MARGIN else 0
        if out and start <= out[-1][1]:
            covered += end + _MARGIN - out[-1][1]
            out[-1] = (out[-1][0], end + _MARGIN)
        else:
            covered += end - start + _MARGIN
            out.append((start, end + _MARGIN))
        if dense_stop and end > 16384 and covered > end // 2:
            return [(0, len(text))]
    return out
