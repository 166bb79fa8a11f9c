//! Codes for meeting through a relay: `417-amber-coast-...`, a room number and words from the
//! built-in list. The room number is the meeting place, which the relay sees; the whole code
//! is the chat's password, which it does not. Each word adds 9 bits; the room number adds
//! nothing, since the relay (and anyone who asks it) can learn it.

use std::fmt::Write as _;

use aeschat_core::relay::MAX_ROOM;

use super::secret::SecretBytes;
use super::wordlist::WORDS;
use super::Failure;

/// Bits of entropy per word: the list has 2^9 words.
pub(super) const BITS_PER_WORD: u32 = 9;

/// Words in a new code: 27 bits. Enough because the code is a PAKE password (protocol 2): a
/// recording of the handshake, or the relay itself, has nothing to test guesses against, and
/// whoever joins the room gets one guess, which fails visibly on both sides and uses the room
/// up. One try in 2^27 (134 million) is the whole attack.
pub(super) const DEFAULT_CODE_WORDS: u8 = 3;

/// The fewest words a code may have: the default, since a shorter code would make a guess
/// likely enough to matter over many rooms.
pub(super) const MIN_CODE_WORDS: u8 = DEFAULT_CODE_WORDS;

/// The most words a code may have.
pub(super) const MAX_CODE_WORDS: u8 = 16;

/// A code as typed, checked: the room to join and the password.
pub(super) struct Code {
    pub(super) room: u32,
    pub(super) password: SecretBytes,
    pub(super) words: usize,
}

/// A new code for `room`: `words` words drawn uniformly from the operating system's generator.
pub(super) fn generate(room: u32, words: u8) -> Result<SecretBytes, Failure> {
    let mut random = SecretBytes::new(vec![0u8; 2 * usize::from(words)]);
    getrandom::fill(random.as_mut_vec())
        .map_err(|_| Failure::other(aeschat_core::session::Error::Randomness.to_string()))?;
    // Sized up front so the text never reallocates (which would leave a copy unwiped).
    let mut code = SecretBytes::with_capacity(8 + 8 * usize::from(words));
    let mut text = String::with_capacity(8);
    let _ = write!(text, "{room}");
    code.as_mut_vec().extend_from_slice(text.as_bytes());
    for pair in random.chunks_exact(2) {
        // The low 9 bits of a uniform 16-bit number are uniform: no modulo bias.
        let index = usize::from(u16::from_le_bytes([pair[0], pair[1]])) % WORDS.len();
        code.as_mut_vec().push(b'-');
        code.as_mut_vec().extend_from_slice(WORDS[index].as_bytes());
    }
    Ok(code)
}

/// Checks a typed code: a room number, then at least [`MIN_CODE_WORDS`] listed words, joined
/// by hyphens (spaces are taken as hyphens, capitals as small letters). The password is the
/// code in that normal form, so `417 Amber coast ...` and `417-amber-coast-...` agree.
pub(super) fn parse(typed: &str) -> Result<Code, Failure> {
    let normal = typed.trim().to_ascii_lowercase().replace(' ', "-");
    let mut parts = normal.split('-').filter(|part| !part.is_empty());
    let room_text = parts.next().ok_or_else(|| bad_code("the code is empty"))?;
    let room = room_text
        .parse::<u32>()
        .ok()
        .filter(|room| (1..=MAX_ROOM).contains(room))
        .filter(|_| room_text.bytes().all(|byte| byte.is_ascii_digit()))
        .ok_or_else(|| {
            bad_code(&format!(
                "a code starts with its room number (1 to {MAX_ROOM}), not \"{room_text}\""
            ))
        })?;
    let mut password = SecretBytes::with_capacity(normal.len());
    password
        .as_mut_vec()
        .extend_from_slice(room.to_string().as_bytes());
    let mut words = 0;
    for (position, word) in parts.enumerate() {
        if !WORDS.contains(&word) {
            let hint = match closest_word(word) {
                Some(close) => format!(" (did you mean \"{close}\"?)"),
                None => String::new(),
            };
            return Err(bad_code(&format!(
                "word {} of the code, \"{word}\", is not in aeschat's word list{hint}",
                position + 1
            )));
        }
        password.as_mut_vec().push(b'-');
        password.as_mut_vec().extend_from_slice(word.as_bytes());
        words += 1;
    }
    if words < usize::from(MIN_CODE_WORDS) {
        return Err(bad_code(&format!(
            "the code has {words} words after its room number; a code has at least \
             {MIN_CODE_WORDS}"
        )));
    }
    Ok(Code {
        room,
        password,
        words,
    })
}

