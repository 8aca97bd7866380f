//! Helpers to read typed values out of a decoded [`Element`] tree.

use crate::codec::base64_lenient;

/// A Rust enum over an XSD string enumeration (as_str / FromStr / Display / ALL).
macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident = $s:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum $name { $($v),* }
        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$v),*];
            pub fn as_str(self) -> &'static str { match self { $($name::$v => $s),* } }
        }
        impl std::str::FromStr for $name {
            type Err = ExiError;
            fn from_str(s: &str) -> Result<Self, ExiError> {
                match s.trim() { $($s => Ok($name::$v),)* _ => Err(ExiError::Structure(format!("unknown {} {s:?}", stringify!($name)))) }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}
pub(crate) use string_enum;

use crate::error::ExiError;
use crate::tree::Element;

pub(crate) fn child<'a>(e: &'a Element, local: &str) -> Result<&'a Element, ExiError> {
    e.find(local)
        .ok_or_else(|| ExiError::Structure(format!("{} lacks {local}", e.name.local)))
}

pub(crate) fn b64(e: &Element) -> Result<Vec<u8>, ExiError> {
    base64_lenient(&e.text_content())
        .ok_or_else(|| ExiError::Structure(format!("{} is not base64", e.name.local)))
}

pub(crate) fn hexbin(e: &Element) -> Result<Vec<u8>, ExiError> {
    let t: String = e
        .text_content()
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    hex::decode(t).map_err(|_| ExiError::Structure(format!("{} is not hex", e.name.local)))
}

pub(crate) fn attr(e: &Element, local: &str) -> Option<String> {
    e.attr_value(local).map(str::to_string)
}
