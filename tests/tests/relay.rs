//! `aeschat relay` and `aeschat client --relay`, as people use them: two real clients, neither
//! of which listens, meet at a real relay by a code and chat; the relay's log and what it
//! forwards hold neither the messages nor the code; a third person, a wrong code, a relay that
//! flips or drops bytes, many rooms at once, junk, floods and a reader that never reads.
//!
//! Every wait has a deadline; every relay listens on port 0, so the tests run in parallel.

use std::io::{Read, Write};
use std::thread;
use std::time::Duration;

use aeschat_core::relay::{Answer, Hello, RELAY_MESSAGE_LEN};
use aeschat_tests::chat_support::Peer;
use aeschat_tests::cli_support::XorShift;
use aeschat_tests::relay_support::*;

/// An opener and a joiner that have met at `relay` and completed the handshake.
fn met(relay: &str) -> (Peer, Peer, String) {
    let opener = start_opener("opener", relay, &[]);
    let code = printed_code(&opener);
    let joiner = start_joiner("joiner", relay, &code);
    opener.wait_stderr("[+] Connected to the other person through the relay");
    joiner.wait_stderr("[+] Connected to the other person through the relay");
    (opener, joiner, code)
}

/// Every line the relay printed, with digits made `#`: what is left must be one of its fixed
/// lines, so no address of a client, room number, code or content can be in it.
fn assert_log_holds_counts_only(relay: &Peer) {
    let allowed_starts = [
        "[!] Only # open files are allowed (ulimit -n): at most # connections instead of #",
        "[*] Relay listening on #.#.#.#:#",
        "[*] Limits: # rooms and # connections a minute per address, # connections in all; \
         rooms wait # s, silent pairs are cut after # s. Logged: counts only.",
        "[*] # rooms waiting, # pairs forwarding (# KiB of buffers), # connections open; since \
         start: connections # (accept failures #); rooms opened #, expired #; pairs made #, \
         ended # (cut for errors #, idle #); refused: busy #, rate #, rooms per source #, bad \
         hello #, no such room #, room full #; hung up before a hello #, hello timeouts #",
    ];
    let log = relay.stderr_text();
    for line in log.lines() {
        let mut shape = String::new();
        for c in line.chars() {
            if c.is_ascii_digit() {
                if !shape.ends_with('#') {
                    shape.push('#');
                }
            } else {
                shape.push(c);
            }
        }
        assert!(
            allowed_starts.contains(&shape.as_str()),
            "the relay logged a line of another shape: {line:?}"
        );
    }
}

#[test]
fn two_clients_that_only_dial_out_chat_through_the_relay_which_sees_no_secret() {
    let (relay, relay_address) = start_relay(&["--stats-every", "1"]);
    // Each client reaches the relay through a recording proxy: what the relay receives and
    // sends, byte for byte.
    let opener_view = Proxy::start(&relay_address);
    let joiner_view = Proxy::start(&relay_address);
    let mut opener = start_opener("opener", &opener_view.address, &[]);
    let code = printed_code(&opener);
    assert!(code.split('-').count() == 4, "room + 3 words: {code}");
    let mut joiner = start_joiner("joiner", &joiner_view.address, &code);
    opener.wait_stderr("[+] Connected to the other person through the relay");
    joiner.wait_stderr("[+] Connected to the other person through the relay");

    let from_joiner = "the eagle lands at noon, bring the blue umbrella";
    let from_opener = "understood: noon, blue umbrella, north gate";
    joiner.type_line(from_joiner);
    opener.wait_stdout_line(&format!("[Peer]: {from_joiner}"));
    opener.type_line(from_opener);
    joiner.wait_stdout_line(&format!("[Peer]: {from_opener}"));
    opener.type_line("/quit");
    joiner.wait_stderr("[-] Peer left");
    opener.assert_exit(0);
    joiner.assert_exit(0);
    // A stats line after the pair ended, so the log covers the whole session.
    relay.wait_stderr("0 pairs forwarding");

    let seen = [opener_view.all_bytes(), joiner_view.all_bytes()].concat();
    assert!(seen.len() > 500, "the proxies recorded the session");
    let contains = |needle: &[u8]| seen.windows(needle.len()).any(|window| window == needle);
    for secret in [
        from_joiner,
        from_opener,
        "umbrella",
        "eagle lands",
        code.as_str(),
    ] {
        assert!(
            !contains(secret.as_bytes()),
            "{secret:?} passed the relay in the clear"
        );
    }
    // No word of the code (those long enough not to turn up in base64 by chance).
    for word in code.split('-').skip(1).filter(|word| word.len() >= 5) {
        assert!(
            !contains(word.as_bytes()),
            "the code word {word:?} passed the relay"
        );
    }
    assert_log_holds_counts_only(&relay);
    let log = relay.stderr_text();
    for secret in [from_joiner, "umbrella", code.as_str()] {
        assert!(!log.contains(secret), "the relay logged {secret:?}");
    }
}

