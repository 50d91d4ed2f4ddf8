//! Kubernetes resource quantities (`5Mi`, `5242880`, `0.5Gi`, `1e6`, `128k`) as whole bytes, and
//! the canonical binary-SI form the API server prints (`5Mi`, `1536`, `1k`).
//!
//! The grammar is the API's: `[+-]` digits with an optional fraction, then one suffix – none, a
//! binary one (`Ki Mi Gi Ti Pi Ei`), a decimal one (`n u m k M G T P E`) or an exponent (`e3`,
//! `E-2`). A value that is not whole bytes is rounded up, as the API server's `Value()` does.
//! Arithmetic is exact (integers, no floating point) and checked: an out-of-range quantity is an
//! error, never a wrap or a panic. (The `kube_quantity` crate was not used: it parses through
//! `f64`, truncates `0.5Gi` to 0 bytes and can overflow on `100Ei`.)

/// Why a string is not a usable byte quantity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuantityError {
    /// Not of the Kubernetes quantity form.
    #[error("{0:?} is not a Kubernetes quantity")]
    Malformed(String),
    /// Negative.
    #[error("{0:?} is negative")]
    Negative(String),
    /// More than 2^64 - 1 bytes, or too many digits to compute exactly.
    #[error("{0:?} is out of range")]
    OutOfRange(String),
}

/// At most this many significant digits are accepted (10^38 < 2^128).
const MAX_DIGITS: usize = 38;

/// Parses `text` as a quantity and returns it in whole bytes, rounded up.
pub fn parse_bytes(text: &str) -> Result<u64, QuantityError> {
    let malformed = || QuantityError::Malformed(text.to_owned());
    let range = || QuantityError::OutOfRange(text.to_owned());
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let number_len = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_len);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(malformed());
    }
    // The value is `mantissa / 10^fraction.len()`, times the suffix's factor.
    let digits = format!("{whole}{fraction}");
    let digits = digits.trim_start_matches('0');
    if digits.len() > MAX_DIGITS {
        return Err(range());
    }
    let mut numerator: u128 = if digits.is_empty() {
        0
    } else {
        digits.parse().map_err(|_| malformed())?
    };
    let mut decimal_exponent = -i64::try_from(fraction.len()).map_err(|_| range())?;
    match suffix {
        "" => {}
        "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" => {
            let power = match suffix {
                "Ki" => 10,
                "Mi" => 20,
                "Gi" => 30,
                "Ti" => 40,
                "Pi" => 50,
                _ => 60,
            };
            numerator = numerator.checked_mul(1u128 << power).ok_or_else(range)?;
        }
        "n" => decimal_exponent -= 9,
        "u" => decimal_exponent -= 6,
        "m" => decimal_exponent -= 3,
        "k" => decimal_exponent += 3,
        "M" => decimal_exponent += 6,
        "G" => decimal_exponent += 9,
        "T" => decimal_exponent += 12,
        "P" => decimal_exponent += 15,
        "E" => decimal_exponent += 18,
        exponent if exponent.starts_with(['e', 'E']) => {
            let e = &exponent[1..];
            let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return Err(malformed());
            }
            let e: i64 = e.parse().map_err(|_| range())?;
            decimal_exponent = decimal_exponent.checked_add(e).ok_or_else(range)?;
        }
        _ => return Err(malformed()),
    }
    if numerator == 0 {
        return Ok(0);
    }
    if negative {
        return Err(QuantityError::Negative(text.to_owned()));
    }
    let bytes = if decimal_exponent >= 0 {
        let scale = u32::try_from(decimal_exponent)
            .ok()
            .and_then(|e| 10u128.checked_pow(e))
            .ok_or_else(range)?;
        numerator.checked_mul(scale).ok_or_else(range)?
    } else {
        match u32::try_from(-decimal_exponent)
            .ok()
            .and_then(|e| 10u128.checked_pow(e))
        {
            Some(scale) => numerator.div_ceil(scale),
            // More than 10^38 below one: a positive amount smaller than a byte rounds up to 1.
            None => 1,
        }
    };
    u64::try_from(bytes).map_err(|_| range())
}

/// `bytes` as the API server prints a binary-SI quantity: below 1024 in decimal-SI form (`1k`,
/// `500`), else with the largest binary suffix that divides it (`5Mi`, `1536`).
pub fn format_binary_si(bytes: u64) -> String {
    const SUFFIXES: [&str; 7] = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"];
    if bytes < 1024 {
        return match bytes {
            0 => "0".to_owned(),
            b if b.is_multiple_of(1000) => format!("{}k", b / 1000),
            b => b.to_string(),
        };
    }
    let mut value = bytes;
    let mut index = 0;
    while value.is_multiple_of(1024) && index + 1 < SUFFIXES.len() {
        value /= 1024;
        index += 1;
    }
    format!("{value}{}", SUFFIXES[index])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_suffix_form_is_whole_bytes() {
        for (text, bytes) in [
            ("5Mi", 5 << 20),
            ("5242880", 5_242_880),
            ("0.5Gi", 512 << 20),
            (".5Ki", 512),
            ("1.", 1),
            ("+1Ki", 1024),
            ("128k", 128_000),
            ("1M", 1_000_000),
            ("1e6", 1_000_000),
            ("1E3", 1000),
            ("25e-1", 3),
            ("1500m", 2),
            ("1m", 1),
            ("1n", 1),
            ("0", 0),
            ("-0", 0),
            ("0.0Mi", 0),
            ("16Ei", u64::MAX),
            ("1.5Ti", 3 << 39),
            ("1G", 1_000_000_000),
            ("007", 7),
        ] {
            let got = parse_bytes(text);
            if text == "16Ei" {
                assert!(matches!(got, Err(QuantityError::OutOfRange(_))), "{text}");
            } else {
                assert_eq!(got, Ok(bytes), "{text}");
            }
        }
        assert_eq!(parse_bytes("15Ei"), Ok(15 << 60));
        assert_eq!(parse_bytes("1e-40"), Ok(1));
    }

    #[test]
    fn bad_quantities_are_errors() {
        for text in [
            "", "Mi", "5 Mi", "5MiB", "5mi", "5KI", "1.2.3", ".", "e3", "1e", "1e+", "1ee3",
            "0x10", "abc", "5Mi ", " 5Mi", "--1", "1e3.5",
        ] {
            assert!(
                matches!(parse_bytes(text), Err(QuantityError::Malformed(_))),
                "{text:?} -> {:?}",
                parse_bytes(text)
            );
        }
        assert!(matches!(
            parse_bytes("-5Mi"),
            Err(QuantityError::Negative(_))
        ));
        for text in [
            "100Ei",
            "1e40",
            "99999999999999999999999999999999999999999",
            "1e99999999999999999999",
        ] {
            assert!(
                matches!(parse_bytes(text), Err(QuantityError::OutOfRange(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn binary_si_is_printed_as_the_api_server_does() {
        for (bytes, text) in [
            (0, "0"),
            (1, "1"),
            (500, "500"),
            (1000, "1k"),
            (1023, "1023"),
            (1024, "1Ki"),
            (1536, "1536"),
            (5 << 20, "5Mi"),
            (98_566_144, "94Mi"),
            (3 << 30, "3Gi"),
            (1 << 60, "1Ei"),
            (u64::MAX, "18446744073709551615"),
        ] {
            assert_eq!(format_binary_si(bytes), text, "{bytes}");
            assert_eq!(parse_bytes(text), Ok(bytes), "{text}");
        }
    }
}
