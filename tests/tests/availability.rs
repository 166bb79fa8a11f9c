//! The server stays available to the person it waits for. Each attack of the availability issue
//! runs against the real binary over loopback, the attackers on loopback addresses of their own
//! (127.0.0.2 and up) so that per-source rules are exercised, the real client from 127.0.0.1:
//! junk alerts and replayed hellos, floods of hellos that hang up, silent callers, callers
//! silent after their hello, callers that renew their hello faster than the grace, a retry after a wrong password, real password guessing (still
//! slowed), floods of refused callers (log lines stay few), and hundreds of garbage connections
//! (memory and threads stay flat).
//!
//! `docs/SECURITY.md` records the figures of one run.

use aeschat_tests::chat_support;
use aeschat_tests::cli_support;
use aeschat_tests::load_support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use aeschat_core::session::{Error, Role, Secret, SessionError};
use chat_support::*;
use load_support::*;
use socket2::{Domain, Socket, Type};

/// A TCP connection to `server` from the loopback address 127.0.0.`last`.
fn connect_from(last: u8, server: &str) -> TcpStream {
    try_connect_from(last, server).expect("cannot connect to the server")
}

/// [`connect_from`], with the connection's failure returned.
fn try_connect_from(last: u8, server: &str) -> std::io::Result<TcpStream> {
    let server: SocketAddr = server.parse().expect("a loopback address");
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("cannot make a socket");
    let source = SocketAddr::from((Ipv4Addr::new(127, 0, 0, last), 0));
    socket
        .bind(&source.into())
        .expect("cannot bind a loopback source address");
    socket.connect_timeout(&server.into(), PATIENCE)?;
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(PATIENCE))
        .expect("cannot set a read timeout");
    Ok(stream)
}

/// An alert 1 ("authentication failed") sent as the very first frame: before this change, five
/// of them stopped the server for good.
const ALERT_1: [u8; 6] = [6, 0, 0, 0, 1, 1];

/// Sends `bytes` from 127.0.0.`last`, then reads until the server hangs up.
fn send_and_wait_for_hang_up(last: u8, server: &str, bytes: &[u8]) -> Vec<u8> {
    let mut stream = connect_from(last, server);
    let _ = stream.write_all(bytes);
    read_to_end(&mut stream, Instant::now() + PATIENCE).0
}

/// The attacks that used to stop or confuse the server without knowing anything: alerts as
/// first frames, a hello followed by an alert, a replayed hello with junk for a Finished.
fn junk_attacks(server: &str) {
    for round in 0..8u8 {
        send_and_wait_for_hang_up(2 + round % 3, server, &ALERT_1);
    }
    let mut hello_then_alert = client_hello();
    hello_then_alert.extend_from_slice(&ALERT_1);
    for _ in 0..3 {
        send_and_wait_for_hang_up(5, server, &hello_then_alert);
    }
    let replayed = client_hello();
    for _ in 0..3 {
        let mut stream = connect_from(6, server);
        let _ = stream.write_all(&replayed);
        let _ = stream.write_all(&[3, 0, 0, 0, 7, 1, 2, 3, 4, 5, 6, 7]);
        read_to_end(&mut stream, Instant::now() + PATIENCE);
    }
}

/// A real client from 127.0.0.1 completes a conversation with the server.
fn real_client_is_served(server: &mut Peer, client_args: &[&str], address: &str) {
    let mut args = vec!["client", "--connect", address];
    args.extend_from_slice(client_args);
    let client = Peer::spawn("real client", &args, &[]);
    client.wait_stderr("[+] Connected to the server");
    talk_and_leave(server, client);
}

/// The connected real client says who it is, the server shows it, and the client leaves.
fn talk_and_leave(server: &mut Peer, mut client: Peer) {
    client.type_line("I am the one you wait for");
    server.wait_stdout_line("[Client]: I am the one you wait for");
    client.type_line("/quit");
    client.assert_exit(0);
}

/// Waits until the attackers hold all sixteen handshake places (`holding` counts them).
fn wait_until_every_place_is_held(holding: &AtomicUsize, server: &Peer) {
    let deadline = Instant::now() + PATIENCE;
    while holding.load(Ordering::SeqCst) < 16 {
        assert!(Instant::now() < deadline, "{}", server.transcript());
        thread::sleep(Duration::from_millis(5));
    }
}

