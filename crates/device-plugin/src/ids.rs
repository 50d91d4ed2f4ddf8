//! Compact device ids: bijective base 64 over `[0-9A-Za-z_-]`.
//!
//! Index 0..64 gets one character, the next 4 096 indices two, the next 262 144 three: the shortest
//! possible ids from a 64-character alphabet, and every string over the alphabet of length 1..=3
//! names exactly one index. 266 304 indices fit in three characters, more than the 262 144 MiB of
//! the largest Azure EPC (256 GiB). Longer ids are produced for larger indices, but the
//! [ListAndWatch budget](crate::listing) caps the device count well before that.

/// The id alphabet, in digit order.
pub const ALPHABET: &[u8; 64] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_";
const BASE: u64 = 64;
/// Longest id accepted by [`decode`] (kubelet allows 63 characters; we never need more than 6).
pub const MAX_ID_LEN: usize = 6;

fn digit_value(byte: u8) -> Option<u64> {
    let value = match byte {
        b'0'..=b'9' => byte - b'0',
        b'A'..=b'Z' => byte - b'A' + 10,
        b'a'..=b'z' => byte - b'a' + 36,
        b'-' => 62,
        b'_' => 63,
        _ => return None,
    };
    Some(u64::from(value))
}

/// Number of characters of the id of `index`.
pub fn encoded_len(index: u64) -> usize {
    let mut len = 1;
    let mut first = 0u64; // first index of ids of length `len`
    let mut span = BASE; // number of ids of length `len`
    while index >= first.saturating_add(span) {
        first = first.saturating_add(span);
        span = span.saturating_mul(BASE);
        len += 1;
    }
    len
}

/// The id of `index`.
pub fn encode(index: u64) -> String {
    // Find the id length and the first index of that length in one pass.
    let mut first = 0u64;
    let mut span = BASE;
    let mut len = 1;
    while index - first >= span {
        first += span;
        span = span.saturating_mul(BASE);
        len += 1;
    }
    let mut rest = index - first;
    // Digits are written from the end of a stack buffer (a u64 needs at most 11).
    let mut digits = [0u8; 11];
    let mut pos = digits.len();
    for _ in 0..len {
        pos -= 1;
        digits[pos] = ALPHABET[(rest % BASE) as usize];
        rest /= BASE;
    }
    // The alphabet is ASCII, so this never replaces anything.
    String::from_utf8_lossy(&digits[pos..]).into_owned()
}

/// The index named by `id`, or `None` if `id` is not a well-formed compact id.
pub fn decode(id: &str) -> Option<u64> {
    let bytes = id.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_ID_LEN {
        return None;
    }
    let mut first = 0u64;
    let mut span = BASE;
    for _ in 1..bytes.len() {
        first += span;
        span *= BASE;
    }
    let mut offset = 0u64;
    for &byte in bytes {
        offset = offset * BASE + digit_value(byte)?;
    }
    Some(first + offset)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_of_each_length() {
        assert_eq!(encode(0), "0");
        assert_eq!(encode(63), "_");
        assert_eq!(encode(64), "00");
        assert_eq!(encode(64 + 4095), "__");
        assert_eq!(encode(64 + 4096), "000");
        assert_eq!(encode(64 + 4096 + 262_143), "___");
        assert_eq!(encode(64 + 4096 + 262_144), "0000");
        assert_eq!(encoded_len(262_143), 3);
        assert_eq!(encoded_len(266_303), 3);
        assert_eq!(encoded_len(266_304), 4);
    }

    #[test]
    fn round_trip_and_lengths_never_shrink() {
        let mut previous_len = 1;
        for index in 0..300_000u64 {
            let id = encode(index);
            assert_eq!(decode(&id), Some(index), "{id}");
            assert_eq!(id.len(), encoded_len(index));
            assert!(id.len() >= previous_len);
            previous_len = id.len();
        }
        for index in [266_303u64, 266_304, 17_043_520, 1 << 30] {
            assert_eq!(decode(&encode(index)), Some(index));
        }
    }

    #[test]
    fn ids_use_only_the_safe_alphabet() {
        for index in (0..300_000u64).step_by(7) {
            assert!(encode(index).bytes().all(|b| ALPHABET.contains(&b)));
        }
    }

    #[test]
    fn malformed_ids_are_rejected() {
        for bad in [
            "",
            " ",
            "1 ",
            "a.b",
            "sgx-epc-1",
            "é",
            "0000000",
            "12/3",
            "+",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
