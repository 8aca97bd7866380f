//! CLI behaviour (`pnc exi decode|encode`) through the library functions and `run`.

use base64::Engine as _;
use clap::Parser;
use pnc_exi::Schema;
use pnc_exi::cli::{self, ExiArgs};
use std::process::ExitCode;

fn hubject_req() -> Vec<u8> {
    std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/vectors/hubject-opcp/hubject_install_req.exi"),
    )
    .unwrap()
}

#[derive(Parser)]
struct Top {
    #[command(subcommand)]
    cmd: ExiArgs,
}

#[test]
fn pasted_ocpp_exi_request_with_v2gtp_header_decodes() {
    let exi = hubject_req();
    let mut framed = vec![0x01, 0xFE, 0x80, 0x01];
    framed.extend((exi.len() as u32).to_be_bytes());
    framed.extend(&exi);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&framed);
    // wrapped over lines with surrounding whitespace, as pasted
    let wrapped: String = format!(
        "\n  {}\n\n",
        b64.as_bytes()
            .chunks(76)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join("\n")
    );
    let xml = cli::decode_to_xml(Schema::Iso2, false, true, wrapped.as_bytes()).unwrap();
    assert!(xml.contains("CertificateInstallationReq"));
    assert!(xml.contains("69FC09895168C8B2"));
    // and back: identical EXI
    let again = cli::encode_from_xml(Schema::Iso2, false, false, xml.as_bytes()).unwrap();
    assert_eq!(again, exi);
    let b64_again = cli::encode_from_xml(Schema::Iso2, false, true, xml.as_bytes()).unwrap();
    assert_eq!(
        String::from_utf8(b64_again).unwrap().trim(),
        base64::engine::general_purpose::STANDARD.encode(&exi)
    );
}

#[test]
fn fragment_encode_matches_emaid_vector() {
    let x = r#"<b:eMAID xmlns:b="urn:iso:15118:2:2013:MsgBody" xmlns:t="urn:iso:15118:2:2013:MsgDataTypes" t:Id="id4">DEABCC123ABC56</b:eMAID>"#;
    let out = cli::encode_from_xml(Schema::Iso2, true, false, x.as_bytes()).unwrap();
    assert_eq!(
        hex::encode_upper(&out),
        "80EC0202B4B21A40041111505090D0CC4C8CD05090CD4DBD3D00"
    );
    let xml = cli::decode_to_xml(Schema::Iso2, true, false, &out).unwrap();
    assert!(xml.contains("DEABCC123ABC56"));
}

#[test]
fn run_with_files_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("req.exi");
    std::fs::write(&f, hubject_req()).unwrap();
    let top =
        Top::try_parse_from(["exi", "decode", "--schema", "iso-2", f.to_str().unwrap()]).unwrap();
    assert_eq!(cli::run(top.cmd), ExitCode::SUCCESS);
    // garbage -> exit code 1, no panic
    let g = dir.path().join("bad.exi");
    std::fs::write(&g, [0x80, 0xFF, 0x00]).unwrap();
    let top =
        Top::try_parse_from(["exi", "decode", "--schema", "iso-2", g.to_str().unwrap()]).unwrap();
    assert_eq!(cli::run(top.cmd), ExitCode::from(1));
    let top = Top::try_parse_from([
        "exi",
        "encode",
        "--schema",
        "app",
        "--base64",
        dir.path().join("missing.xml").to_str().unwrap(),
    ])
    .unwrap();
    assert_eq!(cli::run(top.cmd), ExitCode::from(1));
    assert!(Top::try_parse_from(["exi", "decode", "--schema", "iso-3"]).is_err());
    // wrong header is a typed error
    assert!(cli::decode_to_xml(Schema::Iso2, false, false, &[0x00, 0x01]).is_err());
    assert!(cli::decode_to_xml(Schema::Iso2, false, true, b"!!notbase64").is_err());
}
