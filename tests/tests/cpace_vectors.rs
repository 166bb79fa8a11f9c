//! Every CPACE-RISTR255-SHA512 vector of the CFRG draft, run through the core's public `cpace`
//! API (`vectors/cpace/`, extracted by `vectors/cpace/extract.py`): the string utilities, the
//! generator string, its hash and the generator, both shares, the ISK of the initiator–responder
//! setting from both sides, `K` and the symmetric setting's ISK through the utilities, the valid
//! scalar multiplication, and the invalid shares, which both roles must refuse. The draft's
//! secret scalars reach the API the way any scalar does: through the random generator.
//! A missing or empty vector file fails the tests.

use std::convert::Infallible;
use std::path::PathBuf;

use aeschat_core::cpace::{
    generator, generator_string, lv_cat, prepend_len, transcript_ir, transcript_oc, Cpace, Error,
    Role, DSI, HASH_BLOCK_LEN, ISK_LABEL, SHARE_LEN,
};
use rand_core::{TryCryptoRng, TryRng};
use serde::Deserialize;
use sha2::{Digest, Sha512};

fn vector_file(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors/cpace")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert!(!text.trim().is_empty(), "{} is empty", path.display());
    text
}

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex length: {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hex32(text: &str) -> [u8; 32] {
    hex(text).try_into().expect("32 bytes")
}

/// A "generator" that hands out one fixed 32-byte scalar, and checks it is asked exactly once
/// for exactly 32 bytes (the sampling `Cpace::new` documents).
struct FixedScalar(Option<[u8; 32]>);

impl TryRng for FixedScalar {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        panic!("CPace must draw its scalar with try_fill_bytes")
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        panic!("CPace must draw its scalar with try_fill_bytes")
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        let scalar = self.0.take().expect("the scalar is drawn once");
        dst.copy_from_slice(&scalar);
        Ok(())
    }
}

impl TryCryptoRng for FixedScalar {}

fn start(role: Role, v: &Run, scalar: &str) -> Cpace {
    let mut rng = FixedScalar(Some(hex32(scalar)));
    let cpace = Cpace::new(role, &hex(&v.prs), &hex(&v.ci), &hex(&v.sid), &mut rng).unwrap();
    assert!(rng.0.is_none(), "the scalar was not drawn");
    cpace
}

