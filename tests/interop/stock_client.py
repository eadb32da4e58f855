#!/usr/bin/env python3
"""A stranger's view of auth: a stock gRPC client that knows nothing of Latchkey's protos
(everything comes from server reflection) syncs a user, fetches the JWKS, and verifies the token
with PyJWT — a standard JWT library in another language.

Usage: stock_client.py HOST:PORT SYNC_SECRET
"""
import base64
import json
import sys

import grpc
import jwt
from google.protobuf import descriptor_pool, json_format
from google.protobuf.message_factory import GetMessageClass
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

SERVICE = "latchkey.auth.v1.AuthService"


def call(channel, pool, method, body, metadata=()):
    service = pool.FindServiceByName(SERVICE)
    desc = service.FindMethodByName(method)
    request_cls = GetMessageClass(desc.input_type)
    response_cls = GetMessageClass(desc.output_type)
    stub = channel.unary_unary(
        f"/{SERVICE}/{method}",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=response_cls.FromString,
    )
    request = json_format.ParseDict(body, request_cls())
    return json_format.MessageToDict(stub(request, metadata=metadata), preserving_proto_field_name=True)


def main():
    address, sync_secret = sys.argv[1], sys.argv[2]
    channel = grpc.insecure_channel(address)
    reflection_db = ProtoReflectionDescriptorDatabase(channel)
    services = reflection_db.get_services()
    assert SERVICE in services, services
    pool = descriptor_pool.DescriptorPool(reflection_db)

    synced = call(
        channel, pool, "SyncUser",
        {"provider": "github", "subject": "py-1", "email": "Py@Example.com", "name": "Py"},
        metadata=(("x-latchkey-sync-secret", sync_secret),),
    )
    token = synced["token"]["access_token"]
    user_id = synced["user"]["id"]
    assert synced["user"]["email"] == "py@example.com", synced

    jwks = call(channel, pool, "GetJwks", {})
    keys = {}
    for key in jwks["keys"]:
        jwk = {"kty": key["kty"], "crv": key["crv"], "x": key["x"], "kid": key["kid"], "alg": key["alg"], "use": key["key_use"]}
        keys[key["kid"]] = jwt.PyJWK.from_dict(jwk)
    kid = jwt.get_unverified_header(token)["kid"]
    claims = jwt.decode(token, keys[kid].key, algorithms=["EdDSA"], audience="latchkey", issuer="latchkey")
    assert claims["sub"] == user_id, claims

    # A wrong sync secret is named, not a bare UNAUTHENTICATED.
    try:
        call(channel, pool, "SyncUser", {"provider": "github", "subject": "x", "email": "x@example.com"},
             metadata=(("x-latchkey-sync-secret", "wrong"),))
        raise AssertionError("a wrong sync secret was accepted")
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error
        details = dict(error.trailing_metadata() or ())
        status = details.get("grpc-status-details-bin", b"")
        assert b"SYNC_SECRET_INVALID" in status, status

    print(json.dumps({"verified_with": f"PyJWT {jwt.__version__}", "kid": kid, "sub": claims["sub"], "services": services}))


if __name__ == "__main__":
    main()
