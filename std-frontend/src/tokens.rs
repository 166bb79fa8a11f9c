//! `genkey`, `encrypt`, `decrypt` and `rotate`: Fernet token tools. (Being written.)

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct GenkeyArgs {}
#[derive(clap::Args)]
pub struct EncryptArgs {}
#[derive(clap::Args)]
pub struct DecryptArgs {}
#[derive(clap::Args)]
pub struct RotateArgs {}

pub fn genkey(_: GenkeyArgs) -> ExitCode {
    ExitCode::FAILURE
}
pub fn encrypt(_: EncryptArgs) -> ExitCode {
    ExitCode::FAILURE
}
pub fn decrypt(_: DecryptArgs) -> ExitCode {
    ExitCode::FAILURE
}
pub fn rotate(_: RotateArgs) -> ExitCode {
    ExitCode::FAILURE
}
