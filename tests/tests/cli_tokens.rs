//! The token commands and `aeschat vectors`, run as the real binary: what they print, what
//! they refuse, and with which exit status.

use aeschat_tests::cli_support;

use std::collections::HashSet;
use std::ffi::OsStr;
use std::time::{SystemTime, UNIX_EPOCH};

use aeschat_core::fernet::{decrypt, token_len, verified_timestamp, Error, Key, TimePolicy};
use cli_support::{extended_vectors_dir, official_vectors_dir, run, ScratchDir, XorShift};
use serde_json::Value;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the test machine's clock is after 1970")
        .as_secs()
}

/// `aeschat encrypt` of `plaintext`: the token without its newline, after checking that the
/// output is exactly one line.
fn encrypt(key_file: &str, plaintext: &[u8], extra_args: &[&str]) -> String {
    let mut args = vec!["encrypt", "--key-file", key_file];
    args.extend_from_slice(extra_args);
    let output = run(&args, plaintext).success_text();
    let token = output
        .strip_suffix('\n')
        .expect("the token is followed by a newline");
    assert!(
        !token.contains(char::is_whitespace),
        "more than a token: {output:?}"
    );
    token.to_owned()
}

/// The message the CLI prints for a core error.
fn message(err: Error) -> String {
    format!("aeschat: {err}")
}

