"""Parse by format and visit every string with its context; decide.py redacts each one.

- trees (JSON, YAML, a HAR, a JWT's claims): `walk` gives each string the name it sits under. A
  `{name, value}` / `{key, value}` pair gives its value the pair's name (headers, k8s env, settings
  lists); a HAR `cookies` list makes every value a cookie; a k8s Secret's `data` values are secrets;
  a HAR request's URL and parameter names say whether `code`/`state` beside them are OAuth's.
- HAR bodies (`content`, `postData`, websocket messages): by MIME type and by sniffing, base64 decoded
  first; what is not readable text becomes a placeholder with its size and digest.
- markup: XML through defusedxml (element and attribute names are the names; `<add key=.. value=..>`
  and SAML `<Attribute Name=..>` give their values a name); HTML by tags (inputs and meta tags by
  their name, with the form's action and sibling inputs as OAuth context), text nodes unescaped.
- form bodies and query strings (decide.Redaction.form), multipart (field names), event streams,
  and plain text (decide.Redaction.text).
"""

from __future__ import annotations

import functools
import html
import json
import re
from typing import Any

from diagkit.redact import decode, rules
from diagkit.redact.decide import Ctx, Redaction, memo_key

_PAIR_NAMES = ("name", "key", "Name", "Key")


def _pair_name(node: dict) -> str | None:
    if "value" not in node and "Value" not in node:
        return None
    for key in _PAIR_NAMES:
        if isinstance(node.get(key), str):
            return node[key]
    return None


def walk(r: Redaction, node: Any, name: str | None, ctx: Ctx) -> Any:
    """The redacted node. Lists and dicts are redacted in place (the tree is the redactor's own copy:
    parsed from the input, or copied by Redactor.redact_obj), so a big HAR is never held twice."""
    if isinstance(node, str):
        return r.value(name, node, ctx)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, (int, float)):
        return r.number(name, node, ctx)
    if isinstance(node, bytes):  # YAML's !!binary: read as the text it holds, or judged as bytes by its name
        readable = decode.readable(node)
        if readable is not None:
            new = r.value(name, readable[0], ctx)
            return node if new == readable[0] else new
        rule = rules.name_rule(name) if name else None
        secret = rule is not None and rule.kind not in (rules.KEEP, rules.URL)
        return r.placeholder(node, ctx) if secret or decode.hides_something(node) else node
    if isinstance(node, list):
        if name == "cookies":
            node[:] = [_cookie(r, item, ctx.at(i)) for i, item in enumerate(node)]
        elif name == "_webSocketMessages":
            node[:] = [_websocket(r, item, ctx.at(i)) for i, item in enumerate(node)]
        else:
            names = (str(pair).lower() for x in node if isinstance(x, dict) and (pair := _pair_name(x)))
            here = ctx if ctx.oauth else ctx.oauth_if(not rules.OAUTH_MARKERS.isdisjoint(names))
            if r.spread is not None and node is r.spread[0]:  # a big HAR's entries: spread.walk_entries
                node[:] = r.spread[1](node, str(name), here)
            else:
                for i, item in enumerate(node):
                    node[i] = walk(r, item, name, here.at(i))
        return node
    if not isinstance(node, dict):
        return node
    if _READ_BY_KEYS.isdisjoint(node):  # most objects: nothing in them says how to read them, only their values
        return _values(r, node, ctx, {}, {})
    if "_file" in node and isinstance(node.get("mimeType"), str):  # Playwright keeps a body in a file beside the HAR
        r.report.note(SIDECAR_NOTE)
    if isinstance(node.get("mimeType"), str) and ("text" in node or "params" in node):
        return _body(r, node, ctx)
    pair = _pair_name(node)
    if pair is not None and name is not None and "ookie" in name and _COOKIE_HOLDER.search(rules.normal_name(name)):
        return _cookie(r, node, ctx)  # a browser's own log (CDP's associatedCookies[].cookie): a cookie's value
    if pair is not None:
        value_key = "value" if "value" in node else "Value"
        value = node[value_key]
        node[value_key] = r.value(pair, value, ctx, pair) if value.__class__ is str else walk(r, value, pair, ctx.at(pair))
        if r.terms is not None:  # the user's words go from names too ("X-Acme-Tenant")
            for key in _PAIR_NAMES:
                if isinstance(node.get(key), str):
                    node[key] = r.hide_terms(node[key], ctx)
        return node
    if node.get("kind") == "Secret":
        for key in ("data", "stringData"):
            if isinstance(node.get(key), dict):
                node[key] = {k: (r.pseudo("SECRET", v, "k8s_secret", ctx.at(key).at(k)) if isinstance(v, str) else v)
                             for k, v in node[key].items()}
    oauth = ctx.oauth or not rules.OAUTH_MARKERS.isdisjoint(node)
    if isinstance(node.get("url"), str) and "method" in node:  # a HAR request: its URL and parameters
        oauth = oauth or _request_is_oauth(node)
    here = ctx.oauth_if(oauth)
    named = {"name": "full_name"} if "name" in node and _names_a_person(node) else {}  # a key read as another
    if "displayName" in node:
        kind = node.get("type") or node.get("objectType")
        if isinstance(kind, str):  # Okta's actor and targets, Graph's objects
            if "user" in kind.lower() or "person" in kind.lower():  # User, AppUser
                named["alternateId"] = "username"  # the person's login
            else:  # an app, a policy, a group: its name is no one's
                named["displayName"] = "label"
        if "oldValue" in node or "newValue" in node:
            named["displayName"] = "label"  # an audit log's modified property (Entra's modifiedProperties)
    if name is not None and ("value" in node or "Value" in node) and rules.name_rule(name) is not None:
        # `"spring.datasource.password": {"value": "…", "origin": "…"}` (Spring's /actuator/env): the value is
        # the named setting's
        named.update({"value": name, "Value": name})
    if "kty" in node:  # a JSON Web Key: its private members (RFC 7518 section 6) are a private key's
        named.update(_JWK_PRIVATE)
    if isinstance(node.get("sensitive_attributes"), list) and isinstance(node.get("attributes"), dict):
        _terraform_sensitive(r, node, here)  # Terraform state: the attributes its provider marks sensitive
    aliases = {}
    if isinstance(node.get("variables"), dict):  # GraphQL: a variable is judged by the argument it is passed as
        aliases = dict((var, arg) for arg, var in _GRAPHQL_ARGUMENT.findall(str(node.get("query", ""))))
    return _values(r, node, here, named, aliases)


