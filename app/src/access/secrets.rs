//! Random tokens and their hashes. A token is a prefix and 256 random bits in hex; only
//! its SHA-256 is stored, so a leaked table reveals no usable secret.

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};
use std::fmt::Write;

/// A fresh token with `prefix` and the SHA-256 to store.
pub(crate) fn new_token(prefix: &str) -> (String, Vec<u8>) {
    let bytes = random_bytes::<32>();
    let mut token = String::with_capacity(prefix.len() + 64);
    token.push_str(prefix);
    for byte in bytes {
        let _ = write!(token, "{byte:02x}");
    }
    let hash = sha256(&token);
    (token, hash)
}

/// SHA-256 of a token as given.
pub(crate) fn sha256(token: &str) -> Vec<u8> {
    digest(&SHA256, token.as_bytes()).as_ref().to_vec()
}

/// `N` bytes from the operating system's secure generator.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random generator failed");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_prefixed_random_and_stored_as_their_hash() {
        let (a, hash_a) = new_token("lrk_");
        let (b, _) = new_token("lrk_");
        assert!(a.starts_with("lrk_") && a.len() == 4 + 64);
        assert_ne!(a, b);
        assert_eq!(hash_a, sha256(&a));
        assert_eq!(hash_a.len(), 32);
    }
}
