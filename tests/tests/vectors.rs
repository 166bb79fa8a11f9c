//! The official Fernet spec vectors and aeschat's extended set (`vectors/`), run through the core
//! directly: generate cases must reproduce their token byte for byte, verify cases must decrypt,
//! and invalid cases must fail with exactly the expected error, whichever way the core is called.
//! A missing or empty vector file fails the tests.

use std::fmt::Debug;
use std::path::{Path, PathBuf};

use aeschat_core::fernet::{
    decrypt, decrypt_buffer_len, decrypt_in_place, encrypt, encrypt_to_string, token_len,
    verified_timestamp, Error, Iv, Key, Keyring, TimePolicy,
};
use serde::de::DeserializeOwned;
use serde::Deserialize;

/// The longest plaintext checked through `encrypt_to_string`, whose capacity is fixed at compile
/// time. The extended set's longest plaintext is 65,536 bytes.
const STRING_PLAINTEXT_MAX: usize = 70_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfficialGenerate {
    secret: String,
    src: String,
    iv: [u8; 16],
    now: String,
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfficialVerify {
    secret: String,
    src: String,
    now: String,
    ttl_sec: u64,
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OfficialInvalid {
    desc: String,
    secret: String,
    now: String,
    ttl_sec: u64,
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendedGenerate {
    desc: String,
    secret: String,
    iv_hex: String,
    now: u64,
    src_hex: String,
    token: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendedVerify {
    desc: String,
    secret: String,
    token: String,
    now: u64,
    ttl_sec: Option<u64>,
    src_hex: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExtendedInvalid {
    desc: String,
    secret: String,
    token: String,
    now: u64,
    ttl_sec: Option<u64>,
    error: ErrorClass,
    // What Python's `cryptography.fernet` does with the case; the core rejects every one.
    #[allow(dead_code)]
    python: PythonVerdict,
}

#[derive(Deserialize, Clone, Copy, Debug)]
#[serde(rename_all = "lowercase")]
enum ErrorClass {
    Encoding,
    Version,
    Length,
    Expired,
    Future,
    Invalid,
}

impl ErrorClass {
    fn error(self) -> Error {
        match self {
            ErrorClass::Encoding => Error::TokenEncoding,
            ErrorClass::Version => Error::UnsupportedVersion,
            ErrorClass::Length => Error::TokenLength,
            ErrorClass::Expired => Error::Expired,
            ErrorClass::Future => Error::FromTheFuture,
            ErrorClass::Invalid => Error::InvalidToken,
        }
    }
}

#[derive(Deserialize, Debug)]
#[serde(rename_all = "lowercase")]
enum PythonVerdict {
    Accepts,
    Rejects,
}

/// The error the core must report for each case of the official invalid set, which names none.
fn official_invalid_error(desc: &str) -> Error {
    match desc {
        "incorrect mac" => Error::InvalidToken,
        "too short" => Error::TokenLength,
        "invalid base64" => Error::TokenEncoding,
        "payload size not multiple of block size" => Error::TokenLength,
        "payload padding error" => Error::InvalidToken,
        "far-future TS (unacceptable clock skew)" => Error::FromTheFuture,
        "expired TTL" => Error::Expired,
        "incorrect IV (causes padding error)" => Error::InvalidToken,
        other => panic!("official invalid case {other:?} has no expected error: add it here"),
    }
}

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors")
}

/// Reads a vector file, failing if it is missing, malformed or holds no cases.
fn load<T: DeserializeOwned>(name: &str) -> Vec<T> {
    let path = vectors_dir().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|err| panic!("cannot read {}: {err}", path.display()));
    let cases: Vec<T> = serde_json::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not a valid vector file: {err}", path.display()));
    assert!(!cases.is_empty(), "{} holds no cases", path.display());
    cases
}

/// Collects every failing case of a file, so one run reports them all.
struct Failures {
    file: &'static str,
    cases: usize,
    failures: Vec<String>,
}

impl Failures {
    fn new(file: &'static str) -> Failures {
        Failures {
            file,
            cases: 0,
            failures: Vec::new(),
        }
    }

    fn check<T: PartialEq + Debug>(&mut self, desc: &str, what: &str, actual: T, expected: T) {
        if actual != expected {
            self.failures.push(format!(
                "{desc}: {what}: got {actual:?}, expected {expected:?}"
            ));
        }
    }

    fn finish(self) {
        assert!(self.cases > 0, "{}: no case was checked", self.file);
        assert!(
            self.failures.is_empty(),
            "{}: {} failure(s) in {} cases:\n{}",
            self.file,
            self.failures.len(),
            self.cases,
            self.failures.join("\n")
        );
        println!("{}: {} cases passed", self.file, self.cases);
    }
}

fn key(secret: &str) -> Key {
    Key::parse(secret.as_bytes()).unwrap_or_else(|err| panic!("bad key {secret:?}: {err}"))
}

fn hex(text: &str) -> Vec<u8> {
    let pairs = text.as_bytes().chunks_exact(2);
    assert!(pairs.remainder().is_empty(), "odd-length hex {text:?}");
    pairs
        .map(|pair| {
            let pair = std::str::from_utf8(pair).expect("ASCII hex");
            u8::from_str_radix(pair, 16).expect("valid hex")
        })
        .collect()
}

fn policy(ttl_sec: Option<u64>, now: u64) -> TimePolicy {
    match ttl_sec {
        Some(ttl) => TimePolicy::MaxAge { ttl, now },
        None => TimePolicy::Unchecked,
    }
}

/// The timestamp written in a token (bytes 1 to 8), read independently of the core: the first
/// 12 characters of base64url are exactly the first 9 bytes.
fn written_timestamp(token: &str) -> u64 {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = token.as_bytes()[..12].iter().fold(0u128, |bits, &c| {
        let value = ALPHABET.iter().position(|&a| a == c).expect("base64url");
        bits << 6 | value as u128
    });
    // 72 bits: the version byte, then the 64-bit timestamp.
    assert_eq!(bits >> 64, 0x80, "version byte");
    bits as u64
}

/// Unix seconds from an RFC 3339 time such as `1985-10-26T01:20:00-07:00` (fractions of a second
/// are dropped, as Fernet timestamps are whole seconds).
fn parse_rfc3339(text: &str) -> u64 {
    let bytes = text.as_bytes();
    let number = |range: std::ops::Range<usize>| -> i64 {
        let digits = text
            .get(range)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
        let digits = digits.unwrap_or_else(|| panic!("not an RFC 3339 time: {text:?}"));
        digits.parse().expect("digits")
    };
    let separators_ok = bytes.len() >= 20
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && matches!(bytes[10], b'T' | b't' | b' ')
        && bytes[13] == b':'
        && bytes[16] == b':';
    assert!(separators_ok, "not an RFC 3339 time: {text:?}");
    let (year, month, day) = (number(0..4), number(5..7), number(8..10));
    let (hour, minute, second) = (number(11..13), number(14..16), number(17..19));
    assert!(
        (1..=12).contains(&month) && (1..=31).contains(&day),
        "{text:?}"
    );
    assert!(hour < 24 && minute < 60 && second <= 60, "{text:?}");

    let mut rest = &text[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        assert!(digits > 0, "empty fraction in {text:?}");
        rest = &fraction[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => panic!("no time zone offset in {text:?}"),
            };
            assert!(rest.len() == 6 && rest.as_bytes()[3] == b':', "{text:?}");
            let offset_hours: i64 = rest[1..3].parse().expect("offset hours");
            let offset_minutes: i64 = rest[4..6].parse().expect("offset minutes");
            sign * (offset_hours * 3600 + offset_minutes * 60)
        }
    };
    let local = days_since_epoch(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    u64::try_from(local - offset).unwrap_or_else(|_| panic!("{text:?} is before 1970"))
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    // Count years from March, so that the leap day falls at the end of a counted year.
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Encrypts and checks the token against the expected one, through both encrypt APIs.
fn check_generate(
    failures: &mut Failures,
    desc: &str,
    key: &Key,
    plaintext: &[u8],
    now: u64,
    iv: &Iv,
    expected: &str,
) {
    failures.cases += 1;
    let mut out = vec![0u8; token_len(plaintext.len())];
    let token = encrypt(key, plaintext, now, iv, &mut out);
    failures.check(desc, "encrypt", token, Ok(expected));

    assert!(
        plaintext.len() <= STRING_PLAINTEXT_MAX,
        "{desc}: raise STRING_PLAINTEXT_MAX to {}",
        plaintext.len()
    );
    let string = encrypt_to_string::<{ token_len(STRING_PLAINTEXT_MAX) }>(key, plaintext, now, iv);
    failures.check(
        desc,
        "encrypt_to_string",
        string.as_ref().map(|s| s.as_str()),
        Ok(expected),
    );
    failures.check(
        desc,
        "token_len",
        token_len(plaintext.len()),
        expected.len(),
    );
}

/// Decrypts a valid token every way the core offers and checks the plaintext and timestamp.
fn check_verify(
    failures: &mut Failures,
    desc: &str,
    key: &Key,
    token: &str,
    policy: TimePolicy,
    plaintext: &[u8],
) {
    failures.cases += 1;
    let mut out = vec![0u8; decrypt_buffer_len(token.len())];
    let decrypted = decrypt(key, token.as_bytes(), policy, &mut out);
    failures.check(desc, "decrypt", decrypted, Ok(plaintext));

    let mut buffer = token.as_bytes().to_vec();
    let decrypted = decrypt_in_place(key, &mut buffer, policy);
    failures.check(desc, "decrypt_in_place", decrypted, Ok(plaintext));

    let timestamp = verified_timestamp(key, token.as_bytes());
    failures.check(
        desc,
        "verified_timestamp",
        timestamp,
        Ok(written_timestamp(token)),
    );

    let other = Key::from_bytes([0x5c; 32]);
    let older = [key.clone()];
    let mut out = vec![0u8; decrypt_buffer_len(token.len())];
    let decrypted = Keyring::new(&other, &older).decrypt(token.as_bytes(), policy, &mut out);
    failures.check(desc, "keyring decrypt", decrypted, Ok(plaintext));
}

/// Checks that an invalid token fails with exactly `expected`, every way the core is called.
/// Each case has exactly one fault: a time fault is the only one (without the time check the
/// token is authentic), and any other fault does not depend on the time check.
fn check_invalid(
    failures: &mut Failures,
    desc: &str,
    key: &Key,
    token: &[u8],
    policy: TimePolicy,
    expected: Error,
) {
    failures.cases += 1;
    let mut out = vec![0u8; decrypt_buffer_len(token.len())];
    let result = decrypt(key, token, policy, &mut out).map(<[u8]>::to_vec);
    failures.check(desc, "decrypt", result, Err(expected));

    let mut buffer = token.to_vec();
    let result = decrypt_in_place(key, &mut buffer, policy).map(<[u8]>::to_vec);
    failures.check(desc, "decrypt_in_place", result, Err(expected));

    let other = Key::from_bytes([0x5c; 32]);
    let older = [key.clone()];
    let ring = Keyring::new(&other, &older);
    let result = ring.decrypt(token, policy, &mut out).map(<[u8]>::to_vec);
    failures.check(desc, "keyring decrypt", result, Err(expected));

    let unchecked = decrypt(key, token, TimePolicy::Unchecked, &mut out).map(<[u8]>::to_vec);
    let timestamp = verified_timestamp(key, token);
    match expected {
        Error::Expired | Error::FromTheFuture => {
            let unchecked = unchecked.map(|_| ());
            failures.check(desc, "decrypt without a time check", unchecked, Ok(()));
            let written = written_timestamp(std::str::from_utf8(token).expect("ASCII"));
            failures.check(desc, "verified_timestamp", timestamp, Ok(written));
        }
        Error::InvalidToken => {
            // A bad MAC fails `verified_timestamp` too; a bad padding under a valid MAC does not,
            // as nothing is decrypted there.
            failures.check(
                desc,
                "decrypt without a time check",
                unchecked,
                Err(expected),
            );
            if let Err(err) = timestamp {
                failures.check(desc, "verified_timestamp", err, expected);
            }
        }
        _ => {
            failures.check(
                desc,
                "decrypt without a time check",
                unchecked,
                Err(expected),
            );
            failures.check(desc, "verified_timestamp", timestamp, Err(expected));
        }
    }
}

#[test]
fn official_generate() {
    let mut failures = Failures::new("official/generate.json");
    for case in load::<OfficialGenerate>("official/generate.json") {
        let key = key(&case.secret);
        let now = parse_rfc3339(&case.now);
        let iv = Iv::from_bytes(case.iv);
        let desc = format!("{:?} at {}", case.src, case.now);
        check_generate(
            &mut failures,
            &desc,
            &key,
            case.src.as_bytes(),
            now,
            &iv,
            &case.token,
        );
    }
    failures.finish();
}

#[test]
fn official_verify() {
    let mut failures = Failures::new("official/verify.json");
    for case in load::<OfficialVerify>("official/verify.json") {
        let key = key(&case.secret);
        let policy = policy(Some(case.ttl_sec), parse_rfc3339(&case.now));
        let desc = format!("{:?} at {}", case.src, case.now);
        check_verify(
            &mut failures,
            &desc,
            &key,
            &case.token,
            policy,
            case.src.as_bytes(),
        );
    }
    failures.finish();
}

#[test]
fn official_invalid() {
    let mut failures = Failures::new("official/invalid.json");
    for case in load::<OfficialInvalid>("official/invalid.json") {
        let key = key(&case.secret);
        let policy = policy(Some(case.ttl_sec), parse_rfc3339(&case.now));
        let expected = official_invalid_error(&case.desc);
        check_invalid(
            &mut failures,
            &case.desc,
            &key,
            case.token.as_bytes(),
            policy,
            expected,
        );
    }
    failures.finish();
}

#[test]
fn extended_generate() {
    let mut failures = Failures::new("extended/generate.json");
    for case in load::<ExtendedGenerate>("extended/generate.json") {
        let key = key(&case.secret);
        let iv: [u8; 16] = hex(&case.iv_hex).try_into().expect("16-byte IV");
        let plaintext = hex(&case.src_hex);
        let iv = Iv::from_bytes(iv);
        check_generate(
            &mut failures,
            &case.desc,
            &key,
            &plaintext,
            case.now,
            &iv,
            &case.token,
        );
    }
    failures.finish();
}

#[test]
fn extended_verify() {
    let mut failures = Failures::new("extended/verify.json");
    for case in load::<ExtendedVerify>("extended/verify.json") {
        let key = key(&case.secret);
        let policy = policy(case.ttl_sec, case.now);
        let plaintext = hex(&case.src_hex);
        check_verify(
            &mut failures,
            &case.desc,
            &key,
            &case.token,
            policy,
            &plaintext,
        );
    }
    failures.finish();
}

#[test]
fn extended_invalid() {
    let mut failures = Failures::new("extended/invalid.json");
    for case in load::<ExtendedInvalid>("extended/invalid.json") {
        let key = key(&case.secret);
        let policy = policy(case.ttl_sec, case.now);
        let expected = case.error.error();
        let token = case.token.as_bytes();
        check_invalid(&mut failures, &case.desc, &key, token, policy, expected);
    }
    failures.finish();
}

#[test]
fn rfc3339_times_parse_to_unix_seconds() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), 0);
    assert_eq!(parse_rfc3339("1985-10-26T01:20:00-07:00"), 499_162_800);
    assert_eq!(parse_rfc3339("1985-10-26T08:20:00Z"), 499_162_800);
    assert_eq!(parse_rfc3339("1985-10-26T10:20:00.75+02:00"), 499_162_800);
    assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), 951_782_400);
    assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), 951_868_800);
    assert_eq!(parse_rfc3339("2100-03-01T00:00:00Z"), 4_107_542_400);
    assert_eq!(parse_rfc3339("2025-11-29T00:00:00Z"), 1_764_374_400);
}

#[test]
fn written_timestamp_reads_the_header() {
    // The official generate vector is dated 499162800 (1985-10-26T01:20:00-07:00).
    let token = "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";
    assert_eq!(written_timestamp(token), 499_162_800);
    assert_eq!(written_timestamp("gP__________"), u64::MAX);
}
