//! `aeschat vectors DIR...`: checks this implementation against Fernet test vector files.
//!
//! Two formats are understood, decided case by case from the fields of each JSON object:
//! - the official spec's (fernet/spec): `src` as text, `iv` as an array of bytes, `now` as an
//!   RFC 3339 date-time, `ttl_sec` a number;
//! - aeschat's extended one (`vectors/README.md`): `src_hex` and `iv_hex` in hex, `now` as Unix
//!   seconds (any `u64`), `ttl_sec` a number or `null`, and in invalid cases the `error` class
//!   the rejection must have, with `python`, what `cryptography.fernet` does, for information.
//!
//! Which check a case gets depends on its file: `generate.json`, `verify.json` or `invalid.json`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use aeschat_core::fernet::{decrypt_buffer_len, token_len, Error, Iv, Key, TimePolicy, IV_LEN};
use serde::Deserialize;
use serde_json::{Map, Value};

const VECTORS_DETAILS: &str = "\
Check aeschat's Fernet implementation against test vector files. Each DIR must hold at least one
of generate.json (encrypting must give exactly the token), verify.json (decrypting must give
exactly the plaintext) and invalid.json (decrypting must fail, with the expected kind of error
where the file names one). Both the official spec's format (fields src, iv, now as RFC 3339) and
aeschat's extended format (src_hex, iv_hex, now as Unix seconds, error) are read, case by case.

Prints one line per file and one per failing case, then a last line \"N passed, M failed\". The
exit status is 0 if every case passed, 1 if any failed, and 2 if a DIR is missing or holds no
vector file.";

const VECTORS_EXAMPLES: &str = "\
Examples:
  aeschat vectors vectors/official
  aeschat vectors vectors/official vectors/extended";

/// Arguments of `aeschat vectors`.
#[derive(clap::Args)]
#[command(
    after_help = VECTORS_EXAMPLES,
    after_long_help = format!("{VECTORS_DETAILS}\n\n{VECTORS_EXAMPLES}")
)]
pub struct VectorsArgs {
    /// A directory holding generate.json, verify.json and/or invalid.json.
    #[arg(value_name = "DIR", required = true)]
    dirs: Vec<PathBuf>,
}

/// `aeschat vectors`: checks every vector file in the directories and prints a report.
pub fn run(args: VectorsArgs) -> ExitCode {
    let files = match find_vector_files(&args.dirs) {
        Ok(files) => files,
        Err(usage) => {
            eprintln!("aeschat: {usage}");
            return ExitCode::from(2);
        }
    };
    let mut tally = Tally::default();
    for (path, kind) in &files {
        let (passed, failures) = check_file(path, *kind);
        println!(
            "{}: {} checked, {} failed",
            path.display(),
            passed + failures.len(),
            failures.len()
        );
        for failure in &failures {
            println!("FAIL {}{failure}", path.display());
        }
        tally.passed += passed;
        tally.failed += failures.len();
    }
    println!("{} passed, {} failed", tally.passed, tally.failed);
    if tally.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[derive(Default)]
struct Tally {
    passed: usize,
    failed: usize,
}

/// Which check the cases of a file get, from the file's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Generate,
    Verify,
    Invalid,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Generate, Kind::Verify, Kind::Invalid];

    fn file_name(self) -> &'static str {
        match self {
            Kind::Generate => "generate.json",
            Kind::Verify => "verify.json",
            Kind::Invalid => "invalid.json",
        }
    }
}

/// The vector files present in each directory, or why the command line cannot be run.
fn find_vector_files(dirs: &[PathBuf]) -> Result<Vec<(PathBuf, Kind)>, String> {
    let mut files = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            return Err(format!(
                "The vector directory \"{}\" does not exist or is not a directory.",
                dir.display()
            ));
        }
        let found = Kind::ALL
            .into_iter()
            .map(|kind| (dir.join(kind.file_name()), kind))
            .filter(|(path, _)| path.exists());
        let before = files.len();
        files.extend(found);
        if files.len() == before {
            return Err(format!(
                "The directory \"{}\" holds no vector file: expected generate.json, verify.json \
                 or invalid.json.",
                dir.display()
            ));
        }
    }
    Ok(files)
}

