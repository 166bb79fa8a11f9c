//! Golden transcripts: every byte of whole sessions with fixed nonces, IVs and times, pinned in
//! `vectors/sessions/*.json`. The tests rebuild both sides from the inputs in each file and
//! check that every frame they write is byte for byte the recorded one; play each side alone
//! against the other's recorded frames; and run `vectors/sessions/verify_transcript.py`, which
//! recomputes every byte from the published rules with Python's `hashlib`, `hmac` and
//! `cryptography`, independently of aeschat's code, and also forges records under the session
//! keys to reach checks an honest sender never triggers.
//!
//! Regenerate the files (only after a deliberate change to the wire format) with
//! `AESCHAT_WRITE_GOLDEN=1 cargo test -p aeschat-tests --test session_golden -- --ignored`.

use aeschat_tests::session_support;

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Command;

use aeschat_core::fernet::Key;
use aeschat_core::session::{
    record_frame_len, Action, Config, Engine, Error, FrameKind, Handshake, Incoming, Role, Secret,
};
use serde::{Deserialize, Serialize};
use session_support::{
    connect, frame_of, hex, seal_messages, unhex, Got, Message, OutcomeExt, OwnedFrame, Replay,
    Side,
};

// ---------------------------------------------------------------------------------------------
// The file format.

