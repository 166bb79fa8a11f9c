"""Extracts the CPACE-RISTR255-SHA512 test vectors from the CFRG CPace draft into JSON data files.

Reads the draft's markdown source and the test-vector file published beside it (the folder given
as the first argument, default ../shared/cpace-spec from the repository root) and writes, next
to this script:

- string_utilities.json: prepend_len, lv_cat, transcript_ir and transcript_oc cases, from the
  draft's base64 JSON blocks for those functions. Inputs are given explicitly as hex.
- ristretto255_sha512.json: the ristretto255/SHA-512 run (generator string, hash, generator,
  scalars, shares, K, ISK in both settings, the optional sid output), the valid scalar_mult case
  and the invalid shares, from that section's base64 JSON blocks, plus the intermediate strings
  (transcripts, the ISK hash input) that only the section's hex dumps give.

Only data is taken: no prose, no code. Every value found in two places (a JSON block and
testvectors.json, or a JSON block and a hex dump) must agree, or the script stops. Byte strings
are lowercase hex. A rerun reproduces the files byte for byte:

    python3 vectors/cpace/extract.py && git diff --exit-code vectors/cpace
"""
import ast
import base64
import json
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
SPEC = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE.parent.parent.parent / "shared" / "cpace-spec"
DRAFT = SPEC / "draft-irtf-cfrg-cpace.md"
PUBLISHED = SPEC / "testvectors.json"
RISTRETTO_HEADING = "##  Test vector for CPace using group ristretto255 and hash SHA-512"


def fail(message):
    sys.exit(f"extract.py: {message}")


def json_blocks(text):
    """The draft's '~~~ test-vectors' blocks: base64 of JSON, each line starting with '#'."""
    out = []
    for block in re.findall(r"~~~ test-vectors\n(.*?)~~~", text, re.S):
        b64 = "".join(line.strip().lstrip("#") for line in block.splitlines())
        out.append(json.loads(base64.b64decode(b64)))
    return out


def block_with(blocks, key):
    found = [b for b in blocks if key in b]
    if len(found) != 1:
        fail(f"expected one JSON block with {key!r}, found {len(found)}")
    return found[0]


def argument_bytes(expression):
    """One argument of a vector's name: a bytes literal, or bytes(range(n))."""
    expression = expression.strip()
    match = re.fullmatch(r"bytes\(range\((\d+)\)\)", expression)
    if match:
        return bytes(range(int(match.group(1))))
    value = ast.literal_eval(expression)
    if not isinstance(value, bytes):
        fail(f"not a bytes literal: {expression}")
    return value


def calls(block, function):
    """The entries of a JSON block named function(arg, ...), as (argument bytes, output bytes)."""
    out = []
    for key, value in block.items():
        match = re.fullmatch(re.escape(function) + r"\((.*)\)", key)
        if match:
            # Arguments are b'...' literals without commas inside, or bytes(range(n)).
            args = [argument_bytes(a) for a in re.findall(r"b'[^']*'|bytes\(range\(\d+\)\)", match.group(1))]
            out.append((args, bytes.fromhex(value)))
    if not out:
        fail(f"no {function} vectors found")
    return out


def hex_dumps(section):
    """The section's hex dumps: 'label: (length: N bytes)' (the length on the label's line or the
    next), then N bytes of hex over the following lines. Returns (subsection, label, bytes)."""
    lines = section.splitlines()
    subsection, out, i = "", [], 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("###"):
            subsection = line.lstrip("#").strip()
        match = re.search(r"\(length: (\d+) bytes\)", line)
        if match:
            label = line[: match.start()].strip() or lines[i - 1].strip()
            label = label.rstrip(":").strip()
            want, digits = 2 * int(match.group(1)), ""
            while len(digits) < want:
                i += 1
                chunk = lines[i].strip()
                if not re.fullmatch(r"[0-9a-f]+", chunk):
                    fail(f"hex dump {label!r} ends early at: {chunk!r}")
                digits += chunk
            if len(digits) != want:
                fail(f"hex dump {label!r} has {len(digits)} digits, expected {want}")
            out.append((subsection, label, bytes.fromhex(digits)))
        i += 1
    return out


def dump(dumps, subsection_part, label):
    found = [v for s, l, v in dumps if subsection_part in s and l == label]
    if len(found) != 1:
        fail(f"expected one hex dump {label!r} in a subsection with {subsection_part!r}, found {len(found)}")
    return found[0]


def same(name, *values):
    if any(v != values[0] for v in values):
        fail(f"{name} differs between the draft's sources: {values}")
    return values[0]


def write(name, data):
    path = HERE / name
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {path.relative_to(HERE.parent.parent)}")