/// The real client (the shared password) is served, then the server's
/// input ends and it stops cleanly.
fn serve_the_real_client_then_stop(server: &mut Peer, files: &Files, address: &str) {
    real_client_is_served(server, &["--password-file", &files.password_file], address);
    server.close_stdin();
    server.assert_exit(0);
}

#[test]
fn junk_alerts_and_replayed_hellos_neither_stop_the_server_nor_keep_the_client_out() {
    let files = Files::new("avail-junk");
    let key = files
        .dir
        .write("key", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
    let password = ["--password-file", files.password_file.as_str()];
    let key_file = ["--key-file", key.as_str()];
    for (mode, secret, extra) in [
        ("password", &password[..], &[][..]),
        ("password --once", &password[..], &["--once"][..]),
        ("key file", &key_file[..], &[][..]),
    ] {
        let mut args = vec!["server", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(secret);
        args.extend_from_slice(extra);
        let mut server = Peer::spawn(mode, &args, &[]);
        let address = server.listening_address();
        junk_attacks(&address);
        assert!(server.is_running(), "{mode}: {}", server.transcript());
        assert!(
            !server.stderr_text().contains("Authentication failed"),
            "{mode}: junk was counted as a failed authentication\n{}",
            server.transcript()
        );
        real_client_is_served(&mut server, secret, &address);
        if extra.is_empty() {
            server.close_stdin();
        }
        server.assert_exit(0);
    }
}

#[test]
fn a_flood_of_hellos_that_hang_up_costs_no_key_derivation_and_the_client_gets_in() {
    let _exclusive = exclusive();
    let files = Files::new("avail-flood");
    // Every hello costs the server one CPace share for its ServerHello (a hash-to-curve and a
    // scalar multiplication, ~50 µs); a derivation comes only after a ClientFinished.
    let mut server = Peer::spawn(
        "server",
        &[
            "server",
            "--listen",
            "127.0.0.1:0",
            "--password-file",
            &files.password_file,
        ],
        &[],
    );
    let address = server.listening_address();
    let pid = pid_of(&["server", &files.password_file]);
    let before = usage(pid);
    let flooding = {
        let address = address.clone();
        thread::spawn(move || {
            let mut callers = 0;
            let started = Instant::now();
            // Hellos that hang up after the ServerHello, and hellos followed by junk in place
            // of a ClientFinished (each of those is a failed authentication: it is a guess).
            while started.elapsed() < Duration::from_secs(4) {
                let last = 2 + (callers % 4) as u8;
                let mut stream = connect_from(last, &address);
                let _ = stream.write_all(&client_hello());
                if callers % 2 == 1 {
                    let _ = stream.write_all(&[&[3, 0, 0, 0, 32][..], &[0x55; 32]].concat());
                }
                let mut some = [0u8; 64];
                let _ = stream.read(&mut some);
                callers += 1;
            }
            callers
        })
    };
    thread::sleep(Duration::from_millis(500));
    real_client_is_served(
        &mut server,
        &["--password-file", &files.password_file],
        &address,
    );
    let callers = flooding.join().expect("the flood thread panicked");
    let after = usage(pid);
    let cpu = after.cpu().saturating_sub(before.cpu());
    let per_caller = cpu / callers.max(1);
    let derivations = server
        .stderr_text()
        .matches("Authentication failed")
        .count()
        + 1;
    println!(
        "figures: {callers} flooding callers in 4 s; server CPU {cpu:?} in all, {per_caller:?} \
         per caller; {derivations} key derivations (the real client's included)"
    );
    assert!(
        callers >= 100,
        "the flood was too small to mean anything: {callers}"
    );
    // In protocol 1 every hello that hung up cost one PBKDF2 (about 65 ms of CPU at the
    // default work factor); now a caller costs what accepting it and one CPace share cost, and
    // only the few callers that sent a (wrong) ClientFinished before their source had to wait
    // got a derivation.
    assert!(
        per_caller < Duration::from_millis(2),
        "each flooding caller cost the server {per_caller:?} of CPU\n{}",
        server.transcript()
    );
    assert!(
        derivations <= 12,
        "{derivations} derivations\n{}",
        server.transcript()
    );
    server.close_stdin();
    server.assert_exit(0);
}

#[test]
fn silent_callers_cannot_keep_the_real_client_out() {
    let files = Files::new("avail-silent");
    let (mut server, address) = start_server(&files, &[]);
    // Two silent connections from each of twenty addresses: more than all handshake places.
    let silent: Vec<TcpStream> = (2..22u8)
        .flat_map(|last| [connect_from(last, &address), connect_from(last, &address)])
        .collect();
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let mut client = start_client(&files, &address);
    client.wait_stderr("[+] Connected to the server");
    let waited = started.elapsed();
    println!("figures: the real client got in after {waited:?} past 40 silent connections");
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    client.type_line("/quit");
    client.assert_exit(0);
    drop(silent);
    server.close_stdin();
    server.assert_exit(0);
}

/// Callers from `sources` loopback addresses (127.0.0.2 and up), two each, that send a valid
/// ClientHello, read the ServerHello and then say nothing, each place taken again as soon as the
/// server frees it, until `stop` is set; `holding` counts the places they hold. Each returns how
/// many ServerHellos it got.
fn hold_places_after_the_hello(
    address: &str,
    sources: u8,
    stop: &Arc<AtomicBool>,
    holding: &Arc<AtomicUsize>,
) -> Vec<thread::JoinHandle<usize>> {
    (0..sources)
        .flat_map(|n| [2 + n, 2 + n])
        .map(|last| {
            let address = address.to_owned();
            let stop = Arc::clone(stop);
            let holding = Arc::clone(holding);
            thread::spawn(move || {
                let mut hellos = 0;
                while !stop.load(Ordering::SeqCst) {
                    let Ok(mut stream) = try_connect_from(last, &address) else {
                        thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    let _ = stream.write_all(&client_hello());
                    // The ServerHello's first byte (kind 2), or an alert (kind 6): refused.
                    let mut kind = [0u8; 1];
                    if stream.read_exact(&mut kind).is_ok() && kind == [2] {
                        hellos += 1;
                    } else {
                        thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    // Silence, until the server closes the connection or the attack ends.
                    holding.fetch_add(1, Ordering::SeqCst);
                    let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
                    let mut sink = [0u8; 512];
                    while !stop.load(Ordering::SeqCst) {
                        match stream.read(&mut sink) {
                            Ok(0) => break,
                            Ok(_) => {}
                            Err(err)
                                if matches!(
                                    err.kind(),
                                    std::io::ErrorKind::WouldBlock
                                        | std::io::ErrorKind::TimedOut
                                        | std::io::ErrorKind::Interrupted
                                ) => {}
                            Err(_) => break,
                        }
                    }
                    holding.fetch_sub(1, Ordering::SeqCst);
                }
                hellos
            })
        })
        .collect()
}

/// The real client, retrying every second as it is told ("try again in 1 s"), until it gets in
/// or `give_up` has passed since its first try. Returns it (connected) if it got in, how long
/// it took, how many tries, and the refusals it was given.
fn real_client_retrying(
    files: &Files,
    address: &str,
    give_up: Duration,
) -> (Option<Peer>, Duration, usize, Vec<String>) {
    let started = Instant::now();
    let mut attempts = 0;
    let mut refusals = Vec::new();
    let connected = loop {
        attempts += 1;
        let mut client = start_client(files, address);
        match client.wait_exit_or_line("[+] Connected to the server") {
            Err(_) => break Some(client),
            Ok(_) => refusals.push(client.wait_error_line()),
        }
        if started.elapsed() > give_up {
            break None;
        }
        thread::sleep(Duration::from_secs(1));
    };
    (connected, started.elapsed(), attempts, refusals)
}

/// The attack on the rule that only *silent* callers make room: callers that send a valid
/// ClientHello are talking, so before the fix they were never dropped to make room; each got
/// its ServerHello and then held its place until `--timeout` (30 s) in silence, and eight
/// addresses with two places each took all sixteen, refilled as soon as one was freed. The real
/// client was refused as busy ("try again in 1 s") for as long as the attack went on. Now a
/// caller that has waited longer than a short grace for its next frame gives up its place to a
/// newcomer, and one that has not answered the ServerHello within a few seconds is dropped: the
/// real client, retrying as it is told, gets in within seconds, not after `--timeout`.
#[test]
fn callers_that_stall_after_the_hello_cannot_keep_the_real_client_out() {
    let _exclusive = exclusive();
    let files = Files::new("avail-stalled");
    let (mut server, address) = start_server(&files, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let holding = Arc::new(AtomicUsize::new(0));
    let attackers = hold_places_after_the_hello(&address, 8, &stop, &holding);
    // Every place is held before the real client tries.
    wait_until_every_place_is_held(&holding, &server);
    let (connected, waited, attempts, refusals) =
        real_client_retrying(&files, &address, Duration::from_secs(10));
    stop.store(true, Ordering::SeqCst);
    let hellos: usize = attackers
        .into_iter()
        .map(|attacker| attacker.join().expect("an attacker panicked"))
        .sum();
    println!(
        "figures: the real client got in: {}, after {waited:?} and {attempts} attempt(s), past \
         16 callers stalled after the hello from 8 addresses ({hellos} ServerHellos sent)",
        connected.is_some()
    );
    let Some(client) = connected else {
        panic!(
            "the real client was kept out for {waited:?}: {refusals:#?}\n{}",
            server.transcript()
        );
    };
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    talk_and_leave(&mut server, client);
    server.close_stdin();
    server.assert_exit(0);
}

/// Callers from `sources` loopback addresses (127.0.0.2 and up) that renew their places with a
/// fresh hello every 0.5 to 1 s: connect, send a valid ClientHello, read the ServerHello, say
/// nothing more and hang up after 0.5 to 1 s (well inside the 2 s grace), then call again at
/// once. Three callers per address share its two places, and a refused caller calls again
/// after 10 ms whatever it was told, so a place freed by a hang-up is taken again at once.
/// Until `stop` is set; `holding` counts the places they hold. Each returns how many
/// ServerHellos it got and how many times it was refused.
fn renew_places_with_fresh_hellos(
    address: &str,
    sources: u8,
    stop: &Arc<AtomicBool>,
    holding: &Arc<AtomicUsize>,
) -> Vec<thread::JoinHandle<(usize, usize)>> {
    (0..sources)
        .flat_map(|n| [(2 + n, 0u64), (2 + n, 1), (2 + n, 2)])
        .map(|(last, second)| {
            let address = address.to_owned();
            let stop = Arc::clone(stop);
            let holding = Arc::clone(holding);
            thread::spawn(move || {
                let (mut hellos, mut refused) = (0, 0);
                let mut round = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    round += 1;
                    let Ok(mut stream) = try_connect_from(last, &address) else {
                        thread::sleep(Duration::from_millis(10));
                        continue;
                    };
                    let _ = stream.write_all(&client_hello());
                    // The ServerHello's first byte (kind 2), or an alert (kind 6): refused.
                    let mut kind = [0u8; 1];
                    if stream.read_exact(&mut kind).is_err() || kind != [2] {
                        refused += 1;
                        thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                    hellos += 1;
                    holding.fetch_add(1, Ordering::SeqCst);
                    // 500 to 1000 ms, different for each caller and round.
                    let hold = 500 + (u64::from(last) * 131 + second * 257 + round * 97) % 500;
                    let until = Instant::now() + Duration::from_millis(hold);
                    while Instant::now() < until && !stop.load(Ordering::SeqCst) {
                        thread::sleep(Duration::from_millis(10));
                    }
                    holding.fetch_sub(1, Ordering::SeqCst);
                    drop(stream);
                }
                (hellos, refused)
            })
        })
        .collect()
}

/// The attack that outran the grace after the hello: twenty-four callers, three from each of
/// eight addresses, that renew their places with a fresh hello every 0.5 to 1 s, so no place
/// is ever stalled for longer than the 2 s grace and none may be taken for a newcomer. Before
/// the rule on abandoned handshakes, the real client was refused as busy for as long as the
/// attack went on. Now each of the eight addresses is made to wait once it has abandoned more
/// handshakes than an honest client ever does, and the real client, retrying as it is told,
/// gets in within seconds.
#[test]
fn callers_that_renew_their_hello_faster_than_the_grace_cannot_keep_the_real_client_out() {
    let _exclusive = exclusive();
    let files = Files::new("avail-renewing");
    let (mut server, address) = start_server(&files, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let holding = Arc::new(AtomicUsize::new(0));
    let attackers = renew_places_with_fresh_hellos(&address, 8, &stop, &holding);
    // Every place is held before the real client tries.
    wait_until_every_place_is_held(&holding, &server);
    let (connected, waited, attempts, refusals) =
        real_client_retrying(&files, &address, Duration::from_secs(15));
    stop.store(true, Ordering::SeqCst);
    let (hellos, refused) = attackers
        .into_iter()
        .map(|attacker| attacker.join().expect("an attacker panicked"))
        .fold((0, 0), |(h, r), (hellos, refused)| {
            (h + hellos, r + refused)
        });
    println!(
        "figures: the real client got in: {}, after {waited:?} and {attempts} attempt(s), past \
         24 callers renewing their hello every 0.5-1 s from 8 addresses ({hellos} ServerHellos \
         sent, {refused} attacker calls refused)",
        connected.is_some()
    );
    let Some(client) = connected else {
        panic!(
            "the real client was kept out for {waited:?}: {refusals:#?}\n{}",
            server.transcript()
        );
    };
    assert!(waited < Duration::from_secs(15), "waited {waited:?}");
    // The server's log says so, as it comes or in a window's summary.
    server.wait_stderr("handshakes abandoned after the hello within 60 s; it must wait 30 s");
    talk_and_leave(&mut server, client);
    server.close_stdin();
    server.assert_exit(0);
}

#[test]
fn a_silent_caller_is_dropped_after_a_few_seconds_not_the_whole_timeout() {
    let files = Files::new("avail-first-frame");
    let (server, address) = start_server(&files, &["--timeout", "60"]);
    let started = Instant::now();
    let (got, ended) = {
        let mut silent = connect_from(2, &address);
        read_to_end(&mut silent, Instant::now() + PATIENCE)
    };
    let waited = started.elapsed();
    assert!(ended && got.is_empty(), "{got:?}");
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(10),
        "dropped after {waited:?}"
    );
    server.wait_stderr("the caller sent no aeschat hello within 5 s");
}

#[test]
fn a_caller_silent_after_its_hello_is_dropped_after_a_few_seconds_not_the_whole_timeout() {
    let files = Files::new("avail-next-frame");
    let (server, address) = start_server(&files, &["--timeout", "60"]);
    let mut stalled = connect_from(2, &address);
    stalled
        .write_all(&client_hello())
        .expect("cannot send a hello");
    let mut kind = [0u8; 1];
    stalled
        .read_exact(&mut kind)
        .expect("no answer to the hello");
    assert_eq!(kind, [2], "no ServerHello");
    let started = Instant::now();
    let (_, ended) = read_to_end(&mut stalled, Instant::now() + PATIENCE);
    let waited = started.elapsed();
    assert!(ended, "never dropped");
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(10),
        "dropped after {waited:?}"
    );
    server.wait_stderr("the caller did not go on with its handshake within 5 s");
}

#[test]
fn a_retry_right_after_a_wrong_password_is_told_to_wait_not_that_the_server_is_busy() {
    let files = Files::new("avail-retry");
    let (mut server, address) = start_server(&files, &["--fail-delay", "3"]);
    let wrong = files.password("wrong", "not the password at all, sorry");
    let mut guesser = start_client_with("mistyped", &address, &wrong, &[]);
    guesser.assert_exit(3);
    let line = server.wait_stderr("[!] Authentication failed for 127.0.0.1:");
    assert!(line.contains("127.0.0.1 must wait 3 s"), "{line}");

    let mut retry = start_client(&files, &address);
    retry.assert_exit(1);
    let error = retry.wait_error_line();
    assert!(!error.contains("busy"), "{error}");
    assert!(error.contains("try again in 3 s"), "{error}");

    // Another address is not made to wait.
    let mut other = connect_from(2, &address);
    other
        .write_all(&client_hello())
        .expect("cannot send a hello");
    let mut kind = [0u8; 1];
    other.read_exact(&mut kind).expect("no answer to the hello");
    assert_eq!(kind, [2], "127.0.0.2 got no ServerHello");
    drop(other);

    thread::sleep(Duration::from_secs(3));
    serve_the_real_client_then_stop(&mut server, &files, &address);
}

#[test]
fn password_guessing_from_one_source_is_still_slowed_and_the_server_still_serves() {
    let files = Files::new("avail-guessing");
    let (mut server, address) = start_server(&files, &["--fail-delay", "0.5"]);
    let wrong = files.password("wrong", "not the password at all, sorry");
    let started = Instant::now();
    let mut guesses = 0;
    let mut told_to_wait = 0;
    while guesses < 4 {
        let mut guesser = start_client_with("guesser", &address, &wrong, &[]);
        match guesser.wait_exit() {
            3 => guesses += 1,
            1 => {
                assert!(
                    guesser.stderr_text().contains("try again in"),
                    "{}",
                    guesser.transcript()
                );
                told_to_wait += 1;
                thread::sleep(Duration::from_millis(100));
            }
            other => panic!("exit {other}\n{}", guesser.transcript()),
        }
    }
    let took = started.elapsed();
    println!("figures: 4 wrong passwords from one address took {took:?}, {told_to_wait} retries told to wait");
    // Waits of 0.5, 1 and 2 s between the four guesses.
    assert!(took >= Duration::from_millis(3500), "took {took:?}");
    assert!(server.is_running(), "{}", server.transcript());
    thread::sleep(Duration::from_secs(4));
    serve_the_real_client_then_stop(&mut server, &files, &address);
}

#[test]
fn all_sources_together_get_twenty_failed_authentications_then_everyone_waits() {
    let files = Files::new("avail-global");
    let (mut server, address) = start_server(&files, &[]);
    // Twenty guessers, each from an address of its own, each one wrong password (a test-side
    // client on the core, since the real client cannot choose its source address).
    for last in 2..22u8 {
        let stream = connect_from(last, &address);
        let guess = TestPeer::establish(
            stream,
            Role::Client,
            Secret::Password(b"not the password at all, sorry"),
        );
        assert!(
            matches!(
                guess.err(),
                Some(SessionError::Protocol(Error::AuthenticationFailed))
            ),
            "guess from 127.0.0.{last} did not fail authentication"
        );
    }
    server.wait_stderr_count("[!] Authentication failed for", 20);
    // The allowance is spent: a new address, even with the right password, is told to wait
    // (about ten minutes), before any key work.
    let mut next = start_client(&files, &address);
    next.assert_exit(1);
    let error = next.wait_error_line();
    assert!(error.contains("try again in"), "{error}");
    let seconds: u64 = error
        .split("try again in ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|number| number.parse().ok())
        .unwrap_or_else(|| panic!("no wait in {error}"));
    assert!((590..=600).contains(&seconds), "{error}");
    assert!(server.is_running(), "{}", server.transcript());
}

#[test]
fn failures_stop_the_server_only_when_the_operator_asks() {
    let files = Files::new("avail-max-failures");
    let wrong = files.password("wrong", "not the password at all, sorry");
    let (mut server, address) = start_server(&files, &["--max-failures", "2", "--fail-delay", "0"]);
    for _ in 0..2 {
        let mut guesser = start_client_with("guesser", &address, &wrong, &[]);
        guesser.assert_exit(3);
    }
    server.assert_exit(3);
    let last = server.wait_stderr("aeschat: authentication failed 2 times in a row");
    assert!(last.contains("--max-failures 2"), "{last}");
}

#[test]
fn a_flood_of_refused_callers_is_summed_up_in_a_few_log_lines() {
    let _exclusive = exclusive();
    let files = Files::new("avail-log");
    let (mut server, mut client, address) = connected_pair(&files, &[]);
    let lines_before = server.stderr_text().lines().count();
    let started = Instant::now();
    let mut refused = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let mut stream = connect_from(3, &address);
        let mut answer = [0u8; 6];
        if stream.read_exact(&mut answer).is_ok() {
            assert_eq!(answer, BUSY_ALERT);
            refused += 1;
        }
    }
    server.wait_stderr("more callers from 127.0.0.3 in the last");
    let lines = server.stderr_text().lines().count() - lines_before;
    println!("figures: {refused} callers refused in 3 s, {lines} log lines");
    assert!(refused >= 300, "only {refused} refused");
    // At most ten as they come and four summary lines per 10 s window; the flood may span two.
    assert!(lines <= 28, "{lines} lines\n{}", server.transcript());
    // The conversation goes on.
    client.type_line("still here");
    server.wait_stdout_line("[Client]: still here");
    client.type_line("/quit");
    client.assert_exit(0);
    server.close_stdin();
    server.assert_exit(0);
}

#[test]
fn memory_and_threads_stay_flat_after_hundreds_of_garbage_connections() {
    let _exclusive = exclusive();
    let files = Files::new("avail-garbage");
    let (mut server, address) = start_server(&files, &["--timeout", "2"]);
    let pid = pid_of(&["server", &files.password_file]);
    let garbage: [&[u8]; 5] = [
        &ALERT_1,
        b"GET / HTTP/1.1\r\n\r\n",
        &[1, 0, 0, 0, 53, b'A', b'E'],
        &[1, 0xff, 0xff, 0xff, 0xff],
        &[],
    ];
    let round = |count: usize| {
        for n in 0..count {
            let mut stream = connect_from(2 + (n % 5) as u8, &address);
            let _ = stream.write_all(garbage[n % garbage.len()]);
            let _ = stream.shutdown(std::net::Shutdown::Write);
            read_to_end(&mut stream, Instant::now() + PATIENCE);
        }
    };
    round(50);
    thread::sleep(Duration::from_secs(3));
    let before = usage(pid);
    round(300);
    thread::sleep(Duration::from_secs(3));
    let after = usage(pid);
    println!("figures: before {before:?}, after 300 garbage connections {after:?}");
    assert!(
        after.rss_kib <= before.rss_kib + 1024,
        "{before:?} -> {after:?}"
    );
    assert!(after.threads <= before.threads, "{before:?} -> {after:?}");
    assert!(server.is_running(), "{}", server.transcript());
    serve_the_real_client_then_stop(&mut server, &files, &address);
}

#[test]
fn passphrase_reports_a_full_disk_or_a_closed_pipe_in_one_line_without_panicking() {
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("cannot open /dev/full");
    let output = std::process::Command::new(cli_support::aeschat_binary())
        .arg("passphrase")
        .stdout(full)
        .output()
        .expect("cannot run aeschat");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("aeschat: cannot write the passphrase to standard output:"),
        "{stderr}"
    );

    // A pipe whose reader has gone.
    let mut child = std::process::Command::new(cli_support::aeschat_binary())
        .arg("passphrase")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cannot run aeschat");
    drop(child.stdout.take());
    let output = child.wait_with_output().expect("cannot wait for aeschat");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.code() == Some(1) || output.status.success(),
        "{:?} {stderr}",
        output.status
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.lines().count() <= 1, "{stderr}");
}

#[test]
fn in_key_file_mode_nothing_is_guessed_so_nobody_waits_after_a_wrong_key() {
    let files = Files::new("avail-key-file");
    let key = files
        .dir
        .write("key", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n");
    let wrong = files
        .dir
        .write("wrong", "HxweHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE=\n");
    let mut server = Peer::spawn(
        "server",
        &["server", "--listen", "127.0.0.1:0", "--key-file", &key],
        &[],
    );
    let address = server.listening_address();
    // Wrong keys back to back from one address: each fails authentication, none is told to wait.
    for round in 1..=3 {
        let mut caller = Peer::spawn(
            "wrong key",
            &["client", "--connect", &address, "--key-file", &wrong],
            &[],
        );
        caller.assert_exit(3);
        server.wait_stderr_count("[!] Authentication failed for", round);
    }
    assert!(
        !server.stderr_text().contains("must wait"),
        "{}",
        server.transcript()
    );
    real_client_is_served(&mut server, &["--key-file", &key], &address);
    server.close_stdin();
    server.assert_exit(0);
}
