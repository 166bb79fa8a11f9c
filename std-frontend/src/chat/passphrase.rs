//! `aeschat passphrase`: a strong random passphrase from the built-in word list.
//!
//! Written for protocol 1, where anyone who recorded a conversation could test password guesses
//! against it offline, as fast as their hardware ran PBKDF2: the password had to be too strong
//! to guess, not merely hard to guess by hand. Nine words from 512 give 81 bits: at a billion
//! guesses a second, finding it would take tens of millions of years. Protocol 2 (CPace) leaves
//! recordings nothing to test guesses against; how far to relax these rules, and the help and
//! warnings that still speak of offline guessing, is still to decide
//! (docs/PROTOCOL2-PROGRESS.md).

use std::io::Write;
use std::process::ExitCode;

use super::wordlist::WORDS;
use super::{terminal, Failure};

/// Bits of entropy per word: the list has 2^9 words.
const BITS_PER_WORD: u32 = 9;
/// The default length: 9 words, 81 bits.
const DEFAULT_WORDS: u8 = 9;
/// The shortest passphrase offered: below 9 words (81 bits) it is no longer comfortably out of
/// reach of a well-funded offline attack.
const MIN_WORDS: u8 = 9;

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
entropy: the default 9 words give 81 bits, enough that a recorded conversation cannot be \
broken by guessing the password offline.";

/// Arguments of `aeschat passphrase`.
#[derive(clap::Args)]
#[command(
    after_help = PASSPHRASE_EXAMPLES,
    after_long_help = format!("{PASSPHRASE_DETAILS}\n\n{PASSPHRASE_EXAMPLES}"),
)]
pub struct PassphraseArgs {
    /// How many words (9 bits of entropy each; 9 words = 81 bits).
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
        let passphrase = generate(9).unwrap();
        let words: Vec<&str> = passphrase.split('-').collect();
        assert_eq!(words.len(), 9);
        assert!(words.iter().all(|word| WORDS.contains(word)));
        assert_ne!(generate(9).unwrap(), passphrase, "two draws should differ");
    }
}