/// One golden session: its inputs, then every frame in the order written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Golden {
    description: String,
    /// "password" or "pre-shared key".
    mode: String,
    /// The password as text (its UTF-8 bytes are the secret), in password mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    /// The key as a 44-character Fernet key text, in pre-shared key mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    client: Endpoint,
    server: Endpoint,
    frames: Vec<GoldenFrame>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Endpoint {
    nonce_hex: String,
    /// Protocol 2: the 32 bytes this side's CPace scalar is sampled from (the draft's
    /// `sample_scalar`: top four bits of the last byte cleared, little-endian). The engine draws
    /// them from its generator right after the nonce.
    scalar_seed_hex: String,
    /// The hello's time, Unix seconds (0: no clock).
    time: u64,
    max_message_len: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GoldenFrame {
    /// "client" or "server".
    from: String,
    /// ClientHello, ServerHello, ClientFinished, ServerFinished or Record.
    kind: String,
    /// For a record: what it carries and the inputs that sealed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record: Option<RecordInputs>,
    /// The whole frame, header included.
    hex: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordInputs {
    /// "text" or "close".
    #[serde(rename = "type")]
    record_type: String,
    sequence: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    time: u64,
    iv_hex: String,
    /// The Fernet token, the frame's body.
    token: String,
}

fn side_from(name: &str) -> Side {
    match name {
        "client" => Side::Client,
        "server" => Side::Server,
        other => panic!("unknown side {other:?}"),
    }
}

fn kind_name(kind: FrameKind) -> &'static str {
    match kind {
        FrameKind::ClientHello => "ClientHello",
        FrameKind::ServerHello => "ServerHello",
        FrameKind::ClientFinished => "ClientFinished",
        FrameKind::ServerFinished => "ServerFinished",
        FrameKind::Record => "Record",
        FrameKind::Alert => "Alert",
        FrameKind::ClientShare => "ClientShare",
    }
}

fn nonce(hex_text: &str) -> [u8; 32] {
    unhex(hex_text).try_into().expect("a nonce is 32 bytes")
}

fn iv(hex_text: &str) -> [u8; 16] {
    unhex(hex_text).try_into().expect("an IV is 16 bytes")
}

// ---------------------------------------------------------------------------------------------
// The sessions pinned, as Rust inputs.

struct Spec {
    file: &'static str,
    description: &'static str,
    password: Option<&'static str>,
    key: Option<[u8; 32]>,
    client: (u8, u64, u32),
    server: (u8, u64, u32),
    /// (from, text or None for the close, time, IV byte)
    messages: Vec<(Side, Option<String>, u64, u8)>,
}

fn conversation(base: u64) -> Vec<(Side, Option<String>, u64, u8)> {
    vec![
        (Side::Client, Some("hi".into()), base + 10, 0x33),
        (Side::Server, Some("hello".into()), base + 11, 0x44),
        (
            Side::Client,
            Some("are the new keys working? \u{2713}".into()),
            base + 12,
            0x55,
        ),
        (
            Side::Server,
            Some("yes \u{2014} fresh salt, fresh keys, numbered records.".into()),
            base + 13,
            0x66,
        ),
        (Side::Client, None, base + 14, 0x77),
        (Side::Server, None, base + 15, 0x88),
    ]
}

fn specs() -> Vec<Spec> {
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    vec![
        Spec {
            file: "password.json",
            description: "Password mode: the parameters of docs/PROTOCOL.md section 13.1, two \
                          texts each way, then each side's close.",
            password: Some("correct horse battery staple"),
            key: None,
            client: (0x11, 1_700_000_000, 1000),
            server: (0x22, 1_700_000_003, 65_536),
            messages: conversation(1_700_000_000),
        },
        Spec {
            file: "psk.json",
            description: "Pre-shared key mode (key bytes 00..1f): the parameters of \
                          docs/PROTOCOL.md section 13.2, two texts each way, then each side's \
                          close.",
            password: None,
            key: Some(key),
            client: (0x11, 1_700_000_000, 1000),
            server: (0x22, 1_700_000_003, 65_536),
            messages: conversation(1_700_000_000),
        },
        Spec {
            file: "password_no_clock.json",
            description: "Password mode with a non-ASCII password (its UTF-8 bytes, not \
                          normalised), no clock on either side (time 0), a server that accepts \
                          only 64-byte messages, an empty text, and a text of exactly 64 bytes \
                          spanning several AES blocks.",
            password: Some("p\u{e4}ssw\u{f6}rd \u{1f511} \u{65e5}\u{672c}"),
            key: None,
            client: (0xA5, 0, 65_536),
            server: (0x5A, 0, 64),
            messages: vec![
                (Side::Client, Some(String::new()), 0, 0x01),
                (Side::Client, Some("x".repeat(64)), 0, 0x02),
                (Side::Server, Some("\u{e9}".repeat(500)), 0, 0x03),
                (Side::Server, Some(String::new()), 0, 0x04),
                (Side::Server, None, 0, 0x05),
                (Side::Client, None, 0, 0x06),
            ],
        },
    ]
}

/// The Rust inputs as the file's inputs, with no frames yet.
fn inputs_of(spec: &Spec) -> Golden {
    let endpoint = |(byte, time, max_message_len): (u8, u64, u32)| Endpoint {
        nonce_hex: hex(&[byte; 32]),
        scalar_seed_hex: hex(&[byte.wrapping_add(0x40); 32]),
        time,
        max_message_len,
    };
    let mut sequences = [0u64; 2];
    let frames = spec
        .messages
        .iter()
        .map(|(from, text, time, iv_byte)| {
            let counter = &mut sequences[usize::from(*from == Side::Server)];
            let sequence = *counter;
            *counter += 1;
            GoldenFrame {
                from: from.name().into(),
                kind: "Record".into(),
                record: Some(RecordInputs {
                    record_type: if text.is_some() { "text" } else { "close" }.into(),
                    sequence,
                    text: text.clone(),
                    time: *time,
                    iv_hex: hex(&[*iv_byte; 16]),
                    token: String::new(),
                }),
                hex: String::new(),
            }
        })
        .collect();
    Golden {
        description: spec.description.into(),
        mode: if spec.password.is_some() {
            "password"
        } else {
            "pre-shared key"
        }
        .into(),
        password: spec.password.map(Into::into),
        key: spec
            .key
            .map(|bytes| Key::from_bytes(bytes).to_text().as_str().to_owned()),
        client: endpoint(spec.client),
        server: endpoint(spec.server),
        frames,
    }
}

// ---------------------------------------------------------------------------------------------
// Rebuilding sides from a file's inputs.

/// The secret a file names, owned.
enum OwnedSecret {
    Password(Vec<u8>),
    Key(Key),
}

impl OwnedSecret {
    fn of(golden: &Golden) -> OwnedSecret {
        match (golden.mode.as_str(), &golden.password, &golden.key) {
            ("password", Some(password), None) => OwnedSecret::Password(password.as_bytes().into()),
            ("pre-shared key", None, Some(key)) => {
                OwnedSecret::Key(Key::parse(key.as_bytes()).expect("a valid key text"))
            }
            _ => panic!("mode {:?} does not match its secret", golden.mode),
        }
    }

    fn secret(&self) -> Secret<'_> {
        match self {
            OwnedSecret::Password(password) => Secret::Password(password),
            OwnedSecret::Key(key) => Secret::PreSharedKey(key),
        }
    }
}

