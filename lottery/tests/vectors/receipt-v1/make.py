#!/usr/bin/env python3
"""Known-answer receipts (lottery/SPEC.md §16), computed independently of the Rust code with
Python's hashlib and the `cryptography` package: a batch of three receipts signed once by
RFC 8032 §7.1 TEST 3's key, each with its RFC 6962 audit path.

    cd lottery/tests/vectors/receipt-v1 && python3 make.py
"""
import hashlib
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

SECRET = "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7"


def h(b):
    return hashlib.sha256(b).digest()


def mth(leaves):
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return h(b"\x01" + mth(leaves[:k]) + mth(leaves[k:]))


def path(m, leaves):
    if len(leaves) == 1:
        return []
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    if m < k:
        return path(m, leaves[:k]) + [mth(leaves[k:])]
    return path(m - k, leaves[k:]) + [mth(leaves[:k])]


RECEIPTS = [
    ("01KARDKCX650GXHDPXBDD1JSYG", "92845daeafe987c18fdf66145a091fd6", "PH0001", "SURG", 1,
     "2026-11-20T08:15:30.001Z", "2026-11-30T08:15:30.001Z", "2026-11-21", 3),
    ("01KARDKCX7ZZZZZZZZZZZZZZZZ", "00000000000000000000000000000001", "PH0002", "KN95", 0,
     "2026-11-20T08:15:30.002Z", "2026-11-30T08:15:30.002Z", "2026-11-21", 3),
    ("01KARDKCX8AAAAAAAAAAAAAAAA", "ffffffffffffffffffffffffffffffff", "PH-7", "N95", 1,
     "2026-11-20T21:59:59.999Z", "2026-11-30T21:59:59.999Z", "2026-11-22", 0),
]

statements = []
for t, person, ph, pr, flex, acc, valid, first, cool in RECEIPTS:
    statements.append(
        ("maskdraw-receipt-v1\nticket:%s\nperson:%s\npharmacy:%s\nproduct:%s\nflexible:%d\n"
         "accepted:%s\nvalid_until:%s\nfirst_draw:%s\ncooldown_days:%d\n"
         % (t, person, ph, pr, flex, acc, valid, first, cool)).encode())
leaves = [h(b"\x00" + s) for s in statements]
root = mth(leaves)
head = ("maskdraw-receipt-batch-v1\nsize:%d\nroot:%s\n" % (len(leaves), root.hex())).encode()
key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(SECRET))
sig = key.sign(head).hex()
with open("batch-head.txt", "wb") as f:
    f.write(head)
for i, s in enumerate(statements):
    out = s + ("batch:%d/%d\n" % (i, len(leaves))).encode()
    for p in path(i, leaves):
        out += ("path:%s\n" % p.hex()).encode()
    out += ("signature:%s\n" % sig).encode()
    with open("receipt-%d.txt" % i, "wb") as f:
        f.write(out)
