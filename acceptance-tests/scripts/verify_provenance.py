#!/usr/bin/env python3
"""Checks a DSSE envelope of SLSA provenance without any of stevedore's code.

The acceptance tests run this on what the provider published, so a mistake
shared by our signer and our own verifier (the PAE, the key id, the
statement's shape) still shows up. It follows the DSSE protocol and the
in-toto Statement v1 / SLSA Provenance v1 specs directly, using only the
`cryptography` package for the signature maths.

    verify_provenance.py --public-key PUB.pem --envelope ENVELOPE.json \
        [--subject-digest sha256:HEX] [--builder-prefix PREFIX]

Prints "OK" and exits 0 when everything holds; otherwise prints the first
problem found to stderr and exits 1.
"""

import argparse
import base64
import binascii
import hashlib
import json
import re
import sys
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"
PAYLOAD_TYPE = "application/vnd.in-toto+json"
LOWER_HEX = re.compile(r"[0-9a-f]+")
ALGORITHM_NAME = re.compile(r"[a-z0-9-]+")
RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


class Refused(Exception):
    """Why the envelope does not pass."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding, computed here on purpose."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def b64decode(text, what):
    """Standard or URL-safe base64, padded or not, as DSSE allows."""
    if not isinstance(text, str):
        raise Refused(f"{what} is not a base64 string")
    padded = text + "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.urlsafe_b64decode(padded.encode("ascii"))
        return base64.b64decode(padded.encode("ascii"), validate=True)
    except (binascii.Error, ValueError) as e:
        raise Refused(f"{what} is not valid base64: {e}") from e


def load_key(path):
    with open(path, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    if isinstance(key, ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise Refused(f"the key is on curve {key.curve.name}, not P-256")
    elif not isinstance(key, ed25519.Ed25519PublicKey):
        raise Refused(f"the key is a {type(key).__name__}, not ECDSA P-256 or Ed25519")
    spki = key.public_bytes(serialization.Encoding.DER,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return key, hashlib.sha256(spki).hexdigest()


def signature_verifies(key, message, sig):
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(sig, message)
        else:
            key.verify(sig, message, ec.ECDSA(hashes.SHA256()))
        return True
    except InvalidSignature:
        return False


def check_signature(envelope, key, key_id):
    """Returns the payload once a signature naming this key verifies."""
    if not isinstance(envelope, dict):
        raise Refused("the envelope is not a JSON object")
    payload_type = envelope.get("payloadType")
    if payload_type != PAYLOAD_TYPE:
        raise Refused(f"payloadType is {payload_type!r}, expected {PAYLOAD_TYPE!r}")
    payload = b64decode(envelope.get("payload"), "payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise Refused("the envelope has no signatures")
    message = pae(payload_type, payload)
    keyids = []
    for signature in signatures:
        if not isinstance(signature, dict):
            raise Refused("a signature is not a JSON object")
        keyids.append(signature.get("keyid"))
        if signature.get("keyid") != key_id:
            continue
        if signature_verifies(key, message, b64decode(signature.get("sig"), "sig")):
            return payload
        raise Refused(f"the signature by key {key_id} does not verify")
    raise Refused(f"no signature has keyid {key_id} (the sha256 of the key's SPKI); "
                  f"found {keyids}")


def check_digest_set(digest, where):
    if not isinstance(digest, dict) or not digest:
        raise Refused(f"{where}.digest is not a non-empty object")
    for algorithm, value in digest.items():
        if not ALGORITHM_NAME.fullmatch(algorithm):
            raise Refused(f"{where}.digest has algorithm {algorithm!r}, not lowercase")
        if not isinstance(value, str) or not LOWER_HEX.fullmatch(value):
            raise Refused(f"{where}.digest[{algorithm!r}] is not lowercase hex")


def check_time(value, where):
    if not isinstance(value, str) or not RFC3339.fullmatch(value):
        raise Refused(f"{where} is {value!r}, not an RFC 3339 timestamp")
    normal = value.upper().replace("Z", "+00:00")
    normal = re.sub(r"\.(\d{6})\d+", r".\1", normal)  # fromisoformat: at most microseconds
    try:
        datetime.fromisoformat(normal)
    except ValueError as e:
        raise Refused(f"{where} is {value!r}, not a real time: {e}") from e


def field(obj, path):
    for name in path.split("."):
        if not isinstance(obj, dict) or name not in obj:
            raise Refused(f"the statement has no {path}")
        obj = obj[name]
    return obj


def check_statement(statement):
    if not isinstance(statement, dict):
        raise Refused("the payload is not a JSON object")
    if statement.get("_type") != STATEMENT_TYPE:
        raise Refused(f"_type is {statement.get('_type')!r}, expected {STATEMENT_TYPE!r}")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise Refused("subject is not a non-empty list")
    for i, subject in enumerate(subjects):
        if not isinstance(subject, dict) or not isinstance(subject.get("name"), str):
            raise Refused(f"subject[{i}] has no name")
        check_digest_set(subject.get("digest"), f"subject[{i}]")
    predicate_type = statement.get("predicateType")
    if predicate_type != SLSA_PROVENANCE_V1:
        raise Refused(f"predicateType is {predicate_type!r}, expected {SLSA_PROVENANCE_V1!r}")
    if not isinstance(field(statement, "predicate.buildDefinition.buildType"), str):
        raise Refused("buildDefinition.buildType is not a string")
    if not isinstance(field(statement, "predicate.buildDefinition.externalParameters"), dict):
        raise Refused("buildDefinition.externalParameters is not an object")
    dependencies = statement["predicate"]["buildDefinition"].get("resolvedDependencies", [])
    if not isinstance(dependencies, list):
        raise Refused("buildDefinition.resolvedDependencies is not a list")
    for i, dependency in enumerate(dependencies):
        if not isinstance(dependency, dict):
            raise Refused(f"resolvedDependencies[{i}] is not an object")
        if "digest" in dependency:
            check_digest_set(dependency["digest"], f"resolvedDependencies[{i}]")
    if not isinstance(field(statement, "predicate.runDetails.builder.id"), str):
        raise Refused("runDetails.builder.id is not a string")
    metadata = statement["predicate"]["runDetails"].get("metadata", {})
    if not isinstance(metadata, dict):
        raise Refused("runDetails.metadata is not an object")
    for name in ("startedOn", "finishedOn"):
        if name in metadata:
            check_time(metadata[name], f"runDetails.metadata.{name}")


def check_expectations(statement, subject_digest, builder_prefix):
    if subject_digest is not None:
        algorithm, _, value = subject_digest.partition(":")
        if not any(s["digest"].get(algorithm) == value for s in statement["subject"]):
            raise Refused(f"no subject has digest {subject_digest}")
    builder_id = statement["predicate"]["runDetails"]["builder"]["id"]
    if builder_prefix is not None and not builder_id.startswith(builder_prefix):
        raise Refused(f"builder.id {builder_id!r} does not start with {builder_prefix!r}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--public-key", required=True, help="PEM SubjectPublicKeyInfo")
    parser.add_argument("--envelope", required=True, help="DSSE envelope JSON")
    parser.add_argument("--subject-digest", help="a subject must have it, e.g. sha256:HEX")
    parser.add_argument("--builder-prefix", help="runDetails.builder.id must start with it")
    args = parser.parse_args()
    try:
        key, key_id = load_key(args.public_key)
        with open(args.envelope, "rb") as f:
            envelope = json.load(f)
        payload = check_signature(envelope, key, key_id)
        statement = json.loads(payload)
        check_statement(statement)
        check_expectations(statement, args.subject_digest, args.builder_prefix)
    except (Refused, OSError, ValueError) as e:
        print(f"verify_provenance: {e}", file=sys.stderr)
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