def _values(r: Redaction, node: dict, here: Ctx, named: dict, aliases: dict) -> dict:
    """An object's values walked, each under its key (or the name `named` reads that key as); a GraphQL
    variable under the argument `aliases` says it is passed as."""
    for key, value in node.items():
        if key == "variables" and aliases:
            for k, v in value.items():
                value[k] = walk(r, v, aliases.get(k, k), here.at(key).at(k))
        elif value is None or value.__class__ is bool:
            continue
        elif value.__class__ in (int, float):
            node[key] = r.number(str(key), value, here, key)
        elif value.__class__ is str and key not in ("data", "stringData"):  # walk() of a string, without the call
            node[key] = r.value(named.get(key, str(key)), value, here, key)
        elif not (node.get("kind") == "Secret" and key in ("data", "stringData")):
            node[key] = walk(r, value, str(key), here.at(key))
    if r.terms is not None and any(isinstance(k, str) and r.terms.search(k) for k in node):
        renamed = {(r.hide_terms(k, here) if isinstance(k, str) else k): v for k, v in node.items()}
        node.clear()
        node.update(renamed)
    return node


# The keys that make walk() read an object otherwise than value by value: a body, a name/value pair, a k8s
# Secret, OAuth parameters, a HAR request, a person's or an app's name, a setting, a JWK, Terraform state, GraphQL.
_READ_BY_KEYS = frozenset({"_file", "mimeType", "text", "params", "value", "Value", "kind", "url", "method", "name",
                           "displayName", "kty", "sensitive_attributes", "variables"}) | rules.OAUTH_MARKERS
SIDECAR_NOTE = ("bodies kept in files beside the HAR (Playwright's _file) were not read: redact each of those "
                "files too, or record the HAR with content embedded")
