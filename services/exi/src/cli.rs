//! `pnc exi decode|encode`: the library side of the CLI (the `pnc` binary dispatches here).
//!
//! ```text
//! pnc exi decode --schema iso-2|iso-20|xmldsig|app [--fragment] [--base64] [FILE|-]   # prints XML
//! pnc exi encode --schema iso-2|iso-20|xmldsig|app [--fragment] [--base64] [FILE|-]   # writes EXI
//! ```
//! `--base64` input tolerates surrounding whitespace/newlines (an OCPP `exiRequest` pasted as
//! is); an 8-byte V2GTP header (`01 FE 80 01` + length) is stripped if present.

use crate::{Schema, decode_document, decode_fragment_all, encode_document, encode_fragment};
use base64::Engine as _;
use std::io::{Read, Write};
use std::process::ExitCode;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum ExiArgs {
    /// Decode EXI (binary or --base64) to XML on stdout
    Decode(CodecArgs),
    /// Encode XML to EXI on stdout (binary, or text with --base64)
    Encode(CodecArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct CodecArgs {
    /// Schema set: iso-2, iso-20, xmldsig, app
    #[arg(long, value_parser = parse_schema)]
    pub schema: Schema,
    /// EXI fragment (digest inputs, SignedInfo) instead of a document
    #[arg(long)]
    pub fragment: bool,
    /// EXI as base64 text
    #[arg(long)]
    pub base64: bool,
    /// Input file, or - for stdin
    #[arg(default_value = "-")]
    pub input: String,
}

fn parse_schema(s: &str) -> Result<Schema, String> {
    s.parse()
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("cannot read {0}: {1}")]
    Io(String, std::io::Error),
    #[error("input is not valid base64: {0}")]
    Base64(String),
    #[error("EXI: {0}")]
    Exi(#[from] crate::ExiError),
    #[error("XML: {0}")]
    Xml(#[from] crate::xml::XmlError),
    #[error("input is not UTF-8 text")]
    Utf8,
}

/// Strips an 8-byte V2GTP header (version 0x01, inverse 0xFE, payload type 0x8001 = EXI,
/// big-endian length) when its length field matches the rest.
pub fn strip_v2gtp(b: &[u8]) -> &[u8] {
    if b.len() >= 8 && b[0] == 0x01 && b[1] == 0xFE && b[2] == 0x80 && b[3] == 0x01 {
        let len = u32::from_be_bytes([b[4], b[5], b[6], b[7]]) as usize;
        if len == b.len() - 8 {
            return &b[8..];
        }
    }
    b
}

/// Turns raw input into EXI bytes (base64 text or binary; V2GTP header stripped).
pub fn exi_input(input: &[u8], base64: bool) -> Result<Vec<u8>, CliError> {
    let raw = if base64 {
        let text: Vec<u8> = input
            .iter()
            .copied()
            .filter(|c| !c.is_ascii_whitespace())
            .collect();
        // tolerate a JSON-quoted string
        let text = text
            .strip_prefix(b"\"")
            .and_then(|t| t.strip_suffix(b"\""))
            .unwrap_or(&text);
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| CliError::Base64(e.to_string()))?
    } else {
        input.to_vec()
    };
    Ok(strip_v2gtp(&raw).to_vec())
}

/// `decode`: EXI input -> XML text.
pub fn decode_to_xml(
    schema: Schema,
    fragment: bool,
    base64: bool,
    input: &[u8],
) -> Result<String, CliError> {
    let exi = exi_input(input, base64)?;
    if fragment {
        let els = decode_fragment_all(schema, &exi)?;
        Ok(els.iter().map(crate::xml::write_pretty).collect())
    } else {
        Ok(crate::xml::write_pretty(&decode_document(schema, &exi)?))
    }
}

/// `encode`: XML text -> EXI bytes (or base64 text with a trailing newline).
pub fn encode_from_xml(
    schema: Schema,
    fragment: bool,
    base64: bool,
    input: &[u8],
) -> Result<Vec<u8>, CliError> {
    let text = std::str::from_utf8(input).map_err(|_| CliError::Utf8)?;
    let tree = crate::xml::parse(text.trim_start_matches('\u{feff}'))?;
    let exi = if fragment {
        encode_fragment(schema, &tree)?
    } else {
        encode_document(schema, &tree)?
    };
    if base64 {
        let mut s = base64::engine::general_purpose::STANDARD
            .encode(&exi)
            .into_bytes();
        s.push(b'\n');
        Ok(s)
    } else {
        Ok(exi)
    }
}

fn read_input(path: &str) -> Result<Vec<u8>, CliError> {
    if path == "-" {
        let mut v = vec![];
        std::io::stdin()
            .read_to_end(&mut v)
            .map_err(|e| CliError::Io("stdin".into(), e))?;
        Ok(v)
    } else {
        std::fs::read(path).map_err(|e| CliError::Io(path.into(), e))
    }
}

/// Runs a subcommand; errors go to stderr with exit code 1.
pub fn run(args: ExiArgs) -> ExitCode {
    let result = match &args {
        ExiArgs::Decode(a) => read_input(&a.input)
            .and_then(|i| decode_to_xml(a.schema, a.fragment, a.base64, &i))
            .map(String::into_bytes),
        ExiArgs::Encode(a) => {
            read_input(&a.input).and_then(|i| encode_from_xml(a.schema, a.fragment, a.base64, &i))
        }
    };
    match result {
        Ok(out) => {
            let mut so = std::io::stdout().lock();
            if so.write_all(&out).and_then(|_| so.flush()).is_err() {
                return ExitCode::from(1);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("pnc exi: {e}");
            ExitCode::from(1)
        }
    }
}