fn bad_code(why: &str) -> Failure {
    Failure::usage(format!(
        "{why}: check the code, which looks like 417-amber-coast-... (a number, then words)"
    ))
}

/// The listed word nearest to `typed`, if one is a single slip away (one letter wrong, missing,
/// extra, or two swapped).
fn closest_word(typed: &str) -> Option<&'static str> {
    WORDS
        .iter()
        .copied()
        .find(|word| one_slip_apart(typed.as_bytes(), word.as_bytes()))
}

fn one_slip_apart(a: &[u8], b: &[u8]) -> bool {
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a_rest, b_rest) = (&a[prefix..], &b[prefix..]);
    match a_rest.len() as isize - b_rest.len() as isize {
        0 => {
            // One letter wrong, or two neighbours swapped.
            a_rest.get(1..) == b_rest.get(1..)
                || (a_rest.len() >= 2
                    && a_rest[0] == b_rest[1]
                    && a_rest[1] == b_rest[0]
                    && a_rest[2..] == b_rest[2..])
        }
        1 => a_rest.get(1..) == Some(b_rest),
        -1 => b_rest.get(1..) == Some(a_rest),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_code_parses_back_to_its_room_and_password() {
        let code = generate(417, 9).unwrap();
        let text = std::str::from_utf8(&code).unwrap().to_owned();
        assert!(text.starts_with("417-"), "{text}");
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.room, 417);
        assert_eq!(parsed.words, 9);
        assert_eq!(&*parsed.password, text.as_bytes());
        assert_ne!(
            &*generate(417, 9).unwrap(),
            text.as_bytes(),
            "two draws differ"
        );
    }

    #[test]
    fn spaces_and_capitals_give_the_same_password() {
        let a = parse("417-amber-coast-apple").unwrap();
        let b = parse("  417 Amber COAST  apple\n").unwrap();
        assert_eq!(&*a.password, &*b.password);
        assert_eq!(&*a.password, b"417-amber-coast-apple");
    }

    #[test]
    fn typos_are_named_with_a_suggestion() {
        let message = |typed: &str| parse(typed).err().unwrap().message().to_owned();
        assert!(message("417-ambr-coast-apple")
            .contains("\"ambr\", is not in aeschat's word list (did you mean \"amber\"?)"));
        assert!(message("417-amber-coast-appel").contains("did you mean \"apple\"?"));
        assert!(message("417-amber-coast-zzzzzz").contains("word 3 of the code"));
        assert!(message("amber-coast-apple").contains("starts with its room number"));
        assert!(message("0-amber-coast-apple").contains("starts with its room number"));
        assert!(message("1000000-amber-coast-apple").contains("starts with its room number"));
        assert!(message("+5-amber-coast-apple").contains("starts with its room number"));
        assert!(message("417-amber-coast").contains("has 2 words"));
        assert!(message("").contains("empty"));
        assert!(parse("417-amber-coast-apple").is_ok());
    }

    #[test]
    fn slips_are_one_edit() {
        assert!(one_slip_apart(b"ambr", b"amber"));
        assert!(one_slip_apart(b"amberr", b"amber"));
        assert!(one_slip_apart(b"ambar", b"amber"));
        assert!(one_slip_apart(b"mabre", b"mabre"));
        assert!(one_slip_apart(b"maber", b"amber"));
        assert!(!one_slip_apart(b"ambxx", b"amber"));
        assert!(!one_slip_apart(b"a", b"amber"));
    }
}
