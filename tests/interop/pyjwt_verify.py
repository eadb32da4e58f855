#!/usr/bin/env python3
"""Verifies Latchkey tokens with PyJWT against the gateway's JWKS, each under the algorithm its
key is published with (EdDSA or ES256). Run by tests/interop/jose/algorithms.test.mjs.

Usage: pyjwt_verify.py JWKS_URL TOKEN...
Prints one JSON line: the algorithm and subject of every token.
"""
import json
import sys

import jwt


def main():
    url, tokens = sys.argv[1], sys.argv[2:]
    client = jwt.PyJWKClient(url, cache_keys=False)
    verified = []
    for token in tokens:
        key = client.get_signing_key_from_jwt(token)
        claims = jwt.decode(
            token,
            key.key,
            algorithms=[key.algorithm_name],
            audience="latchkey",
            issuer="latchkey",
        )
        verified.append({"alg": key.algorithm_name, "sub": claims["sub"]})
    print(json.dumps({"verified_with": f"PyJWT {jwt.__version__}", "tokens": verified}))


if __name__ == "__main__":
    main()