_COOKIE_HOLDER = re.compile(r"(?:^|_)cookies?$")
_JWK_PRIVATE = {member: "private_key" for member in ("d", "p", "q", "dp", "dq", "qi", "k", "oth")}
_GRAPHQL_ARGUMENT = re.compile(r"(\w+)\s*:\s*\$(\w+)")
# A `name` beside a person's own fields (an email, a phone, a birth date, an address, an age) is that person's
# name (`{"name": "Ana Lima", "email": ...}`, a webhook's `pusher`), whatever the object is called.
_PERSON_FIELDS = frozenset({"EMAIL", "PHONE", "DATE", "ADDRESS"})


def _terraform_sensitive(r: Redaction, node: dict, ctx: Ctx) -> None:
    """A Terraform state instance lists the paths of its sensitive attributes (`[[{"type": "get_attr",
    "value": "result"}]]`): each such attribute becomes a secret whatever its name or shape
    (random_password's `result`, a key vault secret's `value`)."""
    attributes = node["attributes"]
    for path in node["sensitive_attributes"]:
        step = path[0] if isinstance(path, list) and path else path
        name = step.get("value") if isinstance(step, dict) and step.get("type") == "get_attr" else None
        value = attributes.get(name) if isinstance(name, str) else None
        if value is not None and not isinstance(value, bool) and value != "":
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
            attributes[name] = r.pseudo("SECRET", text, "terraform_sensitive", ctx.at("attributes").at(name))


def _names_a_person(node: dict) -> bool:
    if not isinstance(node.get("name"), str):
        return False
    keys = tuple(node)
    return _person_keys(keys) if len(keys) <= 64 else _person_keys.__wrapped__(keys)  # the cache holds small sets


@functools.lru_cache(maxsize=4096)  # objects of one kind repeat their keys (a list of items, of users)
def _person_keys(keys: tuple) -> bool:
    for key in keys:
        if key != "name" and isinstance(key, str):
            rule = rules.name_rule(key)
            if (rule is not None and rule.kind in _PERSON_FIELDS) or rules.normal_name(key) in ("age", "gender"):
                return True
    return False


def _request_is_oauth(request: dict) -> bool:
    split = decode.split_url(request["url"]) or ("", "", "", "", "", "")
    names = decode.param_names(split[4]) | decode.param_names(split[5])
    post = request.get("postData")
    if isinstance(post, dict):
        names |= {str(p.get("name", "")).lower() for p in post.get("params") or [] if isinstance(p, dict)}
        if isinstance(post.get("text"), str) and "=" in post["text"][:4096]:
            names |= decode.param_names(post["text"][:4096])
    return bool(names & rules.OAUTH_MARKERS) or rules.OAUTH_PATH.search(split[3]) is not None


def _cookie(r: Redaction, item: Any, ctx: Ctx) -> Any:
    if not isinstance(item, dict) or not isinstance(item.get("value"), str):
        return walk(r, item, "cookies", ctx)
    return {**item, "value": r.pseudo("COOKIE", item["value"], "cookie", ctx.at(item.get("name", "value")))}


def _websocket(r: Redaction, item: Any, ctx: Ctx) -> Any:
    if not isinstance(item, dict) or not isinstance(item.get("data"), str):
        return walk(r, item, None, ctx)
    if item.get("opcode") == 2:  # a binary frame, base64 in the HAR
        raw = _b64bytes(item["data"])
        readable = decode.readable(raw) if raw is not None else None
        if readable is None:
            return {**item, "data": r.placeholder(raw if raw is not None else item["data"].encode(), ctx)}
        new = document(r, readable[0], decode.sniff(readable[0]), ctx.at("data"))
        return {**item, "data": item["data"] if new == readable[0] else _b64text(readable[1](new))}
    return {**item, "data": r.value("data", item["data"], ctx.at("data"))}


# ---------------------------------------------------------------- HAR bodies