fn handshake_for<'a>(golden: &Golden, secret: Secret<'a>, side: Side) -> Handshake<'a> {
    let (role, endpoint) = match side {
        Side::Client => (Role::Client, &golden.client),
        Side::Server => (Role::Server, &golden.server),
    };
    let config = Config::new(role, secret).with_max_message_len(endpoint.max_message_len as usize);
    Handshake::new(
        config,
        nonce(&endpoint.nonce_hex),
        nonce(&endpoint.scalar_seed_hex),
        Some(endpoint.time),
    )
}

/// The messages a file's record frames were sealed from.
fn messages_of(golden: &Golden) -> Vec<Message> {
    golden
        .frames
        .iter()
        .filter_map(|frame| {
            let record = frame.record.as_ref()?;
            Some(Message {
                from: side_from(&frame.from),
                text: record.text.clone(),
                time: record.time,
                iv: iv(&record.iv_hex),
            })
        })
        .collect()
}

/// Runs the whole session from a file's inputs (ignoring its frames' bytes) and fills in every
/// frame.
fn generate(inputs: &Golden) -> Golden {
    let owned = OwnedSecret::of(inputs);
    let secret = owned.secret();
    let outcome = connect(
        handshake_for(inputs, secret, Side::Client),
        handshake_for(inputs, secret, Side::Server),
    );
    // One golden frame per frame: the client's flight (ClientShare ‖ ClientFinished) is two.
    let mut frames: Vec<GoldenFrame> = outcome
        .wire
        .iter()
        .flat_map(|(side, bytes)| {
            split_frames(bytes).into_iter().map(|bytes| GoldenFrame {
                from: side.name().into(),
                kind: kind_name(frame_of(&bytes).kind).into(),
                record: None,
                hex: hex(&bytes),
            })
        })
        .collect();
    let (client, server) = outcome.sessions();
    let (mut client_tx, _) = client.split();
    let (mut server_tx, _) = server.split();
    let records = seal_messages(&mut client_tx, &mut server_tx, &messages_of(inputs));
    let record_frames = inputs.frames.iter().filter(|f| f.record.is_some());
    for (input, (side, bytes)) in record_frames.zip(records) {
        assert_eq!(input.from, side.name());
        let mut record = input.record.clone().expect("a record");
        record.token = String::from_utf8(frame_of(&bytes).body).expect("a token is ASCII");
        frames.push(GoldenFrame {
            from: side.name().into(),
            kind: "Record".into(),
            record: Some(record),
            hex: hex(&bytes),
        });
    }
    Golden {
        frames,
        ..inputs.clone()
    }
}

/// The whole frames in `bytes`, each as its own bytes.
fn split_frames(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let body = u32::from_be_bytes(bytes[at + 1..at + 5].try_into().unwrap()) as usize;
        frames.push(bytes[at..at + 5 + body].to_vec());
        at += 5 + body;
    }
    frames
}

fn render(golden: &Golden) -> String {
    let mut text = serde_json::to_string_pretty(golden).expect("serialises");
    text.push('\n');
    text
}

fn sessions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests package lives inside the workspace")
        .join("vectors")
        .join("sessions")
}

fn load(file: &str) -> (Golden, String) {
    let path = sessions_dir().join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let golden = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not a golden transcript: {e}", path.display()));
    (golden, text)
}

