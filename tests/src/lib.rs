//! The integration tests' shared code, compiled once as this library rather than into every
//! test binary: running the real `aeschat` binary (`cli_support`, `chat_support`), the server
//! under load (`load_support`), a man in the middle (`mitm_support`), the relay and a proxy in front of it (`relay_support`) and sessions in memory
//! (`session_support`), what a real process draws from the system's random generator
//! (`random_log`), and what heap blocks hold as they are freed (`freed_blocks`). The tests themselves are in `tests/tests/`.

pub mod chat_support;
pub mod cli_support;
pub mod freed_blocks;
pub mod load_support;
pub mod mitm_support;
pub mod random_log;
pub mod relay_support;
pub mod session_support;
