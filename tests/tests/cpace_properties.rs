//! Property tests of the core's CPace (`aeschat_core::cpace`), over random passwords, channel
//! identifiers, session ids, associated data and scalars: the same inputs agree, any difference
//! in what the two sides saw disagrees, swapped roles disagree, a reflected share is refused, and
//! no 32 bytes from a peer make `finish` panic or accept a non-element.

use std::convert::Infallible;

use aeschat_core::cpace::{generator, Cpace, Error, Isk, Role, SHARE_LEN};
use proptest::prelude::*;
use rand_core::{TryCryptoRng, TryRng};
use sha2::{Digest, Sha512};

/// A deterministic generator for reproducible cases: SHA-512 of a seed and a counter. (Not a
/// secure generator for real use: the seed comes from proptest.)
struct SeededRng {
    seed: [u8; 32],
    counter: u64,
}

impl SeededRng {
    fn new(seed: [u8; 32]) -> SeededRng {
        SeededRng { seed, counter: 0 }
    }
}

impl TryRng for SeededRng {
    type Error = Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        rand_core::utils::next_word_via_fill(self)
    }
    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        rand_core::utils::next_word_via_fill(self)
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(64) {
            let block = Sha512::new()
                .chain_update(self.seed)
                .chain_update(self.counter.to_le_bytes())
                .finalize();
            self.counter += 1;
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
        Ok(())
    }
}

impl TryCryptoRng for SeededRng {}

/// One side's view of a run.
#[derive(Clone, Debug)]
struct View {
    prs: Vec<u8>,
    ci: Vec<u8>,
    sid: Vec<u8>,
    ad_a: Vec<u8>,
    ad_b: Vec<u8>,
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..max)
}

fn view() -> impl Strategy<Value = View> {
    // Lengths past 127 and 128 cross LEB128's one-byte limit and the first hash block.
    (bytes(200), bytes(40), bytes(140), bytes(20), bytes(20)).prop_map(
        |(prs, ci, sid, ad_a, ad_b)| View {
            prs,
            ci,
            sid,
            ad_a,
            ad_b,
        },
    )
}

fn start(role: Role, v: &View, seed: [u8; 32]) -> Cpace {
    Cpace::new(role, &v.prs, &v.ci, &v.sid, &mut SeededRng::new(seed)).unwrap()
}

/// A whole run: A (initiator) with view `a`, B (responder) with view `b`; each side uses its own
/// view's ADs, so a difference in AD is a difference in what they saw on the wire.
fn run(a: &View, b: &View, seeds: ([u8; 32], [u8; 32])) -> (Isk, Isk) {
    let side_a = start(Role::Initiator, a, seeds.0);
    let side_b = start(Role::Responder, b, seeds.1);
    let (ya, yb) = (*side_a.share(), *side_b.share());
    let isk_a = side_a.finish(&a.ad_a, &yb, &a.ad_b).unwrap();
    let isk_b = side_b.finish(&b.ad_b, &ya, &b.ad_a).unwrap();
    (isk_a, isk_b)
}

/// Changes one byte of a string, or adds one if it is empty.
fn altered(mut s: Vec<u8>, at: prop::sample::Index) -> Vec<u8> {
    if s.is_empty() {
        s.push(0);
    } else {
        let i = at.index(s.len());
        s[i] ^= 1;
    }
    s
}

