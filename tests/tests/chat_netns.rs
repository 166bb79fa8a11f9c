//! The chat over a real network path: two network namespaces joined by a virtual Ethernet
//! cable (a veth pair), the server in one and the client in the other, over IPv4 and IPv6.
//! Loopback hides mistakes such as binding to 127.0.0.1 only; this does not. And the relay's
//! case: two namespaces with no path between them, each cabled to a relay's namespace only.
//!
//! Needs root and `ip` from iproute2; where the machine does not allow it, the test says why
//! and passes without running.

use aeschat_tests::chat_support;
use aeschat_tests::cli_support;

use std::process::{Command, Stdio};

use chat_support::*;
use cli_support::aeschat_binary;

/// Network namespaces, each named after this test process, removed when dropped.
struct Namespaces {
    names: Vec<String>,
}

impl Namespaces {
    /// Namespaces `aeschat-{label}{pid}` for each label. Each namespace is private, so the
    /// addresses given in them cannot clash with the host's or with a parallel run's.
    fn create(labels: &[&str]) -> Result<Namespaces, String> {
        let id = std::process::id();
        let mut namespaces = Namespaces { names: Vec::new() };
        for label in labels {
            let name = format!("aeschat-{label}{id}");
            ip(&["netns", "add", &name])?;
            ip(&["-n", &name, "link", "set", "lo", "up"])?;
            namespaces.names.push(name);
        }
        Ok(namespaces)
    }

    /// The namespace made for `label`.
    fn named(&self, label: &str) -> &str {
        let suffix = format!("-{label}{}", std::process::id());
        self.names
            .iter()
            .find(|name| name.ends_with(&suffix))
            .expect("a namespace made for this label")
    }

    /// A virtual Ethernet cable between two namespaces, with the given addresses (CIDR) on each
    /// end. `tag` keeps interface names apart (they are limited to 15 characters).
    fn cable(&self, tag: &str, ends: [(&str, &[&str]); 2]) -> Result<(), String> {
        let id = std::process::id();
        let names = [format!("{tag}a{id}"), format!("{tag}b{id}")];
        ip(&[
            "link", "add", &names[0], "type", "veth", "peer", "name", &names[1],
        ])?;
        for ((label, addresses), interface) in ends.iter().zip(&names) {
            let ns = self.named(label);
            ip(&["link", "set", interface, "netns", ns])?;
            for address in *addresses {
                // No duplicate address detection: an IPv6 address is usable at once.
                ip(&["-n", ns, "addr", "add", address, "dev", interface, "nodad"])?;
            }
            ip(&["-n", ns, "link", "set", interface, "up"])?;
        }
        Ok(())
    }

    /// `aeschat ARGS` inside the namespace made for `label`.
    fn aeschat(&self, name: &str, label: &str, args: &[&str]) -> Peer {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", self.named(label)])
            .arg(aeschat_binary())
            .args(args);
        Peer::spawn_command(name, command)
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth ends inside it, and with them the pairs.
        for name in &self.names {
            let _ = ip(&["netns", "del", name]);
        }
    }
}

