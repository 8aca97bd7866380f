//! Fuzzes the EXI decoders of every schema set (documents and fragments) and the typed -2
//! message layer. Anything decoded must re-encode; nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pnc_exi::{Schema, decode_document, decode_fragment_all, encode_document, encode_fragment};

fuzz_target!(|data: &[u8]| {
    for s in [Schema::Iso2, Schema::Iso20, Schema::XmlDsig, Schema::AppProtocol] {
        if let Ok(e) = decode_document(s, data) {
            let _ = encode_document(s, &e);
        }
        if let Ok(v) = decode_fragment_all(s, data) {
            for e in &v {
                let _ = encode_fragment(s, e);
            }
        }
    }
    let _ = pnc_exi::iso2::V2gMessage::decode(data);
});