// ---------------------------------------------------------------------------------------------
// Tests.

/// Writes the golden files when `AESCHAT_WRITE_GOLDEN=1`; otherwise checks that writing them
/// would change nothing.
#[test]
#[ignore = "writes vectors/sessions/*.json: run with AESCHAT_WRITE_GOLDEN=1 and --ignored"]
fn write_golden_transcripts() {
    let write = std::env::var_os("AESCHAT_WRITE_GOLDEN").is_some_and(|v| v == "1");
    for spec in specs() {
        let text = render(&generate(&inputs_of(&spec)));
        let path = sessions_dir().join(spec.file);
        if write {
            std::fs::write(&path, text).unwrap();
            eprintln!("wrote {}", path.display());
        } else {
            let existing = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                existing == text,
                "{} is out of date: set AESCHAT_WRITE_GOLDEN=1 to rewrite it",
                path.display()
            );
        }
    }
}

#[test]
fn golden_files_are_exactly_what_the_pinned_inputs_produce() {
    for spec in specs() {
        let (_, text) = load(spec.file);
        let expected = render(&generate(&inputs_of(&spec)));
        if text != expected {
            let (golden, _) = load(spec.file);
            let regenerated: Golden = serde_json::from_str(&expected).unwrap();
            for (index, (recorded, now)) in
                golden.frames.iter().zip(&regenerated.frames).enumerate()
            {
                assert_eq!(recorded, now, "{}: frame {index} changed", spec.file);
            }
            panic!(
                "{} differs from what the core now writes (see the README to regenerate it \
                 after a deliberate change of the wire format)",
                spec.file
            );
        }
    }
}

#[test]
fn golden_files_cover_a_whole_session_in_both_modes() {
    let mut modes = Vec::new();
    for spec in specs() {
        let (golden, _) = load(spec.file);
        modes.push(golden.mode.clone());
        let shape: Vec<(&str, &str)> = golden
            .frames
            .iter()
            .take(5)
            .map(|f| (f.from.as_str(), f.kind.as_str()))
            .collect();
        assert_eq!(
            shape,
            [
                ("client", "ClientHello"),
                ("server", "ServerHello"),
                ("client", "ClientShare"),
                ("client", "ClientFinished"),
                ("server", "ServerFinished"),
            ],
            "{}",
            spec.file
        );
        for side in ["client", "server"] {
            let records: Vec<&RecordInputs> = golden
                .frames
                .iter()
                .filter(|f| f.from == side)
                .filter_map(|f| f.record.as_ref())
                .collect();
            let types: Vec<&str> = records.iter().map(|r| r.record_type.as_str()).collect();
            assert_eq!(types, ["text", "text", "close"], "{}: {side}", spec.file);
            let sequences: Vec<u64> = records.iter().map(|r| r.sequence).collect();
            assert_eq!(sequences, [0, 1, 2], "{}: {side}", spec.file);
        }
    }
    assert!(modes.iter().any(|m| m == "password"));
    assert!(modes.iter().any(|m| m == "pre-shared key"));
}

/// What an engine did until it needed input: what it transmitted, and what it handed up.
#[derive(Default)]
struct Pumped {
    transmitted: VecDeque<Vec<u8>>,
    received: VecDeque<Got>,
}

/// Polls `engine` on `input` until it needs more, running derivations and collecting what it
/// transmits and what it hands up. Panics on a failure.
fn pump(engine: &mut Engine<'_>, input: &mut Vec<u8>, pumped: &mut Pumped, case: &str) {
    loop {
        let step = engine.poll(input);
        let discard = step.discard;
        match step.action {
            // Frame by frame: protocol 2's client flight is two frames in one transmission.
            Action::Transmit(bytes) => pumped.transmitted.extend(split_frames(bytes)),
            Action::DeriveKeys => engine.derive_keys(),
            Action::NeedInput => {
                // A step that took a frame may still ask for more (protocol 2's server after
                // the ClientShare): its discard counts too.
                input.drain(..discard);
                return;
            }
            Action::Established => {}
            Action::Text(text) => pumped.received.push_back(Got::Text(text.to_vec())),
            Action::Closed => {
                pumped.received.push_back(Got::Closed);
                input.drain(..discard);
                return;
            }
            Action::Failed(error) => panic!("{case}: {error}"),
        }
        input.drain(..discard);
    }
}