/// Checks every case of one file: the number passed, and a line for each failure (to follow
/// the file's path). A file that cannot be read or parsed counts as one failure.
fn check_file(path: &Path, kind: Kind) -> (usize, Vec<String>) {
    let cases = std::fs::read_to_string(path)
        .map_err(|err| format!("cannot be read: {err}"))
        .and_then(|text| {
            serde_json::from_str::<Vec<Value>>(&text)
                .map_err(|err| format!("is not a JSON array of vector objects: {err}"))
        });
    let cases = match cases {
        Ok(cases) => cases,
        Err(problem) => return (0, vec![format!(": the file {problem}")]),
    };
    let mut passed = 0;
    let mut failures = Vec::new();
    for (index, case) in cases.into_iter().enumerate() {
        let desc = case
            .get("desc")
            .and_then(Value::as_str)
            .map_or_else(|| "(no desc)".to_owned(), |desc| format!("{desc:?}"));
        match Case::from_json(case, kind).and_then(|case| case.check()) {
            Ok(()) => passed += 1,
            Err(problem) => failures.push(format!("[{index}] {desc}: {problem}")),
        }
    }
    (passed, failures)
}

/// A case's fields as written, in either format.
#[derive(Deserialize)]
struct RawCase {
    secret: String,
    token: String,
    /// RFC 3339 text in the official format, Unix seconds in the extended one.
    now: Value,
    /// `None` when absent or `null`: no time check.
    ttl_sec: Option<u64>,
    src: Option<String>,
    src_hex: Option<String>,
    iv: Option<Vec<u8>>,
    iv_hex: Option<String>,
    error: Option<ErrorClass>,
    python: Option<PythonVerdict>,
}

/// The fields each kind of case may have in each format. Anything else is likely a misspelt
/// field, which could silently weaken a check (a misspelt `ttl_sec` would turn the time check
/// off), so it makes the case fail.
fn allowed_fields(kind: Kind, official: bool) -> &'static [&'static str] {
    match (kind, official) {
        (Kind::Generate, true) => &["desc", "secret", "token", "now", "src", "iv"],
        (Kind::Verify, true) => &["desc", "secret", "token", "now", "ttl_sec", "src"],
        (Kind::Invalid, true) => &["desc", "secret", "token", "now", "ttl_sec"],
        (Kind::Generate, false) => &["desc", "secret", "token", "now", "src_hex", "iv_hex"],
        (Kind::Verify, false) => &["desc", "secret", "token", "now", "ttl_sec", "src_hex"],
        (Kind::Invalid, false) => &[
            "desc", "secret", "token", "now", "ttl_sec", "error", "python",
        ],
    }
}

/// The class of error an extended invalid case must be rejected with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
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
    /// The class of a core error, if it is a verdict on a token at all.
    fn of(err: Error) -> Option<ErrorClass> {
        match err {
            Error::TokenEncoding => Some(ErrorClass::Encoding),
            Error::UnsupportedVersion => Some(ErrorClass::Version),
            Error::TokenLength => Some(ErrorClass::Length),
            Error::Expired => Some(ErrorClass::Expired),
            Error::FromTheFuture => Some(ErrorClass::Future),
            Error::InvalidToken => Some(ErrorClass::Invalid),
            _ => None,
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ErrorClass::Encoding => "encoding",
            ErrorClass::Version => "version",
            ErrorClass::Length => "length",
            ErrorClass::Expired => "expired",
            ErrorClass::Future => "future",
            ErrorClass::Invalid => "invalid",
        };
        f.write_str(name)
    }
}

/// What Python's `cryptography.fernet` does with an extended invalid case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum PythonVerdict {
    Accepts,
    Rejects,
}

/// One case, checked for completeness and decoded, whatever its format.
struct Case {
    key: Key,
    token: String,
    now: u64,
    ttl: Option<u64>,
    expected: Expected,
}

/// What a case expects, by kind.
enum Expected {
    /// Encrypting `src` at `now` with this IV gives exactly the token.
    Token { src: Vec<u8>, iv: Iv },
    /// Decrypting the token gives exactly these bytes.
    Plaintext(Vec<u8>),
    /// Decrypting the token fails, with this class if one is given.
    Rejection {
        class: Option<ErrorClass>,
        python: Option<PythonVerdict>,
    },
}

