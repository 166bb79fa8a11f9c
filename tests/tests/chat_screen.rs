//! The chat at a terminal, as a person sees it: `aeschat` runs in a pseudo-terminal, a
//! terminal emulator (Python's pyte) renders what it prints into a screen of cells, and each
//! test types keys or pastes text and asserts on that screen and on what the other side,
//! running with plain pipes, received. The scenarios are in `tests/src/screen.py`.

use aeschat_tests::cli_support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cli_support::{aeschat_binary, ScratchDir};

/// The terminal emulator the scenarios render with, installed from PyPI when missing.
const PYTE: &str = "pyte==0.8.2";

/// Makes sure Python has pyte (and the pty module), once for all the tests.
fn python_with_pyte() -> &'static str {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let has_pyte = || {
        Command::new("python3")
            .args(["-c", "import pyte, pty, termios"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    };
    let ready = READY.get_or_init(|| {
        if has_pyte() {
            return Ok(());
        }
        let installed = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", PYTE])
            .status();
        match installed {
            Ok(status) if status.success() && has_pyte() => Ok(()),
            other => Err(format!("cannot install {PYTE} with pip: {other:?}")),
        }
    });
    if let Err(why) = ready {
        panic!("the terminal tests need Python 3 with pyte: {why}");
    }
    "python3"
}

/// Runs one scenario of `screen.py` and fails with its account of what went wrong.
fn scenario(name: &str) {
    let python = python_with_pyte();
    let scratch = ScratchDir::new(&format!("screen-{name}"));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/screen.py");
    let mut child = Command::new(python)
        .arg(&script)
        .arg(aeschat_binary())
        .arg(scratch.path())
        .arg(name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start python3");
    // Each wait in the script has its own 30 s limit; this only guards against the script.
    let deadline = Instant::now() + Duration::from_secs(180);
    while child.try_wait().expect("cannot wait for python3").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the scenario {name} did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().expect("cannot collect the output");
    assert!(
        output.status.success(),
        "scenario {name} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn a_20000_character_paste_arrives_whole_and_an_overlong_one_is_refused() {
    scenario("a_long_paste_arrives_whole");
}

#[test]
fn an_incoming_message_prints_above_the_line_being_typed_which_is_sent_intact() {
    scenario("an_incoming_message_leaves_the_typed_line_intact");
}

#[test]
fn a_burst_of_500_messages_while_typing_loses_nothing_and_garbles_nothing() {
    scenario("a_burst_of_messages_while_typing_loses_nothing");
}

#[test]
fn arrows_history_and_ctrl_l_edit_rather_than_send_escape_codes() {
    scenario("keys_edit_the_line_and_history_recalls");
}

#[test]
fn ctrl_c_on_the_client_gives_the_server_a_clean_leave() {
    scenario("ctrl_c_leaves_the_client_cleanly");
}

#[test]
fn ctrl_c_on_the_server_gives_the_client_a_clean_leave() {
    scenario("ctrl_c_leaves_the_server_cleanly");
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    scenario("a_second_ctrl_c_exits_at_once");
}

#[test]
fn ctrl_c_while_waiting_or_at_the_password_prompt_exits_quietly_with_130() {
    scenario("ctrl_c_while_waiting_exits_quietly");
}

#[test]
fn a_line_typed_on_a_server_with_nobody_connected_is_refused_not_kept() {
    scenario("text_typed_with_nobody_connected_is_not_sent_later");
}

#[test]
fn a_client_started_first_counts_the_seconds_it_waits_and_connects_when_the_server_starts() {
    scenario("a_client_started_first_counts_the_wait_then_connects");
}

#[test]
fn ctrl_d_or_quit_stops_a_server_that_waits_at_a_terminal() {
    scenario("a_waiting_server_stops_at_ctrl_d_or_quit");
}

#[test]
fn invisible_characters_show_escaped_and_peer_text_cannot_pass_for_a_status_line() {
    scenario("peer_text_cannot_hide_or_pretend");
}

#[test]
fn under_no_color_status_lines_are_still_told_apart() {
    scenario("without_colour_status_lines_are_still_marked");
}