def _body(r: Redaction, node: dict, ctx: Ctx) -> dict:
    out = node
    mime = str(node.get("mimeType", ""))
    if isinstance(node.get("params"), list):
        out["params"] = walk(r, node["params"], "params", ctx.at("params"))
    text = node.get("text")
    if not isinstance(text, str) or not text:
        return out
    where = ctx.at("text")
    if node.get("encoding") == "base64":
        raw = _b64bytes(text)
        readable = decode.readable(raw) if raw is not None else None
        if readable is None:
            out["text"] = r.placeholder(raw if raw is not None else text.encode(), where)
            out.pop("encoding", None)
            return out
        new = body_text(r, readable[0], mime, where)
        if new != readable[0]:
            out["text"] = _b64text(readable[1](new))
        return out
    raw = _hex_chunks(node, text) if text[:1] == "[" else None
    if raw is not None:  # Polly.JS: the bytes as the server sent them, gzip'd or not, in hex
        readable = decode.readable(raw)
        if readable is None:
            out["text"] = r.placeholder(raw, where)
            return out
        new = body_text(r, readable[0], mime, where)
        if new != readable[0]:
            out["text"] = json.dumps([readable[1](new).hex()])  # one chunk: Polly replays their concatenation
        return out
    if decode.readable(text[:65536].encode("utf-8", "surrogatepass")) is None:
        out["text"] = r.placeholder(text.encode("utf-8", "surrogatepass"), where)
        return out
    out["text"] = r.memo(("body", mime, memo_key(text)), where, lambda: body_text(r, text, mime, where))
    return out


_HEX_CHUNKS = re.compile(r'\[\s*"[0-9a-f]*"(?:\s*,\s*"[0-9a-f]*")*\s*\]')


def _hex_chunks(node: dict, text: str) -> bytes | None:
    """The bytes of a body Polly.JS recorded as bytes: a JSON array of hex strings, the chunks of the stream
    (`_isBinary`, or a gzip stream by its first bytes; a JSON body that is a list of hashes is neither)."""
    if _HEX_CHUNKS.fullmatch(text) is None:
        return None
    try:
        raw = bytes.fromhex("".join(json.loads(text)))
    except ValueError:  # a chunk of odd length: no bytes
        return None
    return raw if raw and (node.get("_isBinary") is True or raw[:2] == b"\x1f\x8b") else None


def body_text(r: Redaction, text: str, mime_type: str, ctx: Ctx) -> str:
    mime = mime_type.lower()
    if "multipart/" in mime:
        return _multipart(r, text, mime_type, ctx)
    if "x-www-form-urlencoded" in mime:
        return r.form(text, ctx)
    if "event-stream" in mime:
        return "\n".join(_event_line(r, line, ctx) for line in text.split("\n"))
    if "json" in mime:
        return document(r, text, "json", ctx)  # (parsed once: what does not parse is sniffed there)
    if "html" in mime or "xml" in mime:
        return document(r, text, "markup", ctx)
    return document(r, text, decode.sniff(text), ctx)


def _event_line(r: Redaction, line: str, ctx: Ctx) -> str:
    field, sep, value = line.partition(":")
    if sep and field == "data":
        lead = value[: len(value) - len(value.lstrip(" "))]
        return f"data:{lead}{r.value(None, value.lstrip(' '), ctx)}"
    return r.text(line, ctx) if line else line


def _multipart(r: Redaction, text: str, mime: str, ctx: Ctx) -> str:
    m = re.search(r'boundary="?([^";]+)"?', mime)
    if m is None:
        return r.text(text, ctx)
    delimiter = "--" + m.group(1)
    parts = text.split(delimiter)
    for i, part in enumerate(parts):
        head, sep, body = part.partition("\r\n\r\n")
        if not sep:
            head, sep, body = part.partition("\n\n")
        if not sep:
            continue
        name = re.search(r'(?i)content-disposition:[^\r\n]*?\bname="([^"]*)"', head)
        tail = body[len(body.rstrip("\r\n")):]
        value = body[: len(body) - len(tail)]
        parts[i] = head + sep + r.value(name.group(1) if name else None, value, ctx.at(name.group(1) if name else i)) + tail
    return delimiter.join(parts)


def _b64bytes(text: str) -> bytes | None:
    import base64
    import binascii

    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        return None