proptest! {
    #[test]
    fn the_same_inputs_give_the_same_isk(v in view(), seeds in any::<([u8; 32], [u8; 32])>()) {
        let (isk_a, isk_b) = run(&v, &v, seeds);
        prop_assert_eq!(isk_a.as_bytes(), isk_b.as_bytes());
    }

    #[test]
    fn a_different_password_gives_a_different_isk(
        v in view(),
        other in bytes(200),
        seeds in any::<([u8; 32], [u8; 32])>(),
    ) {
        prop_assume!(other != v.prs);
        let b = View { prs: other, ..v.clone() };
        let (isk_a, isk_b) = run(&v, &b, seeds);
        prop_assert_ne!(isk_a.as_bytes(), isk_b.as_bytes());
    }

    #[test]
    fn any_difference_in_ci_sid_or_ad_gives_a_different_isk(
        v in view(),
        which in 0..4usize,
        at in any::<prop::sample::Index>(),
        seeds in any::<([u8; 32], [u8; 32])>(),
    ) {
        let mut b = v.clone();
        match which {
            0 => b.ci = altered(b.ci, at),
            1 => b.sid = altered(b.sid, at),
            2 => b.ad_a = altered(b.ad_a, at),
            _ => b.ad_b = altered(b.ad_b, at),
        }
        let (isk_a, isk_b) = run(&v, &b, seeds);
        prop_assert_ne!(isk_a.as_bytes(), isk_b.as_bytes());
    }

    #[test]
    fn swapped_roles_give_a_different_isk(
        v in view(),
        seeds in any::<([u8; 32], [u8; 32])>(),
        both_initiators in any::<bool>(),
    ) {
        // Both sides claim the same role: the transcripts are ordered differently.
        let role = if both_initiators { Role::Initiator } else { Role::Responder };
        let (a, b) = (start(role, &v, seeds.0), start(role, &v, seeds.1));
        let (ya, yb) = (*a.share(), *b.share());
        let isk_a = a.finish(&v.ad_a, &yb, &v.ad_b).unwrap();
        let isk_b = b.finish(&v.ad_b, &ya, &v.ad_a).unwrap();
        prop_assert_ne!(isk_a.as_bytes(), isk_b.as_bytes());
    }

    #[test]
    fn a_reflected_share_is_refused(
        v in view(),
        seed in any::<[u8; 32]>(),
        initiator in any::<bool>(),
    ) {
        let role = if initiator { Role::Initiator } else { Role::Responder };
        let side = start(role, &v, seed);
        let own = *side.share();
        prop_assert_eq!(side.finish(&v.ad_a, &own, &v.ad_a).unwrap_err(), Error::ReflectedShare);
    }

    #[test]
    fn every_run_has_a_fresh_key(
        v in view(),
        seeds in any::<([u8; 32], [u8; 32], [u8; 32], [u8; 32])>(),
    ) {
        // Same password, CI, sid and AD, new scalars: a key from one run says nothing about the
        // next (the scalars, wiped after each run, are what the key rests on).
        prop_assume!((seeds.0, seeds.1) != (seeds.2, seeds.3));
        let (first, _) = run(&v, &v, (seeds.0, seeds.1));
        let (second, _) = run(&v, &v, (seeds.2, seeds.3));
        prop_assert_ne!(first.as_bytes(), second.as_bytes());
    }

    #[test]
    fn any_peer_bytes_are_either_an_element_or_refused(
        v in view(),
        seed in any::<[u8; 32]>(),
        peer in any::<[u8; SHARE_LEN]>(),
    ) {
        let side = start(Role::Responder, &v, seed);
        match side.finish(&v.ad_b, &peer, &v.ad_a) {
            Ok(isk) => prop_assert_eq!(isk.as_bytes().len(), 64),
            // Random bytes are almost never a canonical encoding; the identity is all zeros.
            Err(e) => prop_assert!(matches!(e, Error::InvalidShare | Error::IdentityShare)),
        }
    }

    #[test]
    fn every_generated_share_is_accepted(v in view(), seeds in any::<([u8; 32], [u8; 32])>()) {
        // A share always decodes and is never the identity, so an honest peer is never refused;
        // and shares from two scalars differ.
        let a = start(Role::Initiator, &v, seeds.0);
        let b = start(Role::Responder, &v, seeds.1);
        prop_assume!(seeds.0 != seeds.1);
        prop_assert_ne!(a.share(), b.share());
        prop_assert_ne!(a.share(), &[0u8; SHARE_LEN]);
        let ya = *a.share();
        prop_assert!(b.finish(&v.ad_b, &ya, &v.ad_a).is_ok());
    }

    #[test]
    fn the_generator_depends_on_every_input(
        v in view(),
        which in 0..3usize,
        at in any::<prop::sample::Index>(),
    ) {
        let g = generator(&v.prs, &v.ci, &v.sid);
        let changed = match which {
            0 => generator(&altered(v.prs.clone(), at), &v.ci, &v.sid),
            1 => generator(&v.prs, &altered(v.ci.clone(), at), &v.sid),
            _ => generator(&v.prs, &v.ci, &altered(v.sid.clone(), at)),
        };
        prop_assert_ne!(g, changed);
    }
}

#[test]
fn moving_bytes_between_fields_changes_the_generator() {
    // The length prefixes keep the fields apart: the same bytes split differently never collide.
    assert_ne!(generator(b"ab", b"c", b""), generator(b"a", b"bc", b""));
    assert_ne!(generator(b"", b"ab", b"c"), generator(b"", b"a", b"bc"));
}

#[test]
fn known_bad_encodings_are_refused() {
    let v = View {
        prs: b"password".to_vec(),
        ci: Vec::new(),
        sid: Vec::new(),
        ad_a: Vec::new(),
        ad_b: Vec::new(),
    };
    let mut cases: Vec<[u8; 32]> = Vec::new();
    // A negative field element (odd), which ristretto255 never uses as an encoding.
    let mut one = [0u8; 32];
    one[0] = 1;
    cases.push(one);
    // The field prime p = 2^255 - 19 itself and all ones: not reduced, so not canonical.
    let mut p = [0xff; 32];
    p[0] = 0xed;
    p[31] = 0x7f;
    cases.push(p);
    cases.push([0xff; 32]);
    // The top bit set on an otherwise valid share.
    let mut valid = *start(Role::Initiator, &v, [3; 32]).share();
    valid[31] |= 0x80;
    cases.push(valid);
    for share in cases {
        let side = start(Role::Responder, &v, [5; 32]);
        assert_eq!(
            side.finish(b"", &share, b"").unwrap_err(),
            Error::InvalidShare,
            "{share:02x?}"
        );
    }
}