#[test]
fn a_third_person_is_refused_from_a_full_room() {
    let (_relay, relay_address) = start_relay(&[]);
    let (mut opener, mut joiner, code) = met(&relay_address);
    let room: u32 = code.split('-').next().unwrap().parse().unwrap();

    let mut third = start_joiner("third", &relay_address, &code);
    assert_eq!(third.wait_exit(), 1, "{}", third.transcript());
    assert!(
        third
            .wait_error_line()
            .contains("two people are already in this code's room"),
        "{}",
        third.transcript()
    );
    let (_, answer) = say_hello(&relay_address, Hello::Join { room });
    assert_eq!(answer, Some(Answer::RoomFull));

    // The two in the room did not notice.
    opener.type_line("still here?");
    joiner.wait_stdout_line("[Peer]: still here?");
    joiner.type_line("/quit");
    opener.assert_exit(0);
    joiner.assert_exit(0);
}

#[test]
fn a_wrong_code_fails_once_on_both_sides_and_burns_the_room() {
    let (_relay, relay_address) = start_relay(&[]);
    let mut opener = start_opener("opener", &relay_address, &[]);
    let code = printed_code(&opener);
    // The right room, one word changed: a guess.
    let mut words: Vec<&str> = code.split('-').collect();
    words[3] = if words[3] == "apple" {
        "amber"
    } else {
        "apple"
    };
    let guess = words.join("-");
    let mut guesser = start_joiner("guesser", &relay_address, &guess);

    assert_eq!(guesser.wait_exit(), 3, "{}", guesser.transcript());
    assert_eq!(opener.wait_exit(), 3, "{}", opener.transcript());
    for side in [&opener, &guesser] {
        let error = side.wait_error_line();
        assert!(error.contains("the code did not match"), "{error}");
        assert!(error.contains("The room is used up"), "{error}");
        assert!(!side.stderr_text().contains("[+] Connected"));
    }
    // The room is gone: the right code now finds nothing, so a guesser had one try.
    let mut late = start_joiner("late", &relay_address, &code);
    assert_eq!(late.wait_exit(), 1);
    assert!(
        late.wait_error_line()
            .contains("no room has this code's number"),
        "{}",
        late.transcript()
    );
}

#[test]
fn typos_in_a_code_are_named_before_anything_goes_to_the_relay() {
    let (relay, relay_address) = start_relay(&["--stats-every", "1"]);
    for (typed, expected) in [
        (
            "417-ambr-coast-apple",
            "\"ambr\", is not in aeschat's word list (did you mean \"amber\"?)",
        ),
        (
            "amber-coast-apple-lake",
            "a code starts with its room number",
        ),
        (
            "417-amber",
            "has 1 words after its room number; a code has at least 3",
        ),
    ] {
        let mut joiner = start_joiner("joiner", &relay_address, typed);
        assert_eq!(joiner.wait_exit(), 2, "{}", joiner.transcript());
        let error = joiner.wait_error_line();
        assert!(error.contains(expected), "{typed}: {error}");
        assert!(!joiner.stderr_text().contains("Connecting to the relay"));
    }
    relay.wait_stderr("connections 0 ");
}

#[test]
fn a_room_nobody_joins_expires_and_the_opener_is_told() {
    let (_relay, relay_address) = start_relay(&["--room-timeout", "1"]);
    let mut opener = start_opener("opener", &relay_address, &[]);
    let code = printed_code(&opener);
    assert_eq!(opener.wait_exit(), 1);
    assert!(opener
        .wait_error_line()
        .contains("nobody joined the room before the relay closed it"));
    let mut late = start_joiner("late", &relay_address, &code);
    assert_eq!(late.wait_exit(), 1);
    assert!(late
        .wait_error_line()
        .contains("no room has this code's number"));
}