def _b64text(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


# ---------------------------------------------------------------- documents in a string


def document(r: Redaction, text: str, sniffed: str, ctx: Ctx) -> str:
    if sniffed == "json":
        try:
            tree = json.loads(text)
        except ValueError:  # labelled JSON, or looking like it, and not JSON: read as what it is
            sniffed = decode.sniff(text)
            return document(r, text, sniffed, ctx) if sniffed != "json" else r.text(text, ctx)
        before = r.changes
        new = walk(r, tree, None, ctx)
        if r.changes == before:
            return text
        return _json_as_written(new, text)
    if sniffed == "markup":
        return markup(r, text, ctx)
    if sniffed == "form":
        return r.form(text, ctx)
    return r.text(text, ctx)


_INDENT = re.compile(r"\n([ \t]+)[\"{\[\]}]")


def _json_as_written(tree: Any, text: str) -> str:
    """JSON laid out as `text` was: its indentation, its separators, the space around it (a body's size then
    changes only by what was replaced)."""
    body = text.strip()
    if "\n" in body:
        indent = m.group(1) if (m := _INDENT.search(body)) else 2
        out = json.dumps(tree, indent=indent, ensure_ascii=False, separators=(", " if ", \n" in body else ",", ": "))
    else:
        out = json.dumps(tree, ensure_ascii=False, separators=(", ", ": ") if ": " in body else (",", ":"))
    return text[: len(text) - len(text.lstrip())] + out + text[len(text.rstrip()):]


def csv_text(r: Redaction, text: str, ctx: Ctx) -> str | None:
    """A table with a header row (CSV, TSV): each cell judged by its column's name, written back in the
    input's dialect; None when the text is not such a table (then it is read as text)."""
    import csv
    import io

    header_line = text.split("\n", 1)[0].rstrip("\r")  # written back as it was (its names are no one's data)
    delimiter = max(",;\t|", key=header_line.count)  # the header's separator; quoting as spreadsheets write it
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    except csv.Error:
        return None
    filled = [row for row in rows[1:] if row]
    if not filled or len(rows[0]) < 2 or "\n" in "".join(rows[0]) or sum(len(row) == len(rows[0]) for row in filled) < 0.9 * len(filled):
        return None
    header = [cell.strip() for cell in rows[0]]
    for n, row in enumerate(rows[1:], start=2):
        for i, cell in enumerate(row):
            name = header[i] if i < len(header) and header[i] else None
            if cell.strip():
                row[i] = r.value(name, cell, ctx.at(f"line {n}").at(name or i))
    ending = "\r\n" if "\r\n" in text else "\n"
    quote_all = all(line.startswith('"') for line in text.splitlines()[1:20] if line)
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator=ending,
               quoting=csv.QUOTE_ALL if quote_all else csv.QUOTE_MINIMAL).writerows(rows[1:])
    written = out.getvalue()
    if r.terms is not None:
        header_line = r.hide_terms(header_line, ctx)
    written = header_line + ending + written
    return written if text.endswith(("\n", "\r")) else written[: len(written) - len(ending)]


class UnsafeXml(ValueError):
    """XML with a DTD or entity declarations: never parsed (billion laughs, external entities)."""


def markup(r: Redaction, text: str, ctx: Ctx, whole_file: bool = False) -> str:
    """XML or HTML. XML with a DTD is refused for a whole file, and a placeholder inside another one."""
    head = text.lstrip()[:512].lower()
    if "<html" in head or "<!doctype html" in head or not head.startswith("<"):
        return html_text(r, text, ctx)
    try:
        out = xml_text(r, text, ctx)
    except UnsafeXml:
        if whole_file:
            raise
        return r.placeholder(text.encode("utf-8"), ctx)
    return out if out is not None else html_text(r, text, ctx, fragment=True)


# ---------------------------------------------------------------- XML


