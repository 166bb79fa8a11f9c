//! `aeschat server` and `aeschat client`: the chat. (Being written.)

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct ServerArgs {}
#[derive(clap::Args)]
pub struct ClientArgs {}

pub fn server(_: ServerArgs) -> ExitCode {
    ExitCode::FAILURE
}
pub fn client(_: ClientArgs) -> ExitCode {
    ExitCode::FAILURE
}
