//! SHA-256 digests (ring, already in the tree through rustls) for the journal's policy file
//! hashes and the fingerprints that tie a reviewed plan to its policy; base64 and MD5 for
//! request headers.

/// The lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Standard base64 (RFC 4648, with padding): HTTP Basic credentials, S3's `Content-MD5`.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The base64 MD5 of `bytes`, as S3's `Content-MD5` header wants it.
pub fn md5_base64(bytes: &[u8]) -> String {
    base64(&md5::compute(bytes).0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_digests() {
        assert_eq!(
            super::sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            super::sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn base64_as_rfc_4648() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"key:secret"), "a2V5OnNlY3JldA==");
    }

    #[test]
    fn content_md5() {
        // The empty body and "abc", as `openssl md5 -binary | base64` gives them.
        assert_eq!(super::md5_base64(b""), "1B2M2Y8AsgTpgAmY7PhCfg==");
        assert_eq!(super::md5_base64(b"abc"), "kAFQmDzST7DWlj99KOF/cg==");
    }
}