/// Two namespaces joined by one cable: the server side gets 10.77.0.1 and fd77::1, the client
/// side 10.77.0.2 and fd77::2.
fn server_and_client() -> Result<Namespaces, String> {
    let network = Namespaces::create(&["s", "c"])?;
    network.cable(
        "ac",
        [
            ("s", &["10.77.0.1/24", "fd77::1/64"]),
            ("c", &["10.77.0.2/24", "fd77::2/64"]),
        ],
    )?;
    Ok(network)
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|err| format!("cannot run `ip` (install iproute2): {err}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

#[test]
fn a_conversation_crosses_a_real_network_path_between_namespaces() {
    let network = match server_and_client() {
        Ok(network) => network,
        Err(reason) => {
            eprintln!("skipped: cannot build a network between namespaces here: {reason}");
            return;
        }
    };
    let files = Files::new("chat-netns");
    for (family, listen, server_host) in [
        // The default listening address: every interface, both families.
        ("IPv4 to a dual-stack listener", None, "10.77.0.1"),
        ("IPv6", Some("[fd77::1]:0"), "[fd77::1]"),
    ] {
        let mut args = vec!["server", "--once", "--password-file", &files.password_file];
        let listen_args = match listen {
            Some(address) => vec!["--listen", address],
            None => vec!["--listen", "0"],
        };
        args.extend(&listen_args);
        let mut server = network.aeschat("server", "s", &args);
        let port = server
            .listening_address()
            .rsplit(':')
            .next()
            .expect("an address has a port")
            .to_owned();
        let address = format!("{server_host}:{port}");
        let mut args = vec!["client", "--connect", &address, "--password-file"];
        args.push(&files.password_file);
        let mut client = network.aeschat("client", "c", &args);

        client.type_line(&format!("hello over {family}"));
        server.wait_stdout_line(&format!("[Client]: hello over {family}"));
        server.type_line("hi from the other namespace");
        client.wait_stdout_line("[Server]: hi from the other namespace");
        let connected = server.wait_stderr("[+] Client connected from");
        let expected_peer = if listen.is_some() {
            "fd77::2"
        } else {
            "10.77.0.2"
        };
        assert!(connected.contains(expected_peer), "{connected}");
        client.type_line("/quit");
        client.assert_exit(0);
        server.assert_exit(0);
    }
}

/// Issue 15's setting: two people who can only dial out. Alice and Bob are each in a
/// namespace whose one cable leads to the relay's namespace, and neither has a route beyond
/// its own cable (nor does the relay's namespace forward), so neither can reach the other at
/// all: a direct connection fails as unreachable. Both dial out to the relay, meet by a code,
/// and chat.
#[test]
fn two_people_who_cannot_reach_each_other_chat_through_a_relay_between_namespaces() {
    let network = match Namespaces::create(&["r", "a", "b"]).and_then(|network| {
        network.cable("ra", [("r", &["10.78.1.1/24"]), ("a", &["10.78.1.2/24"])])?;
        network.cable("rb", [("r", &["10.78.2.1/24"]), ("b", &["10.78.2.2/24"])])?;
        Ok(network)
    }) {
        Ok(network) => network,
        Err(reason) => {
            eprintln!("skipped: cannot build a network between namespaces here: {reason}");
            return;
        }
    };
    let relay = network.aeschat("relay", "r", &["relay", "--listen", "0.0.0.0:0"]);
    let port = relay
        .listening_address()
        .rsplit(':')
        .next()
        .expect("an address has a port")
        .to_owned();

    // Bob cannot reach Alice directly: there is no path between them.
    let files = Files::new("relay-netns");
    let password_file = files.password("direct", PASSWORD);
    let direct_args = ["client", "--connect", "10.78.1.2:7878", "--password-file"];
    let mut args = direct_args.to_vec();
    args.push(&password_file);
    let mut direct = network.aeschat("direct", "b", &args);
    assert_ne!(direct.wait_exit(), 0, "{}", direct.transcript());
    let error = direct.wait_error_line();
    assert!(error.contains("unreachable"), "{error}");

    let to_alice_side = format!("10.78.1.1:{port}");
    let to_bob_side = format!("10.78.2.1:{port}");
    let mut alice = network.aeschat("alice", "a", &["client", "--relay", &to_alice_side]);
    let line = alice.wait_stderr("[*] Your code: ");
    let code = line
        .split("[*] Your code: ")
        .nth(1)
        .expect("checked above")
        .trim()
        .to_owned();
    let mut bob = network.aeschat(
        "bob",
        "b",
        &["client", "--relay", &to_bob_side, "--code", &code],
    );
    bob.type_line("hello from behind my NAT");
    alice.wait_stdout_line("[Peer]: hello from behind my NAT");
    alice.type_line("and from behind mine");
    bob.wait_stdout_line("[Peer]: and from behind mine");
    alice.type_line("/quit");
    alice.assert_exit(0);
    bob.assert_exit(0);
    drop(relay);
}