def main():
    text = DRAFT.read_text()
    published = json.loads(PUBLISHED.read_text())
    blocks = json_blocks(text)

    # --- String utilities.
    prepend = calls(block_with(blocks, "prepend_len(b'')"), "prepend_len")
    lv = calls(block_with(blocks, "lv_cat(b'1234',b'5',b'',b'678')"), "lv_cat")
    ir = calls(block_with(blocks, "transcript_ir(b'123',b'PartyA',b'234',b'PartyB')"), "transcript_ir")
    oc = calls(block_with(blocks, "transcript_oc(b'123',b'PartyA',b'234',b'PartyB')"), "transcript_oc")
    four = lambda cases: [
        {"ya": a[0].hex(), "ada": a[1].hex(), "yb": a[2].hex(), "adb": a[3].hex(), "output": o.hex()}
        for a, o in cases
    ]
    write(
        "string_utilities.json",
        {
            "source": f"{DRAFT.name}, appendix 'CPace function definitions' (JSON test-vector blocks)",
            "prepend_len": [{"input": a[0].hex(), "output": o.hex()} for a, o in prepend],
            "lv_cat": [{"inputs": [x.hex() for x in a], "output": o.hex()} for a, o in lv],
            "transcript_ir": four(ir),
            "transcript_oc": four(oc),
        },
    )

    # --- ristretto255 / SHA-512.
    start = text.index(RISTRETTO_HEADING)
    end = text.index("\n##  ", start + len(RISTRETTO_HEADING))
    section = text[start:end]
    section_blocks = json_blocks(section)
    gen = block_with(section_blocks, "encoded generator g")
    run = block_with(section_blocks, "ISK_IR")
    points = block_with(section_blocks, "Invalid Y1")
    dumps = hex_dumps(section)
    pub_run, pub_points = published["G_Coffee25519"], published["G_Coffee25519_points"]

    h = lambda s: bytes.fromhex(s)
    for key in pub_run:
        same(key, h(run[key]), h(pub_run[key]))
    same("points", points, pub_points)
    for key in ["PRS", "CI", "sid"]:
        same(key, h(gen[key]), h(run[key]))
    same("encoded generator", h(gen["encoded generator g"]), h(run["g"]))
    if gen["H"] != "SHA-512" or gen["H.s_in_bytes"] != 128:
        fail("the generator block is not for SHA-512")
    same("DSI", h(gen["DSI"]), b"CPaceRistretto255")

    transcript_ir = dump(dumps, "initiator/responder", "transcript_ir(Ya,ADa,Yb,ADb)")
    transcript_oc = dump(dumps, "parallel", "transcript_oc(Ya,ADa,Yb,ADb)")
    dsi_isk = same(
        "DSI_ISK",
        dump(dumps, "initiator/responder", "DSI = G.DSI_ISK, b'CPaceRistretto255_ISK'"),
        dump(dumps, "parallel", "DSI = G.DSI_ISK, b'CPaceRistretto255_ISK'"),
    )
    same("K", dump(dumps, "secret points K", "scalar_mult_vfy(ya,Yb)"), dump(dumps, "secret points K", "scalar_mult_vfy(yb,Ya)"), h(run["K"]))
    same("Ya", dump(dumps, "message from A", "Ya"), h(run["Ya"]))
    same("Yb", dump(dumps, "message from B", "Yb"), h(run["Yb"]))
    same("generator string", dump(dumps, "calculate", "generator_string(G.DSI,PRS,CI,sid,H.s_in_bytes)"), h(gen["generator_string(G.DSI,PRS,CI,sid,H.s_in_bytes)"]))
    same("ISK_IR", dump(dumps, "initiator/responder", "ISK result"), h(run["ISK_IR"]))
    same("ISK_SY", dump(dumps, "parallel", "ISK result"), h(run["ISK_SY"]))

    valid = points["Valid"]
    same("scalar_mult", h(valid["G.scalar_mult(s,decode(X))"]), h(valid["G.scalar_mult_vfy(s,X)"]))
    lower = lambda s: h(s).hex()
    write(
        "ristretto255_sha512.json",
        {
            "source": f"{DRAFT.name}, section 'Test vector for CPace using group ristretto255 and hash SHA-512' (JSON blocks and hex dumps), checked against {PUBLISHED.name}",
            "dsi": gen["DSI"].lower(),
            "hash_block_len": gen["H.s_in_bytes"],
            "prs": lower(run["PRS"]),
            "ci": lower(run["CI"]),
            "sid": lower(run["sid"]),
            "zpad_len": gen["ZPAD length"],
            "generator_string": lower(gen["generator_string(G.DSI,PRS,CI,sid,H.s_in_bytes)"]),
            "generator_hash": lower(gen["hash result"]),
            "g": lower(run["g"]),
            "ya": lower(run["ya"]),
            "ada": lower(run["ADa"]),
            "Ya": lower(run["Ya"]),
            "yb": lower(run["yb"]),
            "adb": lower(run["ADb"]),
            "Yb": lower(run["Yb"]),
            "K": lower(run["K"]),
            "dsi_isk": dsi_isk.hex(),
            "transcript_ir": transcript_ir.hex(),
            "isk_input_ir": dump(dumps, "initiator/responder", "lv_cat(DSI,sid,K)||transcript_ir(Ya,ADa,Yb,ADb)").hex(),
            "isk_ir": lower(run["ISK_IR"]),
            "transcript_oc": transcript_oc.hex(),
            "isk_input_oc": dump(dumps, "parallel", "lv_cat(DSI,sid,K)||transcript_oc(Ya,ADa,Yb,ADb)").hex(),
            "isk_sy": lower(run["ISK_SY"]),
            "sid_output_ir": lower(run["sid_output_ir"]),
            "sid_output_oc": lower(run["sid_output_oc"]),
            "scalar_mult_valid": {
                "s": lower(valid["s"]),
                "X": lower(valid["X"]),
                "sX": lower(valid["G.scalar_mult_vfy(s,X)"]),
            },
            "invalid_shares": [
                {"desc": "not a valid encoding (Y_i1)", "share": lower(points["Invalid Y1"])},
                {"desc": "the identity element (Y_i2 == G.I)", "share": lower(points["Invalid Y2"])},
            ],
        },
    )


if __name__ == "__main__":
    main()