#[test]
fn a_relay_that_flips_a_bit_in_the_handshake_is_caught_on_both_sides() {
    let (_relay, relay_address) = start_relay(&[]);
    let mut opener = start_opener("opener", &relay_address, &[]);
    let code = printed_code(&opener);
    let proxy = Proxy::start(&relay_address);
    // The relay's answer comes first; 20 bytes further is inside the opener's hello.
    proxy.tamper_at(Tamper::Flip, RELAY_MESSAGE_LEN + 20);
    let mut joiner = start_joiner("joiner", &proxy.address, &code);
    let joiner_status = joiner.wait_exit();
    let opener_status = opener.wait_exit();
    assert_ne!(joiner_status, 0, "{}", joiner.transcript());
    assert_ne!(opener_status, 0, "{}", opener.transcript());
    assert!(!joiner.stderr_text().contains("[+] Connected"));
    assert!(!opener.stderr_text().contains("[+] Connected"));
    for error in [joiner.wait_error_line(), opener.wait_error_line()] {
        assert!(
            error.starts_with("aeschat: Authentication failed: the code did not match")
                && error.contains("or the relay tampered with the connection"),
            "{error}"
        );
    }
}

/// After the handshake: a flipped bit or missing bytes in a message are caught by the
/// receiver, which says so and prints nothing of it.
#[test]
fn a_relay_that_flips_or_drops_bytes_in_a_message_is_caught() {
    for tamper in [Tamper::Flip, Tamper::Drop] {
        let (_relay, relay_address) = start_relay(&[]);
        let mut opener = start_opener("opener", &relay_address, &[]);
        let code = printed_code(&opener);
        let proxy = Proxy::start(&relay_address);
        let mut joiner = start_joiner("joiner", &proxy.address, &code);
        opener.wait_stderr("[+] Connected");
        joiner.wait_stderr("[+] Connected");
        // Inside the next record towards the joiner: the handshake is all through.
        proxy.tamper_at(tamper, proxy.sent_to_client() + 30);
        opener.type_line("first message, tampered with on the way");
        // Missing bytes leave the frame short: the next message (or the end) shows it.
        opener.type_line("second message");
        opener.close_stdin();
        let status = joiner.wait_exit();
        assert_ne!(status, 0, "{tamper:?}: {}", joiner.transcript());
        let error = joiner.wait_error_line();
        assert!(
            error.starts_with("aeschat: A message failed authentication: it was altered"),
            "{tamper:?}: {error}"
        );
        assert!(
            !String::from_utf8_lossy(&joiner.stdout()).contains("first message"),
            "{tamper:?}: a tampered message was shown\n{}",
            joiner.transcript()
        );
        opener.kill();
    }
}

