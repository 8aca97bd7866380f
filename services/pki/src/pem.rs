//! PEM encoding (RFC 7468) without a dependency.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// Encodes `der` as a PEM block with 64-character lines.
pub fn encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Decodes every block with `label`; malformed blocks are skipped.
pub fn decode_all(text: &[u8], label: &str) -> Vec<Vec<u8>> {
    let text = String::from_utf8_lossy(text);
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut blocks = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find(&begin) {
        let after_begin = &rest[start + begin.len()..];
        let Some(stop) = after_begin.find(&end) else {
            break;
        };
        let body: String = after_begin[..stop]
            .chars()
            .filter(|character| !character.is_whitespace())
            .collect();
        if let Ok(der) = STANDARD.decode(body) {
            blocks.push(der);
        }
        rest = &after_begin[stop + end.len()..];
    }
    blocks
}
