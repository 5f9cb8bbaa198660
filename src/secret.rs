//! A resolved secret value: the config's references (`${env:…}`, `${file:…}`,
//! `${credential:…}`) resolve to it, the HTTP client redacts it from every message. Below every
//! other module; no I/O.

use std::fmt;

/// A resolved secret. Its `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret obtained at run time (an IAM token).
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}
