//! Reading quotes from files: binary, hex or base64, detected from the content.

use anyhow::{Context, Result, bail};
use base64::Engine;

/// How a quote file was encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Binary,
    Hex,
    Base64,
}

impl Encoding {
    pub fn name(self) -> &'static str {
        match self {
            Encoding::Binary => "binary",
            Encoding::Hex => "hex",
            Encoding::Base64 => "base64",
        }
    }
}

/// Decodes file content into quote bytes. A quote starts with a little-endian version (`03 00`,
/// `04 00`, ...), which is never printable text, so printable content is text: hex when every
/// character is a hex digit (an optional `0x` prefix and whitespace allowed), otherwise base64
/// (standard or URL-safe alphabet, padding optional).
pub fn decode_quote_bytes(content: &[u8]) -> Result<(Vec<u8>, Encoding)> {
    if content.is_empty() {
        bail!("the file is empty");
    }
    let printable = content
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if !printable {
        return Ok((content.to_vec(), Encoding::Binary));
    }
    let text: Vec<u8> = content
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if text.is_empty() {
        bail!("the file holds only whitespace");
    }
    let hex_text = text
        .strip_prefix(b"0x")
        .or_else(|| text.strip_prefix(b"0X"))
        .unwrap_or(&text);
    if hex_text.iter().all(u8::is_ascii_hexdigit) {
        let bytes = hex::decode(hex_text).context("not a quote: odd number of hex digits")?;
        return Ok((bytes, Encoding::Hex));
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    for engine in engines {
        if let Ok(bytes) = engine.decode(&text) {
            return Ok((bytes, Encoding::Base64));
        }
    }
    bail!("not a quote: the file is text but neither hex nor base64")
}

/// Reads and decodes a quote file.
pub fn read_quote_file(path: &std::path::Path) -> Result<(Vec<u8>, Encoding)> {
    let content = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    decode_quote_bytes(&content).with_context(|| path.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_each_encoding() {
        let quote = [3u8, 0, 2, 0, 0, 0, 0xff, 0x10];
        assert_eq!(
            decode_quote_bytes(&quote).unwrap(),
            (quote.to_vec(), Encoding::Binary)
        );
        let hex = format!("0x{}\n", hex::encode(quote));
        assert_eq!(
            decode_quote_bytes(hex.as_bytes()).unwrap(),
            (quote.to_vec(), Encoding::Hex)
        );
        let b64 = base64::engine::general_purpose::STANDARD.encode(quote);
        assert_eq!(
            decode_quote_bytes(b64.as_bytes()).unwrap(),
            (quote.to_vec(), Encoding::Base64)
        );
        let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([0xfb, 0xff, 0xfe, 3]);
        assert_eq!(
            decode_quote_bytes(url.as_bytes()).unwrap().1,
            Encoding::Base64
        );
    }

    #[test]
    fn rejects_empty_and_non_encodings() {
        assert!(decode_quote_bytes(b"").is_err());
        assert!(decode_quote_bytes(b" \n").is_err());
        assert!(decode_quote_bytes(b"abc").is_err());
        assert!(decode_quote_bytes(b"hello world!").is_err());
    }
}