def xml_text(r: Redaction, text: str, ctx: Ctx) -> str | None:
    """The XML document redacted, or None when it does not parse (then it is treated as HTML/text).

    defusedxml reads it first and refuses a DTD or entities; only then does lxml parse it again, with
    entities and network off, so that the copy keeps its namespace declarations where they were (a SAML
    `xsi:type="xsd:string"` needs its `xmlns:xsd`), its comments and its attributes' order."""
    import xml.etree.ElementTree as ET

    import defusedxml.ElementTree as DET
    from defusedxml import DefusedXmlException
    from lxml import etree

    data = text.encode("utf-8")
    try:
        DET.fromstring(data)
    except DefusedXmlException:
        raise UnsafeXml from None
    except (ET.ParseError, ValueError):
        return None
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=False)
    try:
        root = etree.fromstring(data, parser)
    except (etree.XMLSyntaxError, ValueError):
        return None
    before = r.changes
    _element(r, root, ctx)
    if r.changes == before:
        return text
    after = etree.tostring(root, encoding="unicode")
    declaration = re.match(r"\s*<\?xml[^>]*\?>\s*", text)
    head = re.sub(r"""encoding=["'][^"']*["']""", 'encoding="UTF-8"', declaration.group(0)) if declaration else ""
    return head + after


def _local(tag: Any) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _element(r: Redaction, el: Any, ctx: Ctx, name: str | None = None) -> None:
    local = _local(el.tag)
    attrs = {_local(k): k for k in el.attrib}
    # <add key="SmtpPassword" value="..."/>, <add name="Main" connectionString="..."/>
    pair = next((el.attrib[attrs[k]] for k in ("key", "name", "Name") if k in attrs and local != "Attribute"), None)
    here = ctx.at(local)
    for short, full in attrs.items():
        value = el.attrib[full]
        if short in ("key", "name", "Name", "Format", "Method"):  # names, not values: still scanned
            el.attrib[full] = r.value(None, value, here.at("@" + short))
            continue
        attr_name = pair if pair is not None and short in ("value", "Value") else short
        el.attrib[full] = r.value(attr_name, value, here.at("@" + short))
    if el.text and el.text.strip():  # <Data Name="TargetUserName">: an element named by its name attribute
        named = pair if pair is not None and rules.name_rule(pair) is not None else local
        el.text = r.value(name or named, el.text, here)
    # SAML <Attribute Name="...givenname"><AttributeValue>: the value is judged by the attribute's name
    child_name = el.attrib.get(attrs["Name"]) if local == "Attribute" and "Name" in attrs else None
    for child in el:
        if isinstance(child.tag, str):
            _element(r, child, here, child_name)
        elif child.text and child.text.strip():  # a comment or processing instruction: its text is free text
            child.text = r.value(None, child.text, here)
        if child.tail and child.tail.strip():
            child.tail = r.value(None, child.tail, here)


# ---------------------------------------------------------------- HTML

_HTML_TOKEN = re.compile(r"<!--.*?-->|<(script|style)\b[^>]*>.*?</\1\s*>|<[A-Za-z!/?][^>]*>|[^<]+|<", re.S | re.I)
_ATTR = re.compile(r"""([^\s=/>"']+)(\s*=\s*)("[^"]*"|'[^']*'|[^\s>]+)""")
_ROW_TAG = re.compile(r"<(tr|td|th)\b", re.I)
_NAMED_TAGS = frozenset({"input", "meta", "param", "button", "textarea", "select", "option"})