/// Plays `side` alone, as an engine, against the other side's recorded frames: everything it
/// transmits must be the recorded bytes, and everything it receives must open to the recorded
/// content. Its generator replays the recorded nonce and scalar seed, then the recorded IVs of
/// its records.
fn play_against_recording(golden: &Golden, file: &str, side: Side) {
    let owned = OwnedSecret::of(golden);
    let handshake = handshake_for(golden, owned.secret(), side);
    let endpoint = match side {
        Side::Client => &golden.client,
        Side::Server => &golden.server,
    };
    let mut rng =
        Replay::new([nonce(&endpoint.nonce_hex), nonce(&endpoint.scalar_seed_hex)].concat());
    for recorded in &golden.frames {
        if let (Some(record), true) = (&recorded.record, side_from(&recorded.from) == side) {
            rng.push(&iv(&record.iv_hex));
        }
    }
    let mut engine = Engine::new(*handshake.config(), &mut rng, Some(endpoint.time));
    let mut input = Vec::new();
    let mut pumped = Pumped::default();
    for (index, recorded) in golden.frames.iter().enumerate() {
        let bytes = unhex(&recorded.hex);
        let case = format!(
            "{file}: {} plays frame {index} ({})",
            side.name(),
            recorded.kind
        );
        match (&recorded.record, side_from(&recorded.from) == side) {
            (None, true) => {
                if pumped.transmitted.is_empty() {
                    pump(&mut engine, &mut input, &mut pumped, &case);
                }
                let written = pumped.transmitted.pop_front().expect("a frame written");
                assert_eq!(hex(&written), recorded.hex, "{case}");
            }
            (None, false) => {
                input.extend_from_slice(&bytes);
                pump(&mut engine, &mut input, &mut pumped, &case);
            }
            (Some(record), true) => {
                assert!(
                    engine.is_established(),
                    "{case}: established before any record"
                );
                let sender = engine.sender().expect("established");
                let len = record.text.as_deref().map_or(0, str::len);
                let mut out = vec![0u8; record_frame_len(len)];
                let sealed = match &record.text {
                    Some(text) => {
                        sender.seal_text(text.as_bytes(), &mut rng, Some(record.time), &mut out)
                    }
                    None => sender.seal_close(&mut rng, Some(record.time), &mut out),
                };
                assert_eq!(hex(sealed.unwrap()), recorded.hex, "{case}");
            }
            (Some(record), false) => {
                assert_eq!(
                    frame_of(&bytes).body,
                    record.token.as_bytes(),
                    "{case}: token field"
                );
                input.extend_from_slice(&bytes);
                pump(&mut engine, &mut input, &mut pumped, &case);
                let expected = match &record.text {
                    Some(text) => Got::Text(text.as_bytes().to_vec()),
                    None => {
                        assert_eq!(record.record_type, "close", "{case}");
                        Got::Closed
                    }
                };
                assert_eq!(pumped.received.pop_front(), Some(expected), "{case}");
            }
        }
    }
    assert!(
        pumped.transmitted.is_empty(),
        "{file}: nothing written beyond the recording"
    );
    assert!(
        pumped.received.is_empty(),
        "{file}: nothing received beyond the recording"
    );
    assert!(input.is_empty(), "{file}: every byte taken");
    assert_eq!(
        rng.remaining(),
        0,
        "{file}: the recorded nonce and IVs, all of them drawn"
    );
    assert_eq!(
        engine.end_of_stream(),
        Error::SessionEnded,
        "{file}: the peer closed"
    );
}

#[test]
fn a_fresh_server_fed_the_recorded_client_frames_writes_the_recorded_server_frames() {
    for spec in specs() {
        let (golden, _) = load(spec.file);
        play_against_recording(&golden, spec.file, Side::Server);
    }
}

