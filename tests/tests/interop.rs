//! Interoperability with Python's `cryptography.fernet`, the reference implementation, used as
//! an independent oracle: tokens made by `aeschat` open in Python, and Python's tokens open in
//! `aeschat`, for random keys and plaintext sizes from 0 to 70,000 bytes.
//!
//! Without `python3` and `cryptography` the tests are skipped with a message on stderr, except
//! under CI (the `CI` environment variable is set), where they fail.

use aeschat_tests::cli_support;

use std::io::Write;
use std::process::{Command, Stdio};

use aeschat_core::fernet::{token_len, verified_timestamp, Key};
use cli_support::{run, ScratchDir, XorShift};
use serde_json::{json, Value};

/// Fixed, so a failure can be reproduced; every test derives its own stream from it.
const SEED: u64 = 0xae5c_4a70_2026_1129;

/// Runs each request through `cryptography.fernet` and answers each with either a result or
/// the name of the exception, so a failure names its case instead of ending in a traceback.
const ORACLE: &str = r#"
import json, sys
from cryptography.fernet import Fernet, MultiFernet

answers = []
for request in json.load(sys.stdin):
    try:
        fernet = Fernet(request["key"])
        if request["op"] == "decrypt":
            token = request["token"].encode()
            answers.append({
                "plaintext_hex": fernet.decrypt(token).hex(),
                "timestamp": fernet.extract_timestamp(token),
            })
        elif request["op"] == "encrypt":
            plaintext = bytes.fromhex(request["plaintext_hex"])
            token = fernet.encrypt_at_time(plaintext, request["at"])
            answers.append({"token": token.decode()})
        else:
            raise ValueError("unknown op " + request["op"])
    except Exception as error:
        answers.append({"error": type(error).__name__ + ": " + str(error)})
json.dump(answers, sys.stdout)
"#;

/// Whether the oracle is available. Under CI its absence fails the test; elsewhere the test
/// is skipped with the reason on stderr.
fn oracle_available(test: &str) -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import cryptography.fernet"])
        .output();
    let reason = match probe {
        Ok(output) if output.status.success() => return true,
        Ok(output) => format!(
            "python3 cannot import cryptography.fernet ({})",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(err) => format!("python3 cannot be run ({err})"),
    };
    if std::env::var_os("CI").is_some() {
        panic!(
            "{test}: {reason}. CI must provide the interoperability oracle: install python3 and \
             `pip install cryptography`."
        );
    }
    eprintln!(
        "skipping {test}: {reason}; install python3 and `pip install cryptography` to run it"
    );
    false
}

