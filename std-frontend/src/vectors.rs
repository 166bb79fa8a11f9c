//! `aeschat vectors DIR`: checks Fernet vector files. (Being written.)

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct VectorsArgs {}

pub fn run(_: VectorsArgs) -> ExitCode {
    ExitCode::FAILURE
}
