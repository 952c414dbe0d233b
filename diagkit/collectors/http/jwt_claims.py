"""Findings about a JWT's claims (jwt.*): expiry and not-before against two clocks, issuer, audience, scope.

Shared by the HTTP probe (a bearer token) and the HAR probe (tokens seen in a recording). Reading the
token is formats.jwt's job; this module only judges what it claims.
"""

from __future__ import annotations

import datetime as _dt

from diagkit.findings import human_duration
from diagkit.formats import jwt
from diagkit.probe import Report


def check_claims(report: Report, decoded: jwt.DecodedJWT, now: _dt.datetime, *, expect_issuer: str | None = None,
                 expect_audience: str | None = None, expect_scope: str | None = None,
                 server_date: _dt.datetime | None = None, where: str = "bearer token") -> None:
    """Adds jwt.* findings for what is wrong with the token's claims (nothing when all is well).

    Times are judged against `now` and, when given, the server's clock (`server_date`), with jwt.LEEWAY_S.
    """
    label = where[:1].upper() + where[1:]
    if decoded.encrypted:
        report.add("jwt.token.encrypted", f"The {where} is an encrypted JWT (JWE); its claims cannot be read",
                   evidence={"where": where, "alg": decoded.header.get("alg"), "enc": decoded.header.get("enc")})
        return
    claims = decoded.claims
    if decoded.alg.lower() == "none":
        report.add("jwt.alg.none", f"The {where} is unsigned (alg: none)",
                   evidence={"where": where, "alg": decoded.alg, "signature_present": decoded.signature_present})

    clocks = [("local", now)]
    if server_date is not None:
        clocks.append(("server", server_date))
    leeway = _dt.timedelta(seconds=jwt.LEEWAY_S)

    exp = jwt.claim_time(claims.get("exp"))
    if "exp" in claims and exp is None:
        report.add("jwt.claims.malformed", f"The {where}'s exp claim is not a number",
                   evidence={"where": where, "claim": "exp"})
    if exp is not None:
        for clock, moment in clocks:
            if exp + leeway <= moment:
                detail = (f"The exp claim ({jwt.iso_time(exp)}) is {human_duration((moment - exp).total_seconds())} before the "
                          f"{'local clock' if clock == 'local' else 'server clock (Date header)'} ({jwt.iso_time(moment)}).")
                if clock == "server":
                    detail += " By the local clock the token is still valid: the API's clock is ahead."
                report.add("jwt.expired", f"{label} expired {human_duration((moment - exp).total_seconds())} ago",
                           detail=detail, evidence={"where": where, "exp": jwt.iso_time(exp), "clock": clock,
                                                    "now": jwt.iso_time(moment)})
                break

    for claim in ("nbf", "iat"):
        start = jwt.claim_time(claims.get(claim))
        if start is None:
            continue
        done = False
        for clock, moment in clocks:
            if start - leeway > moment:
                ahead = human_duration((start - moment).total_seconds())
                report.add("jwt.not_yet_valid", f"{label} is not valid for another {ahead} ({claim})",
                           detail=(f"The {claim} claim ({jwt.iso_time(start)}) is {ahead} after the "
                                   f"{'local clock' if clock == 'local' else 'server clock (Date header)'}; "
                                   "the issuer's clock is likely ahead."),
                           evidence={"where": where, claim: jwt.iso_time(start), "clock": clock, "now": jwt.iso_time(moment)})
                done = True
                break
        if done:
            break

    if expect_issuer is not None:
        iss = claims.get("iss")
        if iss != expect_issuer:
            hint = ""
            if isinstance(iss, str) and iss.rstrip("/") == expect_issuer.rstrip("/"):
                hint = " They differ only by a trailing slash, which validators treat as a different issuer."
            report.add("jwt.issuer.mismatch", f"{label} was issued by {iss!r}, not {expect_issuer!r}",
                       detail=f"The iss claim must equal the expected issuer exactly.{hint}",
                       evidence={"where": where, "expected": expect_issuer, "actual": iss})

    if expect_audience is not None:
        aud = jwt.audiences(claims)
        if expect_audience not in aud:
            report.add("jwt.audience.mismatch", f"{label} is for audience {aud or 'none'}, not {expect_audience!r}",
                       evidence={"where": where, "expected": expect_audience, "actual": claims.get("aud")})

    if expect_scope is not None:
        wanted = expect_scope.replace(",", " ").split()
        granted = jwt.scopes(claims)
        missing = [s for s in wanted if s not in granted]
        if missing:
            report.add("jwt.scope.missing", f"{label} lacks the scope {' '.join(missing)}",
                       detail=("The token has no scope or scp claim at all." if not granted else
                               f"Granted scopes: {' '.join(granted)}."),
                       evidence={"where": where, "missing": missing, "granted": granted})

    if jwt.is_id_token(decoded):
        traits: list[str] = [k for k in ("nonce", "at_hash", "c_hash") if k in claims]
        if claims.get("azp") is not None and jwt.audiences(claims) == [claims.get("azp")]:
            traits.append("aud == azp")
        report.add("jwt.token.id_token", f"{label} looks like an OpenID Connect ID token, not an access token",
                   detail=("It carries ID-token traits (" + ", ".join(traits) + ") and no scope; APIs reject "
                           "ID tokens because their audience is the client, not the API."),
                   evidence={"where": where, "traits": traits})