impl Case {
    /// Reads one JSON object as a case of the given kind, in whichever format it is written.
    fn from_json(json: Value, kind: Kind) -> Result<Case, String> {
        let Value::Object(fields) = json else {
            return Err("malformed case: not a JSON object".to_owned());
        };
        let official = match fields.get("now") {
            Some(Value::String(_)) => true,
            Some(Value::Number(_)) => false,
            _ => {
                return Err(
                    "malformed case: `now` must be an RFC 3339 string (official format) \
                            or Unix seconds (extended format)"
                        .to_owned(),
                )
            }
        };
        check_fields(&fields, allowed_fields(kind, official))?;
        let raw: RawCase = serde_json::from_value(Value::Object(fields))
            .map_err(|err| format!("malformed case: {err}"))?;

        let key = Key::parse(raw.secret.as_bytes())
            .map_err(|err| format!("malformed case: its secret is unusable: {err}"))?;
        let now = match &raw.now {
            Value::String(text) => parse_rfc3339(text)
                .and_then(|seconds| u64::try_from(seconds).map_err(|_| "it is before 1970"))
                .map_err(|problem| format!("malformed case: `now` {text:?}: {problem}"))?,
            other => other.as_u64().ok_or_else(|| {
                format!("malformed case: `now` {other} is not Unix seconds in 0..=2^64-1")
            })?,
        };
        let src = match (raw.src, raw.src_hex) {
            (Some(text), _) => Some(text.into_bytes()),
            (None, Some(hex)) => {
                Some(decode_hex(&hex).map_err(|p| format!("malformed case: `src_hex`: {p}"))?)
            }
            (None, None) => None,
        };
        let iv = match (raw.iv, raw.iv_hex) {
            (Some(bytes), _) => Some(bytes),
            (None, Some(hex)) => {
                Some(decode_hex(&hex).map_err(|p| format!("malformed case: `iv_hex`: {p}"))?)
            }
            (None, None) => None,
        };
        let missing = |field: &str| format!("malformed case: it has no `{field}`");
        let expected = match kind {
            Kind::Generate => {
                let iv = iv.ok_or_else(|| missing(if official { "iv" } else { "iv_hex" }))?;
                let iv = <[u8; IV_LEN]>::try_from(iv.as_slice()).map_err(|_| {
                    format!(
                        "malformed case: the IV is {} bytes long, not {IV_LEN}",
                        iv.len()
                    )
                })?;
                Expected::Token {
                    src: src.ok_or_else(|| missing(if official { "src" } else { "src_hex" }))?,
                    iv: Iv::from_bytes(iv),
                }
            }
            Kind::Verify => Expected::Plaintext(
                src.ok_or_else(|| missing(if official { "src" } else { "src_hex" }))?,
            ),
            Kind::Invalid => {
                if !official && raw.error.is_none() {
                    return Err(missing("error"));
                }
                Expected::Rejection {
                    class: raw.error,
                    python: raw.python,
                }
            }
        };
        Ok(Case {
            key,
            token: raw.token,
            now,
            ttl: raw.ttl_sec,
            expected,
        })
    }

    /// Runs the case against the core; the error says what went wrong.
    fn check(&self) -> Result<(), String> {
        match &self.expected {
            Expected::Token { src, iv } => {
                let mut out = vec![0u8; token_len(src.len())];
                let made = aeschat_core::fernet::encrypt(&self.key, src, self.now, iv, &mut out)
                    .map_err(|err| format!("encrypting failed: {err}"))?;
                match first_difference(made.as_bytes(), self.token.as_bytes()) {
                    None => Ok(()),
                    Some(at) => Err(format!(
                        "encrypting made a different token: it differs from character {at} on \
                         ({} characters made, {} expected)",
                        made.len(),
                        self.token.len()
                    )),
                }
            }
            Expected::Plaintext(src) => match self.decrypt() {
                Ok(plaintext) if plaintext == *src => Ok(()),
                Ok(plaintext) => Err(format!(
                    "decrypted to different bytes: {} bytes, {} expected, differing from byte {} \
                     on",
                    plaintext.len(),
                    src.len(),
                    first_difference(&plaintext, src).unwrap_or(0)
                )),
                Err(err) => Err(format!("rejected, but it must decrypt: {err}")),
            },
            Expected::Rejection { class, python } => match (self.decrypt(), class) {
                (Ok(_), _) => {
                    let note = match python {
                        Some(PythonVerdict::Accepts) => {
                            " (Python's cryptography.fernet accepts \
                                                         it too, but aeschat must not)"
                        }
                        _ => "",
                    };
                    Err(format!("decrypted, but it must be rejected{note}"))
                }
                (Err(err), expected) => match (ErrorClass::of(err), expected) {
                    (None, _) => Err(format!(
                        "failed, but not with a verdict on the token: {err}"
                    )),
                    (Some(_), None) => Ok(()),
                    (Some(got), Some(expected)) if got == *expected => Ok(()),
                    (Some(got), Some(expected)) => Err(format!(
                        "rejected with error class {got}, but {expected} is expected: {err}"
                    )),
                },
            },
        }
    }