/// Sends requests to the oracle in one Python process and returns its answers, in order.
fn ask_python(requests: &[Value]) -> Vec<Value> {
    let mut python = Command::new("python3")
        .args(["-c", ORACLE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start python3");
    let mut stdin = python.stdin.take().expect("stdin is piped");
    let input = serde_json::to_vec(requests).expect("requests serialise");
    let output = std::thread::scope(|scope| {
        scope.spawn(move || stdin.write_all(&input).expect("cannot write to python3"));
        python.wait_with_output().expect("cannot wait for python3")
    });
    assert!(
        output.status.success(),
        "the Python oracle failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let answers: Vec<Value> =
        serde_json::from_slice(&output.stdout).expect("the oracle answers in JSON");
    assert_eq!(answers.len(), requests.len());
    answers
}

/// Plaintext sizes: every kind of block and chunk boundary, the extremes, and random sizes.
fn plaintext_sizes(rng: &mut XorShift) -> Vec<usize> {
    let mut sizes = vec![
        0, 1, 15, 16, 17, 31, 32, 33, 47, 48, 49, // AES blocks
        767, 768, 769, 1023, 1024, 1025, // the core's encryption and decoding chunks
        4095, 4096, 4097, 65_535, 65_536, 65_537, 69_999, 70_000,
    ];
    sizes.extend((0..16).map(|_| rng.up_to(70_000) as usize));
    sizes
}

/// One plaintext under one key, dated `at`.
struct Sample {
    key: Key,
    plaintext: Vec<u8>,
    at: u64,
}

fn samples(stream: u64) -> Vec<Sample> {
    let mut rng = XorShift::new(SEED ^ stream);
    plaintext_sizes(&mut rng)
        .into_iter()
        .enumerate()
        .map(|(index, size)| Sample {
            key: rng.key(),
            plaintext: rng.bytes(size),
            // Mostly plausible times, and the extremes a u64 timestamp allows.
            at: match index {
                0 => 0,
                1 => u64::MAX,
                _ => rng.up_to(4_000_000_000),
            },
        })
        .collect()
}

/// Describes a sample in a failure message, with what reproduces it.
fn describe(sample: &Sample, index: usize) -> String {
    format!(
        "sample {index} ({} bytes at {}, seed {SEED:#x})",
        sample.plaintext.len(),
        sample.at
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[test]
fn aeschat_tokens_decrypt_in_python() {
    if !oracle_available("aeschat_tokens_decrypt_in_python") {
        return;
    }
    let dir = ScratchDir::new("interop-to-python");
    let samples = samples(1);
    let mut requests = Vec::new();
    for (index, sample) in samples.iter().enumerate() {
        let key_file = dir.key_file(&format!("key{index}"), &sample.key);
        let at = sample.at.to_string();
        let output = run(
            ["encrypt", "--key-file", &key_file, "--at", &at],
            &sample.plaintext,
        )
        .success_text();
        let token = output.strip_suffix('\n').expect("a token and a newline");
        assert_eq!(token.len(), token_len(sample.plaintext.len()));
        requests.push(json!({
            "op": "decrypt",
            "key": sample.key.to_text().as_str(),
            "token": token,
        }));
    }
    for (index, (sample, answer)) in samples.iter().zip(ask_python(&requests)).enumerate() {
        let case = describe(sample, index);
        assert_eq!(answer["error"], Value::Null, "{case}: Python rejects it");
        assert_eq!(answer["timestamp"], json!(sample.at), "{case}: timestamp");
        assert!(
            answer["plaintext_hex"] == hex(&sample.plaintext).as_str(),
            "{case}: Python decrypts it to different bytes"
        );
    }
}

#[test]
fn python_tokens_decrypt_in_aeschat() {
    if !oracle_available("python_tokens_decrypt_in_aeschat") {
        return;
    }
    let dir = ScratchDir::new("interop-from-python");
    let samples = samples(2);
    let requests: Vec<Value> = samples
        .iter()
        .map(|sample| {
            json!({
                "op": "encrypt",
                "key": sample.key.to_text().as_str(),
                "plaintext_hex": hex(&sample.plaintext),
                "at": sample.at,
            })
        })
        .collect();
    for (index, (sample, answer)) in samples.iter().zip(ask_python(&requests)).enumerate() {
        let case = describe(sample, index);
        let token = answer["token"]
            .as_str()
            .unwrap_or_else(|| panic!("{case}: Python did not encrypt it: {answer}"));
        assert_eq!(
            verified_timestamp(&sample.key, token.as_bytes()),
            Ok(sample.at),
            "{case}"
        );
        let key_file = dir.key_file(&format!("key{index}"), &sample.key);
        let decrypted = run(
            ["decrypt", "--key-file", &key_file],
            format!("{token}\n").as_bytes(),
        );
        assert!(
            decrypted.success() == sample.plaintext,
            "{case}: aeschat decrypts it to different bytes"
        );
        // And with a time check, as of half a minute after the token was made.
        if let Some(now) = sample.at.checked_add(30) {
            let (ttl, now) = ("60".to_owned(), now.to_string());
            let args = [
                "decrypt",
                "--key-file",
                &key_file,
                "--ttl",
                &ttl,
                "--now",
                &now,
            ];
            assert!(
                run(args, token.as_bytes()).success() == sample.plaintext,
                "{case}: with --ttl"
            );
        }
    }
}

#[test]
fn rotated_tokens_decrypt_in_python_under_the_new_key_with_their_timestamp() {
    if !oracle_available("rotated_tokens_decrypt_in_python_under_the_new_key_with_their_timestamp")
    {
        return;
    }
    let dir = ScratchDir::new("interop-rotate");
    let mut rng = XorShift::new(SEED ^ 3);
    let new_key = rng.key();
    let new_file = dir.key_file("new", &new_key);
    let samples: Vec<Sample> = samples(3).into_iter().step_by(4).collect();
    let mut requests = Vec::new();
    for (index, sample) in samples.iter().enumerate() {
        let old_file = dir.key_file(&format!("old{index}"), &sample.key);
        let at = sample.at.to_string();
        let encrypted = run(
            ["encrypt", "--key-file", &old_file, "--at", &at],
            &sample.plaintext,
        );
        let token = encrypted.success();
        let rotated = run(
            ["rotate", "--key-file", &new_file, "--key-file", &old_file],
            &token,
        )
        .success_text();
        requests.push(json!({
            "op": "decrypt",
            "key": new_key.to_text().as_str(),
            "token": rotated.trim_end_matches('\n'),
        }));
    }
    for (index, (sample, answer)) in samples.iter().zip(ask_python(&requests)).enumerate() {
        let case = describe(sample, index);
        assert_eq!(answer["error"], Value::Null, "{case}: Python rejects it");
        assert_eq!(answer["timestamp"], json!(sample.at), "{case}: timestamp");
        assert!(
            answer["plaintext_hex"] == hex(&sample.plaintext).as_str(),
            "{case}: Python decrypts it to different bytes"
        );
    }
}
