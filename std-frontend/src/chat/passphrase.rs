//! `aeschat passphrase`: a strong random passphrase from the built-in word list.
//!
//! The handshake is a PAKE (protocol 2): a recording gives nothing to test guesses against, so
//! a password is only ever guessed online, one guess per connection, and a server allows at
//! most 120 failed guesses an hour from everyone together. Five words from 512 give 45 bits:
//! at that rate, trying them all would take over 30 million years. Words beat a shorter
//! string of random characters because people can read them out and type them.

use std::io::Write;
use std::process::ExitCode;

use super::wordlist::WORDS;
use super::{terminal, Failure};

/// Bits of entropy per word: the list has 2^9 words.
const BITS_PER_WORD: u32 = 9;
/// The default length: 5 words, 45 bits.
const DEFAULT_WORDS: u8 = 5;
/// The shortest passphrase offered: 4 words, 36 bits, still some 65,000 years of online
/// guessing at the server's limit; below that the margin shrinks to what a patient attacker
/// with many years could cover.
const MIN_WORDS: u8 = 4;

const _: () = assert!(WORDS.len() == 1 << BITS_PER_WORD);

const PASSPHRASE_EXAMPLES: &str = "\
Examples:
  aeschat passphrase
  # Save it in a file only you can read, and give both people the same file contents:
  (umask 077; aeschat passphrase > chat.pass)
  aeschat server --password-file chat.pass";

const PASSPHRASE_DETAILS: &str = "\
Print a random passphrase: words from a built-in list of 512 common English words, joined by \
hyphens, drawn from the operating system's random number generator. Each word adds 9 bits of \
entropy: the default 5 words give 45 bits. The handshake never lets anyone test guesses \
offline (not from a recording, not as a fake server), and a server allows at most 120 wrong \
guesses an hour, so 45 bits would take over 30 million years to exhaust.";

/// Arguments of `aeschat passphrase`.
#[derive(clap::Args)]
#[command(
    after_help = PASSPHRASE_EXAMPLES,
    after_long_help = format!("{PASSPHRASE_DETAILS}\n\n{PASSPHRASE_EXAMPLES}"),
)]
pub struct PassphraseArgs {
    /// How many words (9 bits of entropy each; 5 words = 45 bits).
    #[arg(
        long,
        value_name = "N",
        default_value_t = DEFAULT_WORDS,
        value_parser = clap::value_parser!(u8).range(i64::from(MIN_WORDS)..=64),
    )]
    words: u8,
}

/// Runs `aeschat passphrase`.
pub fn passphrase(args: PassphraseArgs) -> ExitCode {
    match generate(args.words).and_then(|passphrase| print_line(&passphrase)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            terminal::error(failure.message());
            failure.exit_code()
        }
    }
}

/// Writes the passphrase and its line ending. A closed pipe or a full disk is a failure to
/// report in one line (`println!` would panic): the passphrase may not have been saved.
fn print_line(passphrase: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{passphrase}")
        .and_then(|()| stdout.flush())
        .map_err(|err| {
            Failure::other(format!(
                "cannot write the passphrase to standard output: {err}"
            ))
        })
}

/// `count` words drawn uniformly and independently, joined by hyphens.
fn generate(count: u8) -> Result<String, Failure> {
    let mut random = vec![0u8; 2 * usize::from(count)];
    getrandom::fill(&mut random)
        .map_err(|_| Failure::other(aeschat_core::session::Error::Randomness.to_string()))?;
    let words: Vec<&str> = random
        .chunks_exact(2)
        .map(|pair| {
            // The low 9 bits of a uniform 16-bit number are uniform: no modulo bias.
            let index = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % WORDS.len();
            WORDS[index]
        })
        .collect();
    Ok(words.join("-"))
}

#[cfg(test)]
mod tests {
    use super::{generate, WORDS};

    #[test]
    fn the_word_list_is_distinct_lowercase_and_short() {
        let mut sorted = WORDS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 512, "the word list has duplicates");
        for word in WORDS {
            assert!((3..=7).contains(&word.len()), "{word}");
            assert!(word.bytes().all(|b| b.is_ascii_lowercase()), "{word}");
        }
    }

    #[test]
    fn a_passphrase_has_the_requested_number_of_listed_words() {
        let passphrase = generate(5).unwrap();
        let words: Vec<&str> = passphrase.split('-').collect();
        assert_eq!(words.len(), 5);
        assert!(words.iter().all(|word| WORDS.contains(word)));
        assert_ne!(generate(5).unwrap(), passphrase, "two draws should differ");
    }
}