    fn decrypt(&self) -> Result<Vec<u8>, Error> {
        let policy = match self.ttl {
            Some(ttl) => TimePolicy::MaxAge { ttl, now: self.now },
            None => TimePolicy::Unchecked,
        };
        let mut out = vec![0u8; decrypt_buffer_len(self.token.len())];
        let plaintext =
            aeschat_core::fernet::decrypt(&self.key, self.token.as_bytes(), policy, &mut out)?;
        Ok(plaintext.to_vec())
    }
}

/// Rejects fields a case of this kind and format does not have.
fn check_fields(fields: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match fields.keys().find(|name| !allowed.contains(&name.as_str())) {
        None => Ok(()),
        Some(name) => Err(format!(
            "malformed case: unexpected field {name:?} (this kind of case has {})",
            allowed.join(", ")
        )),
    }
}

/// The index of the first byte where `a` and `b` differ, or `None` if they are equal.
fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(
        a.iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len())),
    )
}

/// Decodes hex (either case) into bytes.
fn decode_hex(hex: &str) -> Result<Vec<u8>, &'static str> {
    fn nibble(digit: u8) -> Result<u8, &'static str> {
        match digit {
            b'0'..=b'9' => Ok(digit - b'0'),
            b'a'..=b'f' => Ok(digit - b'a' + 10),
            b'A'..=b'F' => Ok(digit - b'A' + 10),
            _ => Err("it holds a character that is not a hex digit"),
        }
    }
    let digits = hex.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return Err("it has an odd number of hex digits");
    }
    digits
        .chunks_exact(2)
        .map(|pair| Ok(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

/// Parses an RFC 3339 date-time such as `1985-10-26T01:20:00-07:00` into Unix seconds
/// (negative before 1970). Fractional seconds are dropped, which rounds down. A leap second
/// (`:60`) counts as the first second of the next minute, as POSIX time has no leap seconds.
fn parse_rfc3339(text: &str) -> Result<i64, &'static str> {
    const FORMAT: &str = "not an RFC 3339 date-time like 1985-10-26T01:20:00-07:00";
    let bytes = text.as_bytes();
    // A run of ASCII digits at a fixed position, as a number.
    let number = |from: usize, len: usize| -> Result<i64, &'static str> {
        let digits = bytes.get(from..from + len).ok_or(FORMAT)?;
        digits.iter().try_fold(0, |value, &digit| match digit {
            b'0'..=b'9' => Ok(value * 10 + i64::from(digit - b'0')),
            _ => Err(FORMAT),
        })
    };
    let separator = |at: usize, allowed: &[u8]| match bytes.get(at) {
        Some(byte) if allowed.contains(byte) => Ok(()),
        _ => Err(FORMAT),
    };

    // date-fullyear "-" date-month "-" date-mday, "T" (or "t" or a space, which RFC 3339
    // allows too), time-hour ":" time-minute ":" time-second.
    let year = number(0, 4)?;
    separator(4, b"-")?;
    let month = number(5, 2)?;
    separator(7, b"-")?;
    let day = number(8, 2)?;
    separator(10, b"Tt ")?;
    let hour = number(11, 2)?;
    separator(13, b":")?;
    let minute = number(14, 2)?;
    separator(16, b":")?;
    let second = number(17, 2)?;

    // Optional time-secfrac: "." and at least one digit.
    let mut at = 19;
    if bytes.get(at) == Some(&b'.') {
        let digits = bytes.get(at + 1..).unwrap_or(&[]);
        let count = digits.iter().take_while(|d| d.is_ascii_digit()).count();
        if count == 0 {
            return Err(FORMAT);
        }
        at += 1 + count;
    }

    // time-offset: "Z" (or "z"), or "+"/"-" time-hour ":" time-minute, then the end.
    let offset = match bytes.get(at..) {
        Some(b"Z" | b"z") => 0,
        Some([sign @ (b'+' | b'-'), _, _, b':', _, _]) => {
            let (hours, minutes) = (number(at + 1, 2)?, number(at + 4, 2)?);
            if hours > 23 || minutes > 59 {
                return Err("its offset from UTC is out of range");
            }
            let seconds = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => return Err(FORMAT),
    };

    if !(1..=12).contains(&month) {
        return Err("its month is out of range");
    }
    if day < 1 || day > days_in_month(year, month) {
        return Err("its day is out of range for its month");
    }
    if hour > 23 || minute > 59 || second > 60 {
        return Err("its time of day is out of range");
    }
    let days = days_since_epoch(year, month, day);
    // Local time minus its offset is UTC. Four-digit years keep all of this far from overflow.
    Ok(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

fn is_leap_year(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap_year(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the given date of the proleptic Gregorian calendar.
fn days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    // Days from 0001-01-01 to 1 January of `year`: 365 a year, plus one for each leap year
    // before it (every 4th year, except every 100th, except every 400th).
    let days_before_year = |year: i64| {
        let past = year - 1;
        365 * past + past.div_euclid(4) - past.div_euclid(100) + past.div_euclid(400)
    };
    let days_before_month: i64 = (1..month).map(|m| days_in_month(year, m)).sum();
    days_before_year(year) - days_before_year(1970) + days_before_month + day - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_unix_times() {
        // Expected values from Python's datetime.fromisoformat(...).timestamp().
        for (text, expected) in [
            ("1985-10-26T01:20:00-07:00", 499_162_800),
            ("1985-10-26T01:20:01-07:00", 499_162_801),
            ("1970-01-01T00:00:00Z", 0),
            ("1969-12-31T23:59:59Z", -1),
            ("2000-02-29T12:00:00+05:30", 951_805_800),
            ("2100-03-01T00:00:00Z", 4_107_542_400),
            ("2038-01-19T03:14:08Z", 2_147_483_648),
            ("9999-12-31T23:59:59-23:59", 253_402_387_139),
            ("0001-01-01T00:00:00+23:59", -62_135_683_140),
            ("2024-12-31T23:59:59.999Z", 1_735_689_599),
            ("1600-03-01T00:00:00Z", -11_670_912_000),
            ("1985-10-26t08:20:00z", 499_162_800),
            ("1985-10-26 08:20:00+00:00", 499_162_800),
            ("1985-10-26T08:19:60Z", 499_162_800),
        ] {
            assert_eq!(parse_rfc3339(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn rfc3339_rejects_what_it_does_not_define() {
        for text in [
            "",
            "1985-10-26T01:20:00",
            "1985-10-26T01:20:00-0700",
            "1985-10-26T01:20:00-07",
            "1985-10-26T01:20Z",
            "85-10-26T01:20:00Z",
            "1985-10-26T01:20:00.Z",
            "1985-10-26T01:20:00Z ",
            "1985-10-26X01:20:00Z",
            "1985/10/26T01:20:00Z",
            "+985-10-26T01:20:00Z",
            "1985-13-01T00:00:00Z",
            "1985-00-01T00:00:00Z",
            "1985-02-29T00:00:00Z",
            "2100-02-29T00:00:00Z",
            "1985-04-31T00:00:00Z",
            "1985-10-00T00:00:00Z",
            "1985-10-26T24:00:00Z",
            "1985-10-26T01:60:00Z",
            "1985-10-26T01:20:61Z",
            "1985-10-26T01:20:00+24:00",
            "1985-10-26T01:20:00+01:60",
            "1985-10-26T01:20:00\u{ff10}Z",
        ] {
            assert!(parse_rfc3339(text).is_err(), "{text:?} was accepted");
        }
        assert_eq!(parse_rfc3339("2000-02-29T00:00:00Z"), Ok(951_782_400));
    }

    #[test]
    fn hex_decodes_both_cases_and_rejects_the_rest() {
        assert_eq!(decode_hex(""), Ok(vec![]));
        assert_eq!(decode_hex("00ff7Fa0"), Ok(vec![0x00, 0xff, 0x7f, 0xa0]));
        assert!(decode_hex("abc").is_err());
        assert!(decode_hex("zz").is_err());
        assert!(decode_hex("+1").is_err());
    }

    fn case(json: &str, kind: Kind) -> Result<(), String> {
        Case::from_json(serde_json::from_str(json).unwrap(), kind)?.check()
    }

    const SECRET: &str = "cw_0x689RpI-jtRR7oE8h_eQsKImvJapLeSbXpwF4e4=";
    const TOKEN: &str = "gAAAAAAdwJ6wAAECAwQFBgcICQoLDA0ODy021cpGVWKZ_eEwCGM4BLLF_5CV9dOPmrhuVUPgJobwOz7JcbmrR64jVmpU4IwqDA==";

    #[test]
    fn both_formats_of_the_same_generate_case_pass() {
        let official = format!(
            r#"{{"token": "{TOKEN}", "now": "1985-10-26T01:20:00-07:00",
                "iv": [0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15], "src": "hello", "secret": "{SECRET}"}}"#
        );
        assert_eq!(case(&official, Kind::Generate), Ok(()));
        let extended = format!(
            r#"{{"desc": "d", "secret": "{SECRET}", "iv_hex": "000102030405060708090a0b0c0d0e0f",
                "now": 499162800, "src_hex": "68656c6c6f", "token": "{TOKEN}"}}"#
        );
        assert_eq!(case(&extended, Kind::Generate), Ok(()));
        let wrong_time = extended.replace("499162800", "499162801");
        let err = case(&wrong_time, Kind::Generate).unwrap_err();
        assert!(err.contains("different token"), "{err}");
    }

    #[test]
    fn verify_cases_apply_the_ttl_only_when_given() {
        let verify = |now: &str, ttl: &str| {
            case(
                &format!(
                    r#"{{"secret": "{SECRET}", "token": "{TOKEN}", "now": {now},
                        "ttl_sec": {ttl}, "src_hex": "68656c6c6f"}}"#
                ),
                Kind::Verify,
            )
        };
        assert_eq!(verify("499162860", "60"), Ok(()));
        assert!(verify("499162861", "60").unwrap_err().contains("expired"));
        assert_eq!(verify("18446744073709551615", "null"), Ok(()));
        assert_eq!(verify("0", "null"), Ok(()));
        assert!(verify("0", "60").unwrap_err().contains("future"));
    }

    #[test]
    fn invalid_cases_must_fail_with_their_class() {
        let invalid = |token: &str, error: &str| {
            case(
                &format!(
                    r#"{{"desc": "x", "secret": "{SECRET}", "token": "{token}", "now": 499162800,
                        "ttl_sec": 60, "error": "{error}", "python": "rejects"}}"#
                ),
                Kind::Invalid,
            )
        };
        let truncated = &TOKEN[..TOKEN.len() - 4];
        assert_eq!(invalid(truncated, "length"), Ok(()));
        let err = invalid(truncated, "invalid").unwrap_err();
        assert!(err.contains("class length, but invalid"), "{err}");
        assert!(invalid(TOKEN, "invalid")
            .unwrap_err()
            .contains("must be rejected"));
        assert!(invalid("", "bogus").unwrap_err().contains("malformed case"));
    }

    #[test]
    fn malformed_cases_fail_rather_than_pass() {
        let misspelt = format!(
            r#"{{"secret": "{SECRET}", "token": "{TOKEN}", "now": 1, "ttl": 60, "src_hex": ""}}"#
        );
        assert!(case(&misspelt, Kind::Verify)
            .unwrap_err()
            .contains("\"ttl\""));
        let no_error = format!(r#"{{"secret": "{SECRET}", "token": "x", "now": 1}}"#);
        assert!(case(&no_error, Kind::Invalid)
            .unwrap_err()
            .contains("`error`"));
        let negative =
            format!(r#"{{"secret": "{SECRET}", "token": "x", "now": -1, "error": "invalid"}}"#);
        assert!(case(&negative, Kind::Invalid)
            .unwrap_err()
            .contains("`now`"));
        let before_1970 = format!(
            r#"{{"secret": "{SECRET}", "token": "x", "now": "1969-12-31T23:59:59Z", "ttl_sec": 1}}"#
        );
        assert!(case(&before_1970, Kind::Invalid)
            .unwrap_err()
            .contains("before 1970"));
        let short_iv = format!(
            r#"{{"secret": "{SECRET}", "token": "{TOKEN}", "now": 1, "iv_hex": "00", "src_hex": ""}}"#
        );
        assert!(case(&short_iv, Kind::Generate)
            .unwrap_err()
            .contains("1 bytes long, not 16"));
        assert!(case("[]", Kind::Verify)
            .unwrap_err()
            .contains("not a JSON object"));
    }
}
