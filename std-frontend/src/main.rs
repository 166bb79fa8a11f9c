//! `aeschat`: an end-to-end encrypted two-person chat over TCP, and tools for Fernet tokens.

mod chat;
mod tokens;
mod vectors;

use std::process::ExitCode;

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
    /// Connect to a waiting peer, then chat.
    Client(chat::ClientArgs),
    /// Print a strong random passphrase for the chat (9 words, 81 bits of entropy).
    Passphrase(chat::PassphraseArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            // clap reports --help and --version as "errors" that exit 0; real usage errors exit 2.
            return if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
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
    }
}