/// A buffer of exactly `len` bytes gives the expected output; one byte less is refused with the
/// size needed and left untouched.
fn check_buffered(
    expected: &[u8],
    write: impl for<'o> Fn(&'o mut [u8]) -> Result<&'o [u8], Error>,
) {
    let mut out = vec![0u8; expected.len()];
    assert_eq!(write(&mut out).unwrap(), expected);
    let mut short = vec![0x5a; expected.len() - 1];
    assert_eq!(
        write(&mut short).unwrap_err(),
        Error::BufferTooSmall {
            required: expected.len()
        }
    );
    assert!(
        short.iter().all(|&b| b == 0x5a),
        "a refused write changed the buffer"
    );
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Utilities {
    #[allow(dead_code)]
    source: String,
    prepend_len: Vec<PrependLen>,
    lv_cat: Vec<LvCat>,
    transcript_ir: Vec<Transcript>,
    transcript_oc: Vec<Transcript>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrependLen {
    input: String,
    output: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LvCat {
    inputs: Vec<String>,
    output: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Transcript {
    ya: String,
    ada: String,
    yb: String,
    adb: String,
    output: String,
}

#[allow(non_snake_case)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Run {
    #[allow(dead_code)]
    source: String,
    dsi: String,
    hash_block_len: usize,
    prs: String,
    ci: String,
    sid: String,
    zpad_len: usize,
    generator_string: String,
    generator_hash: String,
    g: String,
    ya: String,
    ada: String,
    Ya: String,
    yb: String,
    adb: String,
    Yb: String,
    K: String,
    dsi_isk: String,
    transcript_ir: String,
    isk_input_ir: String,
    isk_ir: String,
    transcript_oc: String,
    isk_input_oc: String,
    isk_sy: String,
    sid_output_ir: String,
    sid_output_oc: String,
    scalar_mult_valid: ScalarMult,
    invalid_shares: Vec<InvalidShare>,
}

#[allow(non_snake_case)]
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScalarMult {
    s: String,
    X: String,
    sX: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidShare {
    desc: String,
    share: String,
}

fn utilities() -> Utilities {
    serde_json::from_str(&vector_file("string_utilities.json")).unwrap()
}

fn run() -> Run {
    serde_json::from_str(&vector_file("ristretto255_sha512.json")).unwrap()
}

/// `SHA-512(lv_cat(DSI ‖ "_ISK", sid, K) ‖ transcript)`, assembled from the public utilities.
fn isk_from_parts(sid: &[u8], k: &[u8], transcript: &[u8]) -> (Vec<u8>, [u8; 64]) {
    let dsi_isk = [DSI, ISK_LABEL].concat();
    let mut input = vec![0u8; 512];
    let prefix_len = lv_cat(&[&dsi_isk, sid, k], &mut input).unwrap().len();
    input.truncate(prefix_len);
    input.extend_from_slice(transcript);
    let isk = Sha512::digest(&input).into();
    (input, isk)
}

#[test]
fn prepend_len_vectors() {
    let cases = utilities().prepend_len;
    assert_eq!(cases.len(), 4);
    for case in cases {
        let input = hex(&case.input);
        check_buffered(&hex(&case.output), |out| prepend_len(&input, out));
    }
}

#[test]
fn lv_cat_vectors() {
    let cases = utilities().lv_cat;
    assert!(!cases.is_empty());
    for case in cases {
        let inputs: Vec<Vec<u8>> = case.inputs.iter().map(|s| hex(s)).collect();
        let parts: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
        check_buffered(&hex(&case.output), |out| lv_cat(&parts, out));
    }
}

#[test]
fn transcript_vectors_in_both_settings() {
    let utilities = utilities();
    assert_eq!(utilities.transcript_ir.len(), 2);
    assert_eq!(utilities.transcript_oc.len(), 2);
    for (cases, ordered) in [
        (&utilities.transcript_ir, false),
        (&utilities.transcript_oc, true),
    ] {
        for case in cases {
            let [ya, ada, yb, adb] = [&case.ya, &case.ada, &case.yb, &case.adb].map(|s| hex(s));
            check_buffered(&hex(&case.output), |out| {
                if ordered {
                    transcript_oc(&ya, &ada, &yb, &adb, out)
                } else {
                    transcript_ir(&ya, &ada, &yb, &adb, out)
                }
            });
        }
    }
}

#[test]
fn generator_string_hash_and_generator() {
    let v = run();
    assert_eq!(hex(&v.dsi), DSI);
    assert_eq!(v.hash_block_len, HASH_BLOCK_LEN);
    let (prs, ci, sid) = (hex(&v.prs), hex(&v.ci), hex(&v.sid));
    let expected = hex(&v.generator_string);
    check_buffered(&expected, |out| {
        generator_string(DSI, &prs, &ci, &sid, HASH_BLOCK_LEN, out)
    });
    // The padding: lv(DSI) ‖ lv(PRS), then a one-byte length and zpad_len zeros.
    let pad_at = 1 + DSI.len() + 1 + prs.len();
    assert_eq!(usize::from(expected[pad_at]), v.zpad_len);
    assert!(expected[pad_at + 1..][..v.zpad_len].iter().all(|&b| b == 0));
    assert_eq!(pad_at + 1 + v.zpad_len, HASH_BLOCK_LEN);

    assert_eq!(Sha512::digest(&expected)[..], hex(&v.generator_hash)[..]);
    assert_eq!(generator(&prs, &ci, &sid), hex32(&v.g));
}

#[test]
fn shares_of_both_parties() {
    let v = run();
    assert_eq!(start(Role::Initiator, &v, &v.ya).share(), &hex32(&v.Ya));
    assert_eq!(start(Role::Responder, &v, &v.yb).share(), &hex32(&v.Yb));
    // The share does not depend on the role: only on the scalar and the generator.
    assert_eq!(start(Role::Responder, &v, &v.ya).share(), &hex32(&v.Ya));
}

#[test]
fn isk_initiator_responder_from_both_sides() {
    let v = run();
    let (ada, adb) = (hex(&v.ada), hex(&v.adb));
    let (ya_share, yb_share) = (hex32(&v.Ya), hex32(&v.Yb));
    let a = start(Role::Initiator, &v, &v.ya);
    let b = start(Role::Responder, &v, &v.yb);
    let isk_a = a.finish(&ada, &yb_share, &adb).unwrap();
    let isk_b = b.finish(&adb, &ya_share, &ada).unwrap();
    assert_eq!(isk_a.as_bytes()[..], hex(&v.isk_ir)[..]);
    assert_eq!(isk_b.as_bytes()[..], hex(&v.isk_ir)[..]);
}

#[test]
fn k_and_the_isk_inputs_through_the_utilities() {
    // K never leaves the API; the draft's K, hashed with the published transcript, must give the
    // published ISK that the API computed above, so the API's K is the draft's.
    let v = run();
    let (sid, k) = (hex(&v.sid), hex(&v.K));
    assert_eq!(hex(&v.dsi_isk), [DSI, ISK_LABEL].concat());
    let (ya, ada, yb, adb) = (hex(&v.Ya), hex(&v.ada), hex(&v.Yb), hex(&v.adb));
    let mut buf = [0u8; 256];
    let ir = transcript_ir(&ya, &ada, &yb, &adb, &mut buf)
        .unwrap()
        .to_vec();
    assert_eq!(ir, hex(&v.transcript_ir));
    let oc = transcript_oc(&ya, &ada, &yb, &adb, &mut buf)
        .unwrap()
        .to_vec();
    assert_eq!(oc, hex(&v.transcript_oc));

    let (input, isk) = isk_from_parts(&sid, &k, &ir);
    assert_eq!(input, hex(&v.isk_input_ir));
    assert_eq!(isk[..], hex(&v.isk_ir)[..]);
    let (input, isk) = isk_from_parts(&sid, &k, &oc);
    assert_eq!(input, hex(&v.isk_input_oc));
    assert_eq!(isk[..], hex(&v.isk_sy)[..]);

    // The optional session-id output: SHA-512("CPaceSidOutput" ‖ transcript).
    for (transcript, expected) in [(&ir, &v.sid_output_ir), (&oc, &v.sid_output_oc)] {
        let sid_output = Sha512::new()
            .chain_update(b"CPaceSidOutput")
            .chain_update(transcript)
            .finalize();
        assert_eq!(sid_output[..], hex(expected)[..]);
    }
}

#[test]
fn valid_scalar_multiplication() {
    // s · X = sX, seen through the ISK: with scalar s and peer share X, the API's ISK must be
    // the one built from K = sX.
    let v = run();
    let case = &v.scalar_mult_valid;
    let sid = hex(&v.sid);
    for role in [Role::Initiator, Role::Responder] {
        let cpace = start(role, &v, &case.s);
        let own = *cpace.share();
        let isk = cpace.finish(b"", &hex32(&case.X), b"").unwrap();
        let mut buf = [0u8; 128];
        let x = hex(&case.X);
        let transcript = match role {
            Role::Initiator => transcript_ir(&own, b"", &x, b"", &mut buf),
            Role::Responder => transcript_ir(&x, b"", &own, b"", &mut buf),
        }
        .unwrap();
        let (_, expected) = isk_from_parts(&sid, &hex(&case.sX), transcript);
        assert_eq!(isk.as_bytes(), &expected, "{role:?}");
    }
}

#[test]
fn invalid_shares_are_refused_by_both_roles() {
    let v = run();
    assert_eq!(v.invalid_shares.len(), 2);
    for case in &v.invalid_shares {
        let share: [u8; SHARE_LEN] = hex32(&case.share);
        // The identity's encoding is all zeros; anything else here is not an encoding at all.
        let expected = if share == [0; SHARE_LEN] {
            Error::IdentityShare
        } else {
            Error::InvalidShare
        };
        for (role, scalar) in [(Role::Initiator, &v.ya), (Role::Responder, &v.yb)] {
            let err = start(role, &v, scalar)
                .finish(b"", &share, b"")
                .expect_err(&case.desc);
            assert_eq!(err, expected, "{}, {role:?}", case.desc);
            // Into the core's error for the handshake: a malformed message.
            assert_eq!(
                aeschat_core::session::Error::from(err),
                aeschat_core::session::Error::UnexpectedMessage
            );
        }
    }
}