#[test]
fn many_rooms_wait_and_many_pairs_forward_at_once_without_mixing_bytes() {
    let (relay, relay_address) = start_relay(&[
        "--max-rooms-per-source",
        "10000",
        "--connections-per-minute",
        "100000",
        "--stats-every",
        "1",
    ]);
    let waiting: Vec<_> = (0..500).map(|_| open_room(&relay_address)).collect();
    let mut rooms: Vec<u32> = waiting.iter().map(|(_, room)| *room).collect();
    rooms.sort_unstable();
    rooms.dedup();
    assert_eq!(rooms.len(), 500, "room numbers are distinct");

    let pairs: Vec<_> = (0..50).map(|_| raw_pair(&relay_address)).collect();
    let workers: Vec<_> = pairs
        .into_iter()
        .enumerate()
        .map(|(index, (mut opener, mut joiner, _))| {
            thread::spawn(move || {
                let mut random = XorShift::new(index as u64 + 1);
                let sent: Vec<u8> = (0..100_000).map(|_| random.next_u64() as u8).collect();
                let mut writer = joiner.try_clone().unwrap();
                let to_send = sent.clone();
                let sending = thread::spawn(move || writer.write_all(&to_send).unwrap());
                let mut got = vec![0u8; sent.len()];
                opener.read_exact(&mut got).unwrap();
                sending.join().unwrap();
                assert!(got == sent, "pair {index} got other bytes than were sent");
                // And back, then both close.
                opener.write_all(&got[..1000]).unwrap();
                let mut back = vec![0u8; 1000];
                joiner.read_exact(&mut back).unwrap();
                assert_eq!(back, sent[..1000]);
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    // Every pair ended when its test thread closed it; the rooms still wait.
    let line = relay.wait_stderr("pairs made 50, ended 50");
    assert!(
        line.contains("500 rooms waiting, 0 pairs forwarding"),
        "{line}"
    );
    // Real clients still meet while all that is open.
    let (mut opener, mut joiner, _) = met(&relay_address);
    opener.type_line("through a busy relay");
    joiner.wait_stdout_line("[Peer]: through a busy relay");
    joiner.type_line("/quit");
    opener.assert_exit(0);
    joiner.assert_exit(0);
    drop(waiting);
}

#[test]
fn junk_half_hellos_and_wrong_versions_are_refused_and_the_relay_goes_on() {
    // Junk that happens to stop inside a valid start waits for the hello timeout: 1 s here.
    let (mut relay, relay_address) = start_relay(&[
        "--connections-per-minute",
        "100000",
        "--hello-timeout",
        "1",
        "--stats-every",
        "1",
    ]);
    let mut random = XorShift::new(7);
    for round in 0..300 {
        let mut stream = dial(&relay_address);
        let length = (random.next_u64() % 200) as usize + 1;
        let mut junk: Vec<u8> = (0..length).map(|_| random.next_u64() as u8).collect();
        if round % 3 == 0 {
            // Starts like a hello, then goes wrong.
            let good = Hello::Join { room: 5 }.to_bytes();
            let keep = round % RELAY_MESSAGE_LEN;
            junk.splice(0..0, good[..keep].iter().copied());
        }
        // The relay may close mid-write: that is a refusal too.
        let _ = stream.write_all(&junk);
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        if !answer.is_empty() {
            let parsed = Answer::parse(&answer);
            assert!(
                matches!(parsed, Ok(answer) if answer.is_refusal()),
                "junk was answered {parsed:?}"
            );
        }
    }
    let mut future = Hello::Open.to_bytes();
    future[8] = 9;
    let mut stream = dial(&relay_address);
    stream.write_all(&future).unwrap();
    assert_eq!(
        read_answer(&mut stream),
        Some(Answer::UnsupportedVersion { version: 1 })
    );
    // A waiting opener that speaks before it is paired is refused and its room closed.
    let (mut early, room) = open_room(&relay_address);
    early.write_all(b"too soon").unwrap();
    assert_eq!(read_answer(&mut early), Some(Answer::BadHello));
    let (_, answer) = say_hello(&relay_address, Hello::Join { room });
    assert_eq!(answer, Some(Answer::NoSuchRoom));

    assert!(relay.is_running(), "{}", relay.transcript());
    let (mut opener, mut joiner, _) = raw_pair(&relay_address);
    joiner.write_all(b"ping").unwrap();
    let mut got = [0u8; 4];
    opener.read_exact(&mut got).unwrap();
    assert_eq!(&got, b"ping");
    relay.wait_stderr("since start");
    assert_log_holds_counts_only(&relay);
}

#[test]
fn floods_from_one_address_are_limited_and_others_are_not() {
    let (mut relay, relay_address) = start_relay(&[
        "--connections-per-minute",
        "20",
        "--max-rooms-per-source",
        "3",
    ]);
    let rooms: Vec<_> = (0..3).map(|_| open_room(&relay_address)).collect();
    let (_, answer) = say_hello(&relay_address, Hello::Open);
    assert!(
        matches!(answer, Some(Answer::RateLimited { .. })),
        "a fourth room was answered {answer:?}"
    );
    // Connections beyond the allowance are refused at once, with the time to wait.
    let mut limited = 0;
    for _ in 0..40 {
        let mut stream = dial(&relay_address);
        let _ = stream.write_all(&Hello::Join { room: 1 }.to_bytes());
        if let Some(Answer::RateLimited { retry_after }) = read_answer(&mut stream) {
            assert!((1..=60).contains(&retry_after));
            limited += 1;
        }
    }
    assert!(limited >= 20, "only {limited} of 40 were limited");
    // Another address is not held back by the first one's flood: it opens a room, and a
    // third address joins it.
    let mut other = dial_from(2, &relay_address);
    other.write_all(&Hello::Open.to_bytes()).unwrap();
    let Some(Answer::Waiting { room }) = read_answer(&mut other) else {
        panic!("another address could not open a room");
    };
    let mut third = dial_from(3, &relay_address);
    third.write_all(&Hello::Join { room }.to_bytes()).unwrap();
    assert_eq!(
        read_answer(&mut third),
        Some(Answer::PairedAsClient { room })
    );
    assert!(relay.is_running());
    drop(rooms);
}

/// A reader that never reads cannot make the relay buffer: the writer is held back by TCP
/// once the relay's fixed buffer and the sockets' own are full, and the relay's memory stays
/// where it was.
#[test]
fn a_reader_that_never_reads_cannot_make_the_relay_buffer() {
    let (relay, relay_address) = start_relay(&[]);
    let (opener, mut joiner, _) = raw_pair(&relay_address);
    settle();
    let before = resident_kib(relay.pid());
    joiner
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    let mut written: usize = 0;
    // Writes until the relay stops taking bytes (a write times out), or 256 MiB.
    while written < 256 << 20 {
        match joiner.write(&chunk) {
            Ok(count) => written += count,
            Err(_) => break,
        }
    }
    let after = resident_kib(relay.pid());
    assert!(
        written < 64 << 20,
        "the relay took {written} bytes for a reader that never reads"
    );
    assert!(
        after < before + 4 * 1024,
        "the relay grew from {before} KiB to {after} KiB"
    );
    drop(opener);
}

#[test]
fn a_new_code_is_three_words_without_a_warning_and_can_be_typed_at_the_prompt() {
    let (_relay, relay_address) = start_relay(&[]);
    let mut opener = start_opener("opener", &relay_address, &[]);
    let code = printed_code(&opener);
    assert_eq!(code.split('-').count(), 4, "room + 3 words: {code}");
    let advice = opener.wait_stderr("bits of entropy");
    assert!(advice.contains("27 bits of entropy"), "{advice}");
    assert!(advice.contains("gets one try"), "{advice}");

    // `--code` without a value: the first line of standard input is the code, the rest chat.
    let args = ["client", "--relay", relay_address.as_str(), "--code"];
    let mut joiner = Peer::spawn("joiner", &args, &[]);
    joiner.type_line(&format!("  {}  ", code.to_uppercase().replace('-', " ")));
    joiner.type_line("typed after the code");
    opener.wait_stdout_line("[Peer]: typed after the code");
    opener.type_line("/quit");
    opener.assert_exit(0);
    joiner.assert_exit(0);
    // Protocol 2 needs no long code: nothing warns about this one.
    assert!(
        !opener.stderr_text().contains("warning"),
        "{}",
        opener.stderr_text()
    );
}

#[test]
fn a_silent_pair_is_cut_after_the_idle_timeout_and_the_room_freed() {
    let (relay, relay_address) = start_relay(&["--idle-timeout", "1", "--stats-every", "1"]);
    let (mut opener, mut joiner, room) = raw_pair(&relay_address);
    joiner.write_all(b"one exchange, then silence").unwrap();
    let mut got = [0u8; 26];
    opener.read_exact(&mut got).unwrap();
    // Both ends see the relay close (a read returns the end of stream, not the 30 s timeout).
    let mut rest = Vec::new();
    assert_eq!(opener.read_to_end(&mut rest).unwrap(), 0);
    assert_eq!(joiner.read_to_end(&mut rest).unwrap(), 0);
    let (_, answer) = say_hello(&relay_address, Hello::Join { room });
    assert_eq!(answer, Some(Answer::NoSuchRoom));
    relay.wait_stderr("idle 1)");
}

#[test]
fn relay_and_client_help_show_the_relay_options_with_examples() {
    use aeschat_tests::cli_support::run;
    let help = run(["relay", "--help"], b"").success_text();
    for needle in [
        "--listen",
        "--max-rooms-per-source",
        "--connections-per-minute",
        "--max-connections",
        "--room-timeout",
        "--idle-timeout",
        "Examples:",
        "  aeschat relay",
    ] {
        assert!(
            help.contains(needle),
            "`relay --help` lacks {needle}:\n{help}"
        );
    }
    let help = run(["client", "--help"], b"").success_text();
    for needle in [
        "--relay",
        "--code",
        "--code-words",
        "aeschat client --relay",
    ] {
        assert!(
            help.contains(needle),
            "`client --help` lacks {needle}:\n{help}"
        );
    }
    // The code is the password: no other secret goes with --relay, and --code needs --relay.
    run(["client", "--relay", "x:1", "--password-file", "p"], b"").usage_error();
    run(["client", "--code", "417-amber-coast-apple"], b"").usage_error();
    run(["client", "--relay", "x:1", "--code-words", "2"], b"").usage_error();
}

#[test]
fn a_half_hello_times_out_and_a_room_whose_opener_left_is_gone() {
    let (relay, relay_address) = start_relay(&["--hello-timeout", "1", "--stats-every", "1"]);
    let mut half = dial(&relay_address);
    half.write_all(b"aeschRL").unwrap();
    let mut rest = Vec::new();
    // Closed without an answer once the hello's time is up (not after the 30 s read timeout).
    assert_eq!(half.read_to_end(&mut rest).unwrap(), 0);
    relay.wait_stderr("hello timeouts 1");

    let (opener, room) = open_room(&relay_address);
    drop(opener);
    let line = relay.wait_stderr("0 rooms waiting, 0 pairs forwarding (0 KiB of buffers), 0 connections open; since start: connections 2 (accept failures 0); rooms opened 1");
    assert!(line.contains("rooms opened 1"), "{line}");
    let (_, answer) = say_hello(&relay_address, Hello::Join { room });
    assert_eq!(answer, Some(Answer::NoSuchRoom));
}

/// A relay that plays the other person itself: it answers the opener as a relay would, then
/// runs the handshake as the joiner with `guess` as the code. What a hostile relay operator
/// can do with a room; returns the opener and the relay's own handshake result.
fn relay_posing_as_the_joiner(
    guess: impl FnOnce(&str) -> String,
) -> (Peer, Result<(), aeschat_core::session::Error>) {
    use aeschat_core::session::{Role, Secret, SessionError};
    use aeschat_tests::load_support::TestPeer;
    use std::net::TcpListener;

    let hostile = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = hostile.local_addr().unwrap().to_string();
    let opener = start_opener("opener", &address, &[]);
    let (mut stream, _) = hostile.accept().unwrap();
    let mut hello = [0u8; RELAY_MESSAGE_LEN];
    stream.read_exact(&mut hello).unwrap();
    assert_eq!(Hello::parse(&hello), Ok(Hello::Open));
    stream
        .write_all(&Answer::Waiting { room: 417 }.to_bytes())
        .unwrap();
    let code = printed_code(&opener);
    stream
        .write_all(&Answer::PairedAsServer { room: 417 }.to_bytes())
        .unwrap();
    let guess = guess(&code);
    let result = match TestPeer::establish(stream, Role::Client, Secret::Password(guess.as_bytes()))
    {
        Ok(_) => Ok(()),
        Err(SessionError::Protocol(error)) => Err(error),
        Err(other) => panic!("the relay's handshake ended with {other:?}"),
    };
    (opener, result)
}

#[test]
fn a_relay_posing_as_the_other_person_gets_one_guess_which_fails_visibly() {
    // The right room and one word wrong: the best guess a relay has short of the code.
    let (mut opener, result) = relay_posing_as_the_joiner(|code| {
        let mut words: Vec<&str> = code.split('-').collect();
        words[1] = if words[1] == "apple" {
            "amber"
        } else {
            "apple"
        };
        words.join("-")
    });
    assert_eq!(
        result,
        Err(aeschat_core::session::Error::AuthenticationFailed)
    );
    assert_eq!(opener.wait_exit(), 3, "{}", opener.transcript());
    let error = opener.wait_error_line();
    assert!(error.contains("the code did not match"), "{error}");
    assert!(error.contains("The room is used up"), "{error}");
}

#[test]
fn a_relay_that_knew_the_code_could_pose_as_the_other_person() {
    // The positive control of the test above: the same hostile relay with the code itself gets
    // through, so the failure there is the code's doing, not the harness's. (This is why the
    // code is a secret between the two people, and never goes to the relay.)
    let (mut opener, result) = relay_posing_as_the_joiner(str::to_owned);
    assert_eq!(result, Ok(()));
    opener.wait_stderr("[+] Connected to the other person through the relay");
    opener.kill();
}
