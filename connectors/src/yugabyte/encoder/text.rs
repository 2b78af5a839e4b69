//! Strings into the types PostgreSQL reads from text: uuid, inet/cidr, json/jsonb, varchar(n).
//!
//! ```text
//! uuid  = 16 bytes
//! inet  = family:u8 (2 IPv4, 3 IPv6) bits:u8 is_cidr:u8 len:u8 address[len]
//! jsonb = version:u8 = 1, then the JSON text
//! ```

use std::net::IpAddr;

/// `name` holds at most 63 bytes (NAMEDATALEN − 1); longer input fails the whole COPY.
pub const NAME_MAX_BYTES: usize = 63;

/// Text that PostgreSQL cannot store: it has no NUL in text values. `max_chars` is `varchar(n)`'s
/// or `char(n)`'s n. For `name`, see [`check_name`].
#[inline]
pub fn check_text(s: &str, max_chars: Option<usize>) -> Result<(), String> {
    if s.as_bytes().contains(&0) {
        return Err("text contains a NUL byte, which PostgreSQL cannot store".into());
    }
    if let Some(max) = max_chars {
        // Bytes bound characters from above, so only long strings need counting.
        if s.len() > max && s.chars().count() > max {
            return Err(format!(
                "{} characters do not fit in a column of length {max}",
                s.chars().count()
            ));
        }
    }
    Ok(())
}

/// A `name` value: text of at most [`NAME_MAX_BYTES`] bytes.
pub fn check_name(s: &str) -> Result<(), String> {
    check_text(s, None)?;
    if s.len() > NAME_MAX_BYTES {
        return Err(format!(
            "{} bytes do not fit in a name ({NAME_MAX_BYTES} at most)",
            s.len()
        ));
    }
    Ok(())
}

/// Parses the hyphenated form (also braced, and the 32-digit bare form) into 16 bytes.
pub fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let s = s
        .strip_prefix('{')
        .and_then(|s| s.strip_suffix('}'))
        .unwrap_or(s);
    let hex = s.as_bytes();
    if !(hex.len() == 36 || hex.len() == 32) {
        return None;
    }
    let mut out = [0u8; 16];
    let mut n = 0usize;
    let mut i = 0;
    while i < hex.len() {
        if hex[i] == b'-' && hex.len() == 36 && matches!(i, 8 | 13 | 18 | 23) {
            i += 1;
            continue;
        }
        let hi = (hex[i] as char).to_digit(16)?;
        let lo = (*hex.get(i + 1)? as char).to_digit(16)?;
        *out.get_mut(n)? = (hi * 16 + lo) as u8;
        n += 1;
        i += 2;
    }
    (n == 16).then_some(out)
}

/// Writes `s` (`address[/bits]`) as inet or cidr. A cidr must spell its mask and have no bits set
/// right of it.
pub fn put_inet(out: &mut Vec<u8>, s: &str, cidr: bool) -> Result<(), String> {
    let bad = || format!("{s:?} is not an {}", if cidr { "cidr" } else { "inet" });
    let (addr, bits) = match s.trim().split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u8>().map_err(|_| bad())?)),
        None => (s.trim(), None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let (family, max, bytes): (u8, u8, [u8; 16]) = match addr {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            (2, 32, b)
        }
        IpAddr::V6(a) => (3, 128, a.octets()),
    };
    let bits = match bits {
        Some(b) if b <= max => b,
        Some(_) => return Err(bad()),
        None if cidr => return Err(format!("{s:?}: a cidr needs an explicit /mask")),
        None => max,
    };
    let len = usize::from(max / 8);
    if cidr {
        let host_bits_set = (0..usize::from(max))
            .any(|k| k >= usize::from(bits) && bytes[k / 8] & (0x80 >> (k % 8)) != 0);
        if host_bits_set {
            return Err(format!(
                "{s:?} has bits set to the right of its mask, which cidr refuses"
            ));
        }
    }
    out.extend_from_slice(&[family, bits, u8::from(cidr), len as u8]);
    out.extend_from_slice(&bytes[..len]);
    Ok(())
}

/// Checks that `s` is one JSON document, as PostgreSQL's json/jsonb input would. jsonb also
/// refuses `\u0000`.
pub fn check_json(s: &str, jsonb: bool) -> Result<(), String> {
    if s.as_bytes().contains(&0) {
        return Err("JSON text contains a NUL byte".into());
    }
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(s) {
        return Err(format!("not valid JSON: {e}"));
    }
    if jsonb && s.contains("\\u0000") {
        return Err("jsonb cannot hold \\u0000".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_and_cidr_are_byte_exact() {
        let mut out = Vec::new();
        put_inet(&mut out, "192.168.0.1", false).expect("inet");
        assert_eq!(out, [2, 32, 0, 4, 192, 168, 0, 1]);
        out.clear();
        put_inet(&mut out, "10.1.0.0/16", true).expect("cidr");
        assert_eq!(out, [2, 16, 1, 4, 10, 1, 0, 0]);
        out.clear();
        put_inet(&mut out, "::1/64", false).expect("inet6");
        assert_eq!(out[..4], [3, 64, 0, 16]);
        assert_eq!(out[19], 1);
        assert!(put_inet(&mut out, "10.1.0.1/16", true).is_err());
        assert!(put_inet(&mut out, "10.1.0.0", true).is_err());
        assert!(put_inet(&mut out, "10.1.0.0/33", false).is_err());
        assert!(put_inet(&mut out, "host", false).is_err());
    }

    #[test]
    fn uuids_parse_from_text() {
        assert_eq!(
            parse_uuid("00112233-4455-6677-8899-aabbccddeeff"),
            Some([
                0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd,
                0xee, 0xff
            ])
        );
        assert_eq!(
            parse_uuid("{00112233445566778899AABBCCDDEEFF}").map(|u| u[15]),
            Some(0xff)
        );
        assert_eq!(parse_uuid("0011-2233"), None);
        assert_eq!(parse_uuid("zz112233-4455-6677-8899-aabbccddeeff"), None);
    }

    #[test]
    fn json_and_text_checks() {
        assert!(check_json("{\"a\": [1, 2.5, null]}", true).is_ok());
        assert!(check_json("{\"a\": ", false).is_err());
        assert!(check_json("\"\\u0000\"", true).is_err());
        assert!(check_json("\"\\u0000\"", false).is_ok());
        assert!(check_text("héllo", Some(5)).is_ok());
        assert!(check_text("héllo!", Some(5)).is_err());
        assert!(check_text("a\0", None).is_err());
        assert!(check_name(&"n".repeat(63)).is_ok());
        assert!(check_name(&"n".repeat(64)).is_err());
    }
}
