"""Unit tests for the WWW-Authenticate parser (RFC 9110 §11.6.1 grammar, RFC 6750 params)."""

from __future__ import annotations

import pytest

from diagkit.formats.www_authenticate import Challenge, find, parse, parse_all


def test_rfc9110_example_with_two_challenges_and_escaped_quotes():
    value = 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"'
    challenges = parse(value)
    assert [c.scheme for c in challenges] == ["Newauth", "Basic"]
    assert challenges[0].params == {"realm": "apps", "type": "1", "title": 'Login to "apps"'}
    assert challenges[1].params == {"realm": "simple"}


def test_rfc6750_bearer_error_with_comma_inside_quotes():
    value = ('Bearer realm="example", error="insufficient_scope", scope="orders.read, orders.write", '
             'error_description="The request requires higher privileges"')
    (bearer,) = parse(value)
    assert bearer.scheme == "Bearer"
    assert bearer.params["error"] == "insufficient_scope"
    assert bearer.params["scope"] == "orders.read, orders.write"
    assert bearer.params["error_description"] == "The request requires higher privileges"


def test_token68_then_another_challenge():
    challenges = parse("Negotiate YIIBhgYGKwYBBQUCoIIBejCCAXagMDAu==, Basic realm=\"corp\"")
    assert challenges[0].scheme == "Negotiate"
    assert challenges[0].token68 == "YIIBhgYGKwYBBQUCoIIBejCCAXagMDAu=="
    assert challenges[0].params == {}
    assert challenges[1] == Challenge("Basic", {"realm": "corp"}, None)


def test_bare_schemes_and_empty_list_elements():
    challenges = parse(" , Negotiate, NTLM ,, Bearer")
    assert [c.scheme for c in challenges] == ["Negotiate", "NTLM", "Bearer"]
    assert all(c.params == {} and c.token68 is None for c in challenges)


def test_names_are_case_insensitive_and_params_lower_cased():
    (challenge,) = parse('BEARER Realm="x", ERROR=invalid_token')
    assert challenge.params == {"realm": "x", "error": "invalid_token"}
    assert challenge.is_scheme("bearer")
    assert find([challenge], "Bearer") is challenge
    assert find([challenge], "Basic") is None


def test_whitespace_around_equals_and_first_duplicate_wins():
    (challenge,) = parse('Digest realm = "r1", realm="r2", qop="auth,auth-int", algorithm=SHA-256')
    assert challenge.params["realm"] == "r1"
    assert challenge.params["qop"] == "auth,auth-int"
    assert challenge.params["algorithm"] == "SHA-256"


def test_repeated_header_fields_are_concatenated_in_order():
    challenges = parse_all(['Bearer realm="api"', 'Basic realm="legacy"', "DPoP algs=\"ES256\""])
    assert [c.scheme for c in challenges] == ["Bearer", "Basic", "DPoP"]
    assert challenges[2].params == {"algs": "ES256"}


@pytest.mark.parametrize("value", ["", "   ", ",", '"only a quoted string"', "Bearer realm=\"unterminated"])
def test_malformed_input_never_raises(value):
    challenges = parse(value)
    assert isinstance(challenges, list)
    if value.startswith("Bearer"):
        assert challenges[0].params == {"realm": "unterminated"}
    else:
        assert challenges == []


def test_safe_dict_hides_token68_and_nonces():
    (digest,) = parse('Digest realm="r", nonce="abc123", opaque="zz"')
    shown = digest.safe_dict()
    assert shown["params"] == {"realm": "r", "nonce": "<redacted>", "opaque": "<redacted>"}
    (negotiate,) = parse("Negotiate c2VjcmV0")
    assert negotiate.safe_dict()["token68"] == "<present>"
    assert "c2VjcmV0" not in str(negotiate.safe_dict())
