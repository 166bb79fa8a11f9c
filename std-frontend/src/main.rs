//! `aeschat`: an end-to-end encrypted two-person chat over TCP, and tools for Fernet tokens.

mod chat;
mod relay;
mod tokens;
mod vectors;

use std::process::ExitCode;

use clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand;
use clap::{Parser, Subcommand};

/// End-to-end encrypted two-person chat over TCP, and tools for Fernet tokens.
#[derive(Parser)]
#[command(name = "aeschat", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a new random Fernet key.
    Genkey(tokens::GenkeyArgs),
    /// Encrypt stdin into one Fernet token.
    Encrypt(tokens::EncryptArgs),
    /// Verify and decrypt one Fernet token from stdin.
    Decrypt(tokens::DecryptArgs),
    /// Re-encrypt a token under a new key, keeping its timestamp.
    Rotate(tokens::RotateArgs),
    /// Check Fernet test vector files (official spec format and aeschat's own).
    Vectors(vectors::VectorsArgs),
    /// Wait for a peer to connect, then chat.
    Server(chat::ServerArgs),
    /// Connect to a waiting peer (or meet one through a relay), then chat.
    Client(chat::ClientArgs),
    /// Print a strong random passphrase for the chat (5 words, 45 bits of entropy).
    Passphrase(chat::PassphraseArgs),
    /// Pair two clients that can only dial out, by room, and forward their bytes.
    Relay(relay::RelayArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let status = if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
            // clap reports --help and --version as "errors" that exit 0, and shows the help
            // when no command is given: those are meant to be read as clap writes them.
            if !err.use_stderr() || err.kind() == DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = err.print();
            } else {
                eprintln!("{}", usage_error_line(&err.render().to_string()));
            }
            return status;
        }
    };
    match cli.command {
        Command::Genkey(args) => tokens::genkey(args),
        Command::Encrypt(args) => tokens::encrypt(args),
        Command::Decrypt(args) => tokens::decrypt(args),
        Command::Rotate(args) => tokens::rotate(args),
        Command::Vectors(args) => vectors::run(args),
        Command::Server(args) => chat::server(args),
        Command::Client(args) => chat::client(args),
        Command::Passphrase(args) => chat::passphrase(args),
        Command::Relay(args) => relay::relay(args),
    }
}

/// A usage error as clap writes it (an `error:` line, maybe continued on indented lines, tips,
/// a usage line and a pointer to `--help`) made into the one line every aeschat problem is.
fn usage_error_line(rendered: &str) -> String {
    let mut message = String::new();
    let mut usage = None;
    for line in rendered
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
    {
        if let Some(rest) = line.strip_prefix("Usage:") {
            usage = Some(rest.trim());
        } else if line.starts_with("For more information") {
            // Said below, in fewer words.
        } else {
            let line = line.strip_prefix("error:").map_or(line, str::trim_start);
            if !message.is_empty() {
                message.push_str(if message.ends_with(':') { " " } else { "; " });
            }
            message.push_str(line);
        }
    }
    match usage {
        Some(usage) => format!("aeschat: {message} (usage: {usage}; more with --help)"),
        None => format!("aeschat: {message} (more with --help)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Renders the usage error clap gives for `args`.
    fn rendered(args: &[&str]) -> String {
        match Cli::try_parse_from(args) {
            Ok(_) => panic!("{args:?} parsed"),
            Err(err) => err.render().to_string(),
        }
    }

    #[test]
    fn a_usage_error_becomes_one_line_with_the_usage_and_any_tip() {
        let line = usage_error_line(&rendered(&["aeschat", "clinet"]));
        assert_eq!(
            line,
            "aeschat: unrecognized subcommand 'clinet'; tip: a similar subcommand exists: \
             'client' (usage: aeschat <COMMAND>; more with --help)"
        );
    }

    #[test]
    fn a_list_of_missing_arguments_joins_its_line() {
        let line = usage_error_line(&rendered(&["aeschat", "decrypt"]));
        assert_eq!(
            line,
            "aeschat: the following required arguments were not provided: --key-file <PATH> \
             (usage: aeschat decrypt --key-file <PATH>; more with --help)"
        );
    }

    #[test]
    fn an_invalid_value_keeps_its_reason() {
        let line = usage_error_line(&rendered(&["aeschat", "server", "--timeout", "abc"]));
        assert!(line.starts_with("aeschat: invalid value 'abc' for '--timeout <SECS>': "));
        assert!(line.contains("is not a number of seconds"), "{line}");
        assert!(!line.contains('\n'), "{line}");
    }
}
