//! The chat over a real network path: two network namespaces joined by a virtual Ethernet
//! cable (a veth pair), the server in one and the client in the other, over IPv4 and IPv6.
//! Loopback hides mistakes such as binding to 127.0.0.1 only; this does not.
//!
//! Needs root and `ip` from iproute2; where the machine does not allow it, the test says why
//! and passes without running.

use aeschat_tests::chat_support;
use aeschat_tests::cli_support;

use std::process::{Command, Stdio};

use chat_support::*;
use cli_support::aeschat_binary;

/// Two namespaces and the veth pair between them, removed when dropped.
struct Network {
    server_ns: String,
    client_ns: String,
}

impl Network {
    /// The server side gets 10.77.0.1 and fd77::1, the client side 10.77.0.2 and fd77::2.
    /// Each namespace is private, so these addresses cannot clash with the host's or with a
    /// parallel run's.
    fn create() -> Result<Network, String> {
        let id = std::process::id();
        let network = Network {
            server_ns: format!("aeschat-s{id}"),
            client_ns: format!("aeschat-c{id}"),
        };
        // Interface names are limited to 15 characters.
        let (server_if, client_if) = (format!("acs{id}"), format!("acc{id}"));
        ip(&["netns", "add", &network.server_ns])?;
        ip(&["netns", "add", &network.client_ns])?;
        ip(&[
            "link", "add", &server_if, "type", "veth", "peer", "name", &client_if,
        ])?;
        for (ns, interface, v4, v6) in [
            (&network.server_ns, &server_if, "10.77.0.1/24", "fd77::1/64"),
            (&network.client_ns, &client_if, "10.77.0.2/24", "fd77::2/64"),
        ] {
            ip(&["link", "set", interface, "netns", ns])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
            ip(&["-n", ns, "addr", "add", v4, "dev", interface])?;
            // No duplicate address detection: the address is usable at once.
            ip(&["-n", ns, "addr", "add", v6, "dev", interface, "nodad"])?;
            ip(&["-n", ns, "link", "set", interface, "up"])?;
        }
        Ok(network)
    }

    /// `aeschat ARGS` inside namespace `ns`.
    fn aeschat(&self, name: &str, ns: &str, args: &[&str]) -> Peer {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", ns])
            .arg(aeschat_binary())
            .args(args);
        Peer::spawn_command(name, command)
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        // Deleting a namespace deletes the veth end inside it, and with it the pair.
        let _ = ip(&["netns", "del", &self.server_ns]);
        let _ = ip(&["netns", "del", &self.client_ns]);
    }
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
    let network = match Network::create() {
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
        let mut server = network.aeschat("server", &network.server_ns, &args);
        let port = server
            .listening_address()
            .rsplit(':')
            .next()
            .expect("an address has a port")
            .to_owned();
        let address = format!("{server_host}:{port}");
        let mut args = vec!["client", "--connect", &address, "--password-file"];
        args.push(&files.password_file);
        let mut client = network.aeschat("client", &network.client_ns, &args);

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
