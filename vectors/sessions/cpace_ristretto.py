"""CPACE-RISTR255-SHA512 (draft-irtf-cfrg-cpace) in plain Python, for the independent transcript
verifier: ristretto255 from RFC 9496 (decode, encode, the one-way map), Edwards25519 arithmetic
in extended coordinates, and the draft's generator, shares, K and ISK (initiator-responder).

Only the standard library. Slow (pure-integer field arithmetic) and not constant-time: a checker,
never for secrets. `python3 cpace_ristretto.py` checks it against vectors/cpace/.
"""

import hashlib

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493


def inv(x):
    return pow(x, P - 2, P)


D = (-121665 * inv(121666)) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def is_negative(x):
    return (x % P) & 1


def ct_abs(x):
    x %= P
    return (-x) % P if is_negative(x) else x


def sqrt_ratio_m1(u, v):
    """RFC 9496 section 4.2: (was_square, the non-negative root of u/v or of SQRT_M1*u/v)."""
    u %= P
    v %= P
    v3 = v * v % P * v % P
    v7 = v3 * v3 % P * v % P
    r = u * v3 % P * pow(u * v7 % P, (P - 5) // 8, P) % P
    check = v * r % P * r % P
    correct_sign = check == u
    flipped_sign = check == (-u) % P
    flipped_sign_i = check == (-u) * SQRT_M1 % P
    if flipped_sign or flipped_sign_i:
        r = r * SQRT_M1 % P
    return correct_sign or flipped_sign, ct_abs(r)


# RFC 9496 section 4.1's constants. SQRT_AD_MINUS_ONE is the root the RFC lists (the odd one,
# so not what `sqrt_ratio_m1` returns); INVSQRT_A_MINUS_D is the non-negative root.
SQRT_AD_MINUS_ONE = 25063068953384623474111414158702152701244531502492656460079210482610430750235
assert SQRT_AD_MINUS_ONE * SQRT_AD_MINUS_ONE % P == (-D - 1) % P
INVSQRT_A_MINUS_D = sqrt_ratio_m1(1, (-1 - D) % P)[1]
assert INVSQRT_A_MINUS_D == 54469307008909316920995813868745141605393597292927456921205312896311721017578
ONE_MINUS_D_SQ = (1 - D * D) % P
D_MINUS_ONE_SQ = (D - 1) * (D - 1) % P

IDENTITY = (0, 1, 1, 0)


def add(p1, p2):
    """Edwards25519 (a = -1) addition in extended coordinates (HWCD08, add-2008-hwcd-3)."""
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % P
    b = (y1 + x1) * (y2 + x2) % P
    c = t1 * 2 * D % P * t2 % P
    d = z1 * 2 * z2 % P
    e, f, g, h = b - a, d - c, d + c, b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def scalar_mult(k, point):
    result = IDENTITY
    while k:
        if k & 1:
            result = add(result, point)
        point = add(point, point)
        k >>= 1
    return result


def decode(s_bytes):
    """RFC 9496 section 4.3.1: the element, or None for a non-canonical encoding."""
    if len(s_bytes) != 32:
        return None
    s = int.from_bytes(s_bytes, "little")
    if s >= P or is_negative(s):
        return None
    ss = s * s % P
    u1 = (1 - ss) % P
    u2 = (1 + ss) % P
    u2_sqr = u2 * u2 % P
    v = (-(D * u1 % P * u1) - u2_sqr) % P
    was_square, invsqrt = sqrt_ratio_m1(1, v * u2_sqr % P)
    den_x = invsqrt * u2 % P
    den_y = invsqrt * den_x % P * v % P
    x = ct_abs(2 * s * den_x)
    y = u1 * den_y % P
    t = x * y % P
    if not was_square or is_negative(t) or y == 0:
        return None
    return (x, y, 1, t)


def encode(point):
    """RFC 9496 section 4.3.2."""
    x0, y0, z0, t0 = point
    u1 = (z0 + y0) * (z0 - y0) % P
    u2 = x0 * y0 % P
    _, invsqrt = sqrt_ratio_m1(1, u1 * u2 % P * u2 % P)
    den1 = invsqrt * u1 % P
    den2 = invsqrt * u2 % P
    z_inv = den1 * den2 % P * t0 % P
    ix0 = x0 * SQRT_M1 % P
    iy0 = y0 * SQRT_M1 % P
    enchanted_denominator = den1 * INVSQRT_A_MINUS_D % P
    rotate = is_negative(t0 * z_inv)
    x, y = (iy0, ix0) if rotate else (x0, y0)
    den_inv = enchanted_denominator if rotate else den2
    if is_negative(x * z_inv):
        y = (-y) % P
    s = ct_abs(den_inv * (z0 - y))
    return s.to_bytes(32, "little")


def _map(t):
    """RFC 9496 section 4.3.4, MAP."""
    r = SQRT_M1 * t % P * t % P
    u = (r + 1) * ONE_MINUS_D_SQ % P
    v = (-1 - r * D) * (r + D) % P
    was_square, s = sqrt_ratio_m1(u, v)
    s_prime = (-ct_abs(s * t)) % P
    if not was_square:
        s = s_prime
    c = -1 if was_square else r
    n = (c * (r - 1) % P * D_MINUS_ONE_SQ - v) % P
    w0 = 2 * s * v % P
    w1 = n * SQRT_AD_MINUS_ONE % P
    w2 = (1 - s * s) % P
    w3 = (1 + s * s) % P
    return (w0 * w3 % P, w2 * w1 % P, w1 * w3 % P, w0 * w2 % P)


def from_uniform_bytes(b):
    """RFC 9496 section 4.3.4: 64 uniform bytes to an element."""
    t1 = int.from_bytes(b[:32], "little") & (2**255 - 1)
    t2 = int.from_bytes(b[32:64], "little") & (2**255 - 1)
    return add(_map(t1 % P), _map(t2 % P))


def leb128(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def prepend_len(data):
    return leb128(len(data)) + data


def lv_cat(*parts):
    return b"".join(prepend_len(p) for p in parts)


DSI = b"CPaceRistretto255"
HASH_BLOCK_LEN = 128


def generator_string(prs, ci, sid):
    len_zpad = max(0, HASH_BLOCK_LEN - 1 - len(prepend_len(prs)) - len(prepend_len(DSI)))
    return lv_cat(DSI, prs, b"\x00" * len_zpad, ci, sid)


def generator(prs, ci, sid):
    return from_uniform_bytes(hashlib.sha512(generator_string(prs, ci, sid)).digest())


def sample_scalar(seed):
    """The draft's sample_scalar from 32 drawn bytes: the top four bits cleared, little-endian."""
    b = bytearray(seed)
    b[31] &= 0x0F
    return int.from_bytes(bytes(b), "little")


def share(prs, ci, sid, scalar):
    return encode(scalar_mult(scalar, generator(prs, ci, sid)))


def scalar_mult_vfy(scalar, peer_share):
    """K, or None for an invalid encoding or an identity result."""
    point = decode(peer_share)
    if point is None:
        return None
    k = encode(scalar_mult(scalar, point))
    return None if k == bytes(32) else k


def transcript_ir(ya, ada, yb, adb):
    return lv_cat(ya, ada) + lv_cat(yb, adb)


def isk(sid, k, ya, ada, yb, adb):
    return hashlib.sha512(lv_cat(DSI + b"_ISK", sid, k) + transcript_ir(ya, ada, yb, adb)).digest()


def _self_test():
    import json
    import os

    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.join(here, "..", "cpace", "ristretto255_sha512.json")
    with open(path) as f:
        v = json.load(f)
    h = bytes.fromhex
    prs, ci, sid = h(v["prs"]), h(v["ci"]), h(v["sid"])
    assert generator_string(prs, ci, sid).hex() == v["generator_string"], "generator string"
    g = encode(generator(prs, ci, sid))
    assert g.hex() == v["g"], ("generator", g.hex(), v["g"])
    ya = int.from_bytes(h(v["ya"]), "little")
    yb = int.from_bytes(h(v["yb"]), "little")
    assert share(prs, ci, sid, ya).hex() == v["Ya"], "Ya"
    assert share(prs, ci, sid, yb).hex() == v["Yb"], "Yb"
    k = scalar_mult_vfy(ya, h(v["Yb"]))
    assert k.hex() == v["K"], "K"
    assert scalar_mult_vfy(yb, h(v["Ya"])) == k
    got = isk(sid, k, h(v["Ya"]), h(v["ada"]), h(v["Yb"]), h(v["adb"]))
    assert got.hex() == v["isk_ir"], "ISK"
    for case in v.get("invalid_shares", []):
        share_hex = case.get("share") or case.get("Y") or case.get("X")
        if share_hex:
            assert scalar_mult_vfy(ya, h(share_hex)) is None, case.get("desc")
    print("cpace_ristretto: the draft's ristretto255/SHA-512 vectors pass")


if __name__ == "__main__":
    _self_test()