fn read_json(path: std::path::PathBuf) -> Vec<Value> {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// The official files' `now` values in Unix seconds (from Python's `datetime`); the test
/// fails on any other, so a changed file cannot be checked against a wrong time.
fn official_now(text: &str) -> u64 {
    match text {
        "1985-10-26T01:20:00-07:00" => 499_162_800,
        "1985-10-26T01:20:01-07:00" => 499_162_801,
        "1985-10-26T01:21:31-07:00" => 499_162_891,
        other => panic!("no Unix time known for {other:?}"),
    }
}

#[test]
fn genkey_prints_a_new_44_character_key_and_a_newline() {
    let mut keys = HashSet::new();
    for _ in 0..3 {
        let output = run(["genkey"], b"").success_text();
        assert_eq!(output.len(), 45, "{output:?}");
        let text = output.strip_suffix('\n').expect("ends in a newline");
        Key::parse(text.as_bytes()).expect("genkey prints a valid key");
        keys.insert(output);
    }
    assert_eq!(keys.len(), 3, "genkey printed the same key twice");
}

#[test]
fn encrypt_and_decrypt_round_trip_binary_data_of_any_size() {
    let dir = ScratchDir::new("round-trip");
    let key = Key::from_bytes([1; 32]);
    let key_file = dir.key_file("k", &key);
    let mut rng = XorShift::new(0x5eed_0001);
    let plaintexts = [
        Vec::new(),
        b"\n".to_vec(),
        b"hello\r\n\0\xff\xfe not UTF-8".to_vec(),
        (0..=255).collect(),
        vec![0x10; 16],
        rng.bytes(1 << 20),
    ];
    for plaintext in &plaintexts {
        let token = encrypt(&key_file, plaintext, &[]);
        assert_eq!(token.len(), token_len(plaintext.len()));

        let mut out = vec![0u8; plaintext.len() + 16];
        let by_core = decrypt(&key, token.as_bytes(), TimePolicy::Unchecked, &mut out);
        assert_eq!(by_core.expect("the core accepts the token"), &plaintext[..]);

        let token_line = format!("{token}\n");
        let decrypted = run(["decrypt", "--key-file", &key_file], token_line.as_bytes());
        assert!(
            decrypted.success() == *plaintext,
            "{} bytes did not round-trip",
            plaintext.len()
        );
    }
}

#[test]
fn encrypt_at_sets_the_timestamp_which_otherwise_is_now() {
    let dir = ScratchDir::new("at");
    let key = Key::from_bytes([2; 32]);
    let key_file = dir.key_file("k", &key);
    for at in [0, 1, 499_162_800, u64::MAX] {
        let token = encrypt(&key_file, b"dated", &["--at", &at.to_string()]);
        assert_eq!(verified_timestamp(&key, token.as_bytes()), Ok(at));
    }
    let before = unix_now();
    let token = encrypt(&key_file, b"now", &[]);
    let after = unix_now();
    let timestamp = verified_timestamp(&key, token.as_bytes()).unwrap();
    assert!(
        (before..=after).contains(&timestamp),
        "{timestamp} not in {before}..={after}"
    );
}

#[test]
fn encrypting_twice_draws_a_fresh_iv() {
    let dir = ScratchDir::new("iv");
    let key_file = dir.key_file("k", &Key::from_bytes([3; 32]));
    let first = encrypt(&key_file, b"same", &["--at", "5"]);
    let second = encrypt(&key_file, b"same", &["--at", "5"]);
    // Same version and timestamp (the first 12 characters encode 9 bytes exactly), then a
    // different IV and hence different everything after it.
    assert_eq!(first[..12], second[..12]);
    assert_ne!(first[12..], second[12..]);
}

#[test]
fn decrypt_accepts_the_official_tokens_and_rejects_the_invalid_ones_precisely() {
    let dir = ScratchDir::new("official");
    for (file, ttl_given) in [("generate.json", false), ("verify.json", true)] {
        for case in read_json(official_vectors_dir().join(file)) {
            let key_file = dir.write("k", case["secret"].as_str().unwrap());
            let token = case["token"].as_str().unwrap();
            let src = case["src"].as_str().unwrap().as_bytes();
            let plain = run(["decrypt", "--key-file", &key_file], token.as_bytes());
            assert_eq!(plain.success(), src);
            if ttl_given {
                let ttl = case["ttl_sec"].as_u64().unwrap().to_string();
                let now = official_now(case["now"].as_str().unwrap()).to_string();
                let args = [
                    "decrypt",
                    "--key-file",
                    &key_file,
                    "--ttl",
                    &ttl,
                    "--now",
                    &now,
                ];
                assert_eq!(run(args, token.as_bytes()).success(), src);
            }
        }
    }

    let expected_error = |desc: &str| match desc {
        "incorrect mac" | "payload padding error" | "incorrect IV (causes padding error)" => {
            Error::InvalidToken
        }
        "too short" | "payload size not multiple of block size" => Error::TokenLength,
        "invalid base64" => Error::TokenEncoding,
        "far-future TS (unacceptable clock skew)" => Error::FromTheFuture,
        "expired TTL" => Error::Expired,
        other => panic!("unknown official invalid case {other:?}"),
    };
    let invalid = read_json(official_vectors_dir().join("invalid.json"));
    assert_eq!(invalid.len(), 8);
    for case in invalid {
        let key_file = dir.write("k", case["secret"].as_str().unwrap());
        let ttl = case["ttl_sec"].as_u64().unwrap().to_string();
        let now = official_now(case["now"].as_str().unwrap()).to_string();
        let args = [
            "decrypt",
            "--key-file",
            &key_file,
            "--ttl",
            &ttl,
            "--now",
            &now,
        ];
        let line = run(args, case["token"].as_str().unwrap().as_bytes()).failure_line();
        let desc = case["desc"].as_str().unwrap();
        assert_eq!(line, message(expected_error(desc)), "{desc}");
    }
}

#[test]
fn a_wrong_key_prints_nothing_and_one_line_on_stderr() {
    let dir = ScratchDir::new("wrong-key");
    let right = dir.key_file("right", &Key::from_bytes([4; 32]));
    let wrong = dir.key_file("wrong", &Key::from_bytes([5; 32]));
    let token = encrypt(&right, b"secret plaintext", &[]);
    let line = run(["decrypt", "--key-file", &wrong], token.as_bytes()).failure_line();
    assert_eq!(line, message(Error::InvalidToken));
}

#[test]
fn ttl_and_now_limits_are_inclusive_and_now_needs_ttl() {
    let dir = ScratchDir::new("ttl");
    let key_file = dir.key_file("k", &Key::from_bytes([6; 32]));
    let stamp: u64 = 1_000_000;
    let token = encrypt(&key_file, b"timely", &["--at", &stamp.to_string()]);
    let decrypt_with = |ttl: u64, now: u64| {
        let (ttl, now) = (ttl.to_string(), now.to_string());
        run(
            [
                "decrypt",
                "--key-file",
                &key_file,
                "--ttl",
                &ttl,
                "--now",
                &now,
            ],
            token.as_bytes(),
        )
    };
    assert_eq!(decrypt_with(10, stamp + 10).success(), b"timely");
    assert_eq!(
        decrypt_with(10, stamp + 11).failure_line(),
        message(Error::Expired)
    );
    assert_eq!(decrypt_with(10, stamp - 60).success(), b"timely");
    assert_eq!(
        decrypt_with(10, stamp - 61).failure_line(),
        message(Error::FromTheFuture)
    );
    assert_eq!(decrypt_with(0, stamp).success(), b"timely");
    assert_eq!(decrypt_with(u64::MAX, u64::MAX).success(), b"timely");

    // Without --ttl there is no time check at all, however old or new the token.
    for at in [0, u64::MAX] {
        let token = encrypt(&key_file, b"any age", &["--at", &at.to_string()]);
        let plain = run(["decrypt", "--key-file", &key_file], token.as_bytes());
        assert_eq!(plain.success(), b"any age");
    }

    // --ttl alone checks against the system clock.
    let with_clock = |token: &str| {
        run(
            ["decrypt", "--key-file", &key_file, "--ttl", "60"],
            token.as_bytes(),
        )
    };
    let fresh = encrypt(&key_file, b"fresh", &[]);
    assert_eq!(with_clock(&fresh).success(), b"fresh");
    assert_eq!(with_clock(&token).failure_line(), message(Error::Expired));
    let tomorrow = encrypt(
        &key_file,
        b"early",
        &["--at", &(unix_now() + 86_400).to_string()],
    );
    assert_eq!(
        with_clock(&tomorrow).failure_line(),
        message(Error::FromTheFuture)
    );

    // --now alone would check nothing, so it is refused rather than silently ignored.
    run(
        ["decrypt", "--key-file", &key_file, "--now", "1000000"],
        token.as_bytes(),
    )
    .usage_error();
}

#[test]
fn decrypt_accepts_a_token_under_any_of_several_keys() {
    let dir = ScratchDir::new("keyring");
    let [a, b, c] = [7, 8, 9].map(|byte| Key::from_bytes([byte; 32]));
    let (a_file, b_file, c_file) = (
        dir.key_file("a", &a),
        dir.key_file("b", &b),
        dir.key_file("c", &c),
    );
    for (key_file, plaintext) in [
        (&a_file, b"under a"),
        (&b_file, b"under b"),
        (&c_file, b"under c"),
    ] {
        let token = encrypt(key_file, plaintext, &[]);
        let args = [
            "decrypt",
            "--key-file",
            &a_file,
            "--key-file",
            &b_file,
            "--key-file",
            &c_file,
        ];
        assert_eq!(run(args, token.as_bytes()).success(), plaintext);
    }
    let under_c = encrypt(&c_file, b"under c", &[]);
    let args = ["decrypt", "--key-file", &a_file, "--key-file", &b_file];
    assert_eq!(
        run(args, under_c.as_bytes()).failure_line(),
        message(Error::InvalidToken)
    );

    // A time failure under an older key is final: no other key could change it.
    let old = encrypt(&b_file, b"old", &["--at", "100"]);
    let args = [
        "decrypt",
        "--key-file",
        &a_file,
        "--key-file",
        &b_file,
        "--ttl",
        "60",
        "--now",
        "1000",
    ];
    assert_eq!(
        run(args, old.as_bytes()).failure_line(),
        message(Error::Expired)
    );
}

#[test]
fn rotate_moves_a_token_to_the_new_key_with_its_timestamp() {
    let dir = ScratchDir::new("rotate");
    let [new, old, older] = [10, 11, 12].map(|byte| Key::from_bytes([byte; 32]));
    let new_file = dir.key_file("new", &new);
    let old_file = dir.key_file("old", &old);
    let older_file = dir.key_file("older", &older);
    let plaintext = XorShift::new(0x5eed_0002).bytes(100_000);

    for (under, at) in [
        (&old_file, 777_u64),
        (&older_file, u64::MAX),
        (&new_file, 0),
    ] {
        let token = encrypt(under, &plaintext, &["--at", &at.to_string()]);
        let args = [
            "rotate",
            "--key-file",
            &new_file,
            "--key-file",
            &old_file,
            "--key-file",
            &older_file,
        ];
        let output = run(args, format!("{token}\r\n").as_bytes()).success_text();
        let rotated = output.strip_suffix('\n').expect("a token and a newline");
        assert_ne!(rotated, token);
        assert_eq!(rotated.len(), token.len());
        assert_eq!(verified_timestamp(&new, rotated.as_bytes()), Ok(at));
        assert_eq!(
            verified_timestamp(&old, rotated.as_bytes()),
            Err(Error::InvalidToken)
        );
        let decrypted = run(["decrypt", "--key-file", &new_file], rotated.as_bytes());
        assert!(
            decrypted.success() == plaintext,
            "plaintext changed in rotation"
        );
    }

    // A token under none of the keys cannot be rotated.
    let stranger = dir.key_file("stranger", &Key::from_bytes([13; 32]));
    let token = encrypt(&stranger, b"x", &[]);
    let args = ["rotate", "--key-file", &new_file, "--key-file", &old_file];
    assert_eq!(
        run(args, token.as_bytes()).failure_line(),
        message(Error::InvalidToken)
    );
}

#[test]
fn decrypt_reads_one_token_and_at_most_one_line_ending() {
    let dir = ScratchDir::new("stdin");
    let key_file = dir.key_file("k", &Key::from_bytes([14; 32]));
    let token = encrypt(&key_file, b"exact", &[]);
    for accepted in [token.clone(), format!("{token}\n"), format!("{token}\r\n")] {
        let plain = run(["decrypt", "--key-file", &key_file], accepted.as_bytes());
        assert_eq!(plain.success(), b"exact", "{accepted:?}");
    }
    for rejected in [
        format!("{token}\n\n"),
        format!("{token}\r"),
        format!("{token}\n\r\n"),
        format!("{token} "),
        format!(" {token}"),
        format!("{token}\n{token}\n"),
    ] {
        let line = run(["decrypt", "--key-file", &key_file], rejected.as_bytes()).failure_line();
        assert_eq!(line, message(Error::TokenEncoding), "{rejected:?}");
    }
    for empty in ["", "\n", "\r\n"] {
        let line = run(["decrypt", "--key-file", &key_file], empty.as_bytes()).failure_line();
        assert!(line.contains("no token"), "{line}");
    }
}

#[test]
fn unusable_key_files_are_named_and_never_shown() {
    let dir = ScratchDir::new("key-files");
    let key_text = Key::from_bytes([15; 32]).to_text().as_str().to_owned();
    let good = dir.write("good", format!("{key_text}\n"));
    let token = encrypt(&good, b"ok", &[]);

    // One line ending, either kind, or none at all: all fine.
    for (name, contents) in [
        ("bare", key_text.clone()),
        ("crlf", format!("{key_text}\r\n")),
    ] {
        let key_file = dir.write(name, contents);
        let plain = run(["decrypt", "--key-file", &key_file], token.as_bytes());
        assert_eq!(plain.success(), b"ok");
    }

    let cases = [
        (
            "short",
            key_text[..43].to_owned(),
            Error::KeyLength.to_string(),
        ),
        ("long", format!("{key_text}A"), Error::KeyLength.to_string()),
        (
            "spaced",
            format!(" {key_text}\n"),
            Error::KeyLength.to_string(),
        ),
        (
            "alphabet",
            format!("+/{}\n", &key_text[2..]),
            Error::KeyEncoding.to_string(),
        ),
        (
            "two-keys",
            format!("{key_text}\n{key_text}\n"),
            "more than one line".to_owned(),
        ),
        (
            "blank-line",
            format!("{key_text}\n\n"),
            "more than one line".to_owned(),
        ),
        ("empty", String::new(), "It is empty".to_owned()),
        (
            "huge",
            format!("{key_text}\n").repeat(20_000),
            "too long".to_owned(),
        ),
    ];
    for (name, contents, expected) in cases {
        let key_file = dir.write(name, contents);
        for args in [
            vec!["decrypt", "--key-file", &key_file],
            vec!["encrypt", "--key-file", &key_file],
            vec!["rotate", "--key-file", &good, "--key-file", &key_file],
        ] {
            let line = run(&args, token.as_bytes()).failure_line();
            let prefix = format!("aeschat: Key file \"{key_file}\": ");
            assert!(line.starts_with(&prefix), "{name}: {line}");
            assert!(line.contains(&expected), "{name}: {line}");
            assert!(
                !line.contains(&key_text[..20]),
                "{name} shows the key: {line}"
            );
        }
    }

    let missing = dir.path().join("missing").to_str().unwrap().to_owned();
    let line = run(["decrypt", "--key-file", &missing], token.as_bytes()).failure_line();
    assert!(
        line.starts_with(&format!(
            "aeschat: Key file \"{missing}\": Cannot read it: "
        )),
        "{line}"
    );
    let directory = dir.path().to_str().unwrap().to_owned();
    let line = run(["encrypt", "--key-file", &directory], b"x").failure_line();
    assert!(line.contains("Cannot read it"), "{line}");
}

#[test]
fn usage_errors_exit_with_status_2() {
    let dir = ScratchDir::new("usage");
    let key_file = dir.key_file("k", &Key::from_bytes([16; 32]));
    let k = key_file.as_str();
    let command_lines: &[&[&str]] = &[
        &["frobnicate"],
        &["genkey", "extra"],
        &["encrypt"],
        &["encrypt", "--key-file"],
        &["encrypt", "--key-file", k, "--at", "-1"],
        &["encrypt", "--key-file", k, "--at", "soon"],
        &["encrypt", "--key-file", k, "--at", "18446744073709551616"],
        &["decrypt"],
        &["decrypt", "--key-file", k, "--now", "5"],
        &["decrypt", "--key-file", k, "--ttl", "-5"],
        &["decrypt", "--key-file", k, "--ttl", "1.5"],
        &["rotate"],
        &["vectors"],
    ];
    for args in command_lines {
        run(*args, b"").usage_error();
    }
    // No command at all is not a mistake in one: it gets the help, still with status 2.
    let bare = run([] as [&str; 0], b"");
    assert_eq!(bare.code(), 2, "{bare:?}");
    assert!(bare.stderr.contains("Commands:"), "{bare:?}");
    assert!(bare.stdout.is_empty(), "{bare:?}");
}

#[test]
fn every_command_has_help_with_an_example() {
    for command in ["genkey", "encrypt", "decrypt", "rotate", "vectors"] {
        for flag in ["--help", "-h"] {
            let help = run([command, flag], b"").success_text();
            assert!(help.contains("Examples:"), "{command} {flag}:\n{help}");
            assert!(
                help.contains(&format!("  aeschat {command} "))
                    || help.contains(&format!("; aeschat {command} ")),
                "{command} {flag} shows no example command line:\n{help}"
            );
        }
    }
    // Help is wrapped to the terminal's width: compare with the line breaks undone.
    let decrypt_help = run(["decrypt", "--help"], b"").success_text();
    let decrypt_help = decrypt_help
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(decrypt_help.contains("Without --ttl no time check is done"));
    assert!(decrypt_help.contains("Only with --ttl"));
}

/// The `N passed, M failed` line that must close the report.
fn closing_line(stdout: &[u8]) -> String {
    let text = String::from_utf8(stdout.to_vec()).expect("the report is UTF-8");
    text.lines().last().unwrap_or_default().to_owned()
}

#[test]
fn vectors_pass_on_the_official_and_extended_sets() {
    let official = official_vectors_dir();
    let output = run([OsStr::new("vectors"), official.as_os_str()], b"").success();
    assert_eq!(closing_line(&output), "10 passed, 0 failed");

    let extended = extended_vectors_dir();
    let cases: usize = ["generate.json", "verify.json", "invalid.json"]
        .iter()
        .map(|file| read_json(extended.join(file)).len())
        .sum();
    let output = run([OsStr::new("vectors"), extended.as_os_str()], b"").success();
    assert_eq!(closing_line(&output), format!("{cases} passed, 0 failed"));
}

#[test]
fn vectors_reports_each_failing_case_and_exits_1() {
    let dir = ScratchDir::new("bad-vectors");
    let mut generate = read_json(official_vectors_dir().join("generate.json"));
    let mut wrong = generate[0].clone();
    wrong["src"] = "hellO".into();
    generate.push(wrong);
    dir.write("generate.json", serde_json::to_string(&generate).unwrap());

    let mut invalid: Vec<Value> = read_json(extended_vectors_dir().join("invalid.json"));
    let index = invalid
        .iter()
        .position(|case| case["error"] == "expired")
        .expect("the extended set has an expired case");
    let desc = invalid[index]["desc"].as_str().unwrap().to_owned();
    invalid[index]["error"] = "future".into();
    dir.write("invalid.json", serde_json::to_string(&invalid).unwrap());

    let outcome = run([OsStr::new("vectors"), dir.path().as_os_str()], b"");
    assert_eq!(outcome.code(), 1, "{outcome:?}");
    let report = String::from_utf8(outcome.stdout).unwrap();
    let failures: Vec<&str> = report
        .lines()
        .filter(|line| line.starts_with("FAIL "))
        .collect();
    assert_eq!(failures.len(), 2, "{report}");
    assert!(failures[0].contains("generate.json[1]"), "{report}");
    assert!(failures[0].contains("different token"), "{report}");
    assert!(
        failures[1].contains(&format!("invalid.json[{index}]")),
        "{report}"
    );
    assert!(failures[1].contains(&format!("{desc:?}")), "{report}");
    assert!(
        failures[1].contains("class expired, but future is expected"),
        "{report}"
    );
    assert_eq!(
        closing_line(report.as_bytes()),
        format!("{} passed, 2 failed", 1 + invalid.len() - 1)
    );
}

#[test]
fn vectors_without_vector_files_is_a_usage_error() {
    let dir = ScratchDir::new("no-vectors");
    run([OsStr::new("vectors"), dir.path().as_os_str()], b"").usage_error();
    let missing = dir.path().join("missing");
    run([OsStr::new("vectors"), missing.as_os_str()], b"").usage_error();
}