#[test]
fn a_fresh_client_fed_the_recorded_server_frames_writes_the_recorded_client_frames() {
    for spec in specs() {
        let (golden, _) = load(spec.file);
        play_against_recording(&golden, spec.file, Side::Client);
    }
}

#[test]
fn every_recorded_frame_is_a_well_formed_frame_of_its_stated_kind() {
    for spec in specs() {
        let (golden, _) = load(spec.file);
        for (index, recorded) in golden.frames.iter().enumerate() {
            let OwnedFrame { kind, body } = frame_of(&unhex(&recorded.hex));
            assert_eq!(
                kind_name(kind),
                recorded.kind,
                "{}: frame {index}",
                spec.file
            );
            if let Some(record) = &recorded.record {
                assert_eq!(
                    body,
                    record.token.as_bytes(),
                    "{}: frame {index}",
                    spec.file
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The independent check in Python.

fn verifier() -> PathBuf {
    sessions_dir().join("verify_transcript.py")
}

/// Whether python3 with `cryptography` can run. Under CI (`CI` set) its absence fails the test;
/// elsewhere the test is skipped with the reason on stderr.
fn python_available(test: &str) -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import cryptography.fernet, hashlib, hmac"])
        .output();
    let reason = match probe {
        Ok(output) if output.status.success() => return true,
        Ok(output) => format!(
            "python3 cannot import cryptography ({})",
            String::from_utf8_lossy(&output.stderr).trim()
        ),
        Err(err) => format!("python3 cannot be run ({err})"),
    };
    if std::env::var_os("CI").is_some() {
        panic!("{test}: {reason}. CI must provide python3 with `pip install cryptography`.");
    }
    eprintln!("skipping {test}: {reason}; install python3 and `pip install cryptography`");
    false
}

fn run_verifier(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new("python3")
        .arg(verifier())
        .args(args)
        .output()
        .expect("cannot run python3")
}

#[test]
fn python_recomputes_every_byte_of_the_golden_transcripts_from_the_published_rules() {
    if !python_available("python_recomputes_every_byte_of_the_golden_transcripts") {
        return;
    }
    let paths: Vec<PathBuf> = specs()
        .iter()
        .map(|s| sessions_dir().join(s.file))
        .collect();
    let args: Vec<&std::ffi::OsStr> = paths.iter().map(|p| p.as_os_str()).collect();
    let output = run_verifier(&args);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the verifier rejects the transcripts:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for spec in specs() {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with("ok") && l.contains(spec.file)),
            "no verdict for {}:\n{stdout}",
            spec.file
        );
    }
}

#[test]
fn python_verifier_rejects_a_transcript_with_any_recorded_value_changed() {
    if !python_available("python_verifier_rejects_a_transcript_with_any_recorded_value_changed") {
        return;
    }
    let (golden, _) = load("password.json");
    let scratch = std::env::temp_dir().join(format!("aeschat-golden-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    // Each change must be caught: a flipped bit in each frame, and each kind of input.
    let mut variants: Vec<(String, Golden)> = Vec::new();
    for index in 0..golden.frames.len() {
        let mut changed = golden.clone();
        let mut bytes = unhex(&changed.frames[index].hex);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        changed.frames[index].hex = hex(&bytes);
        variants.push((format!("frame {index}"), changed));
    }
    let mut changed = golden.clone();
    changed.password = Some("correct horse battery stapler".into());
    variants.push(("password".into(), changed));
    let mut changed = golden.clone();
    let mut seed = unhex(&changed.client.scalar_seed_hex);
    seed[0] ^= 1;
    changed.client.scalar_seed_hex = hex(&seed);
    variants.push(("client's scalar seed".into(), changed));
    let mut changed = golden.clone();
    changed.server.time += 1;
    variants.push(("server time".into(), changed));
    let mut changed = golden.clone();
    changed.frames[5].record.as_mut().unwrap().text = Some("hj".into());
    variants.push(("record text".into(), changed));
    let mut changed = golden.clone();
    changed.frames.swap(5, 7);
    variants.push(("two client records swapped".into(), changed));
    let mut changed = golden.clone();
    changed.frames.remove(9);
    variants.push(("the client's close dropped".into(), changed));
    for (what, variant) in variants {
        let path = scratch.join("variant.json");
        std::fs::write(&path, render(&variant)).unwrap();
        let output = run_verifier(&[path.as_os_str()]);
        assert!(
            !output.status.success(),
            "the verifier accepts a transcript with the {what} changed"
        );
    }
    let path = scratch.join("unchanged.json");
    std::fs::write(&path, render(&golden)).unwrap();
    assert!(
        run_verifier(&[path.as_os_str()]).status.success(),
        "the control"
    );
    std::fs::remove_dir_all(&scratch).ok();
}

/// A record forged by the Python verifier under a golden session's keys.
#[derive(Deserialize)]
struct Forged {
    case: String,
    /// "client" or "server": who the forgery pretends to be.
    from: String,
    hex: String,
}

#[test]
fn authentic_records_an_honest_sender_never_writes_are_refused() {
    if !python_available("authentic_records_an_honest_sender_never_writes_are_refused") {
        return;
    }
    for file in ["password.json", "psk.json"] {
        let (golden, _) = load(file);
        let output = run_verifier(&["--forge".as_ref(), sessions_dir().join(file).as_os_str()]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let forged: Vec<Forged> = serde_json::from_slice(&output.stdout).expect("JSON");
        let client_limit = golden.client.max_message_len as usize;
        let expected = |case: &str| -> Result<Option<Vec<u8>>, Error> {
            match case {
                // The control: Python's keys are the session's keys.
                "valid text" => Ok(Some(b"forged by python".to_vec())),
                "valid close" => Ok(None),
                "text at the receiver's limit" => Ok(Some(vec![b'L'; client_limit])),
                "timestamp u64::MAX" => Ok(Some(b"times are not checked".to_vec())),
                "text over the receiver's limit" => Err(Error::UnexpectedMessage),
                "plaintext shorter than a record header" => Err(Error::UnexpectedMessage),
                "empty plaintext" => Err(Error::UnexpectedMessage),
                "close with a body" => Err(Error::UnexpectedMessage),
                "unknown record type 0" => Err(Error::UnexpectedMessage),
                "unknown record type 3" => Err(Error::UnexpectedMessage),
                "sequence number 1 first" => Err(Error::RecordOutOfOrder {
                    expected: 0,
                    received: 1,
                }),
                "sequence number u64::MAX" => Err(Error::RecordOutOfOrder {
                    expected: 0,
                    received: u64::MAX,
                }),
                "token without its padding" => Err(Error::RecordRejected),
                "token in standard base64" => Err(Error::RecordRejected),
                "token with a trailing newline" => Err(Error::RecordRejected),
                "token under the other direction's key" => Err(Error::RecordRejected),
                other => panic!("unexpected case {other:?}"),
            }
        };
        assert!(
            forged.len() >= 16,
            "{file}: only {} forgeries",
            forged.len()
        );
        for forgery in forged {
            let owned = OwnedSecret::of(&golden);
            let outcome = connect(
                handshake_for(&golden, owned.secret(), Side::Client),
                handshake_for(&golden, owned.secret(), Side::Server),
            );
            let (client, server) = outcome.sessions();
            let mut rx = match side_from(&forgery.from) {
                Side::Client => server.split().1,
                Side::Server => client.split().1,
            };
            let mut bytes = unhex(&forgery.hex);
            let len = bytes.len();
            // The receiver finds the frame where it lies and opens it in place.
            let received = rx.poll(&mut bytes);
            assert_eq!(
                received.discard, len,
                "{file}: {}: one whole frame",
                forgery.case
            );
            let result = received
                .result
                .map(|incoming| match incoming.expect("a whole frame") {
                    Incoming::Text(text) => Some(text.to_vec()),
                    Incoming::Closed => None,
                });
            assert_eq!(result, expected(&forgery.case), "{file}: {}", forgery.case);
        }
    }
}