def html_text(r: Redaction, text: str, ctx: Ctx, fragment: bool = False) -> str:
    """HTML, or (fragment) XML that does not parse (a SAML assertion pasted without its namespace
    declarations): there an element's text is judged by the element's name when a rule knows it
    (`<saml2:NameID>`), and a SAML AttributeValue by its Attribute's Name."""
    names = {n.lower() for n in re.findall(r"""(?i)\bname\s*=\s*["']?([\w.:-]+)""", text)}
    actions = " ".join(re.findall(r"""(?i)\baction\s*=\s*["']?([^"'\s>]+)""", text))
    here = ctx.oauth_if(bool(names & rules.OAUTH_MARKERS)
                        or (bool(names & {"code", "state"}) and rules.OAUTH_PATH.search(actions) is not None))
    out = []
    element = attribute = None  # (fragment) the last element opened; the SAML Attribute's Name it is in
    cell, label = -1, ""  # a table row's cell being read, and its first cell's text: the label of those after it
    for m in _HTML_TOKEN.finditer(text):
        token = m.group(0)
        if fragment and token.startswith("<") and not m.group(1) and not token.startswith("<!"):
            element, attribute = _fragment_names(token, element, attribute)
        elif (row := _ROW_TAG.match(token)) is not None:  # a debug page's settings (Django, phpinfo): label, value
            cell, label = (-1, "") if row.group(1).lower() == "tr" else (cell + 1, label)
        if m.group(1):  # script or style: the code inside is text, not HTML-escaped
            open_end = token.index(">") + 1
            close = token.rindex("</")
            out.append(token[:open_end] + r.text(token[open_end:close], here, prose=False) + token[close:])
        elif token.startswith("<!--"):
            out.append("<!--" + r.text(token[4:-3], here) + "-->")
        elif token.startswith("<") and len(token) > 1:
            out.append(_tag(r, token, here))
        else:
            plain = html.unescape(token)
            name = attribute if element == "AttributeValue" and attribute else element
            if cell == 0 and plain.strip():
                label = (label + " " + plain.strip()).strip()[:80]
            elif cell > 0 and label and not fragment:
                name = label
            rule = rules.name_rule(name) if (fragment or cell > 0) and name and plain.strip() else None
            if rule is not None and rule.kind not in (rules.KEEP, rules.URL, rules.OAUTH_CONTEXT):
                lead, core = plain[: len(plain) - len(plain.lstrip(" \t\r\n'\""))], plain.strip(" \t\r\n'\"")
                new = lead + r.value(name, core, here.at(name)) + plain[len(lead) + len(core):]
            else:  # a row's label names a setting, not a person: no NER there
                new = r.text(plain, here, prose=cell != 0) if plain.strip() else plain
            out.append(token if new == plain else html.escape(new, quote=False))
    return "".join(out)


def _fragment_names(tag: str, element: str | None, attribute: str | None) -> tuple[str | None, str | None]:
    """(element, attribute) after `tag` in XML read as a fragment: the local name of the element just opened
    (None after a closing tag) and the Name of the SAML Attribute being read (None once it is closed)."""
    m = re.match(r"<(/?)(?:[\w.-]+:)?([\w.-]+)", tag)
    if m is None:
        return element, attribute
    closing, local = m.group(1), m.group(2)
    if closing:
        return None, None if local == "Attribute" else attribute
    if local == "Attribute":
        named = re.search(r"""\bName\s*=\s*["']([^"']*)["']""", tag)
        return local, named.group(1) if named else None
    return (None if tag.rstrip().endswith("/>") else local), attribute


def _tag(r: Redaction, tag: str, ctx: Ctx) -> str:
    m = re.match(r"<([A-Za-z][\w:-]*)", tag)
    if m is None:
        return tag
    element = m.group(1).lower()
    attrs = {a.group(1).lower(): a.group(3).strip("\"'") for a in _ATTR.finditer(tag)}
    field = attrs.get("name") or attrs.get("property") or attrs.get("http-equiv") or attrs.get("id")
    if attrs.get("type", "").lower() == "password":
        field = "password"

    def one(a: re.Match[str]) -> str:
        attr, raw = a.group(1), a.group(3)
        quote = raw[0] if raw[:1] in "\"'" else ""
        value = html.unescape(raw[1:-1] if quote else raw)
        if attr.lower() in ("type", "class", "method", "rel", "charset"):
            return a.group(0)
        if attr.lower() in ("name", "id", "property", "http-equiv"):  # names, not values: still scanned
            new = r.value(None, value, ctx.at(f"{element}[{attr}]"))
            return a.group(0) if new == value else f"{attr}{a.group(2)}{quote or chr(34)}{html.escape(new)}{quote or chr(34)}"
        name = field if element in _NAMED_TAGS and attr.lower() in ("value", "content") and field else attr
        new = r.value(name, value, ctx.at(f"{element}[{field or attr}]"))
        if new == value:
            return a.group(0)
        return f"{attr}{a.group(2)}{quote or chr(34)}{html.escape(new, quote=True)}{quote or chr(34)}"
    return tag[: m.end()] + _ATTR.sub(one, tag[m.end():])
