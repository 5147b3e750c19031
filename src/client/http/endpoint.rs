//! Where a URL points: scheme, host and port, the port filled in from the
//! scheme. Shared by the URL check of the settings, name resolution and the
//! proxy choice.
//!
//! The authority is read strictly, so that a request never goes somewhere
//! other than the user wrote: the `http` crate's parser accepts
//! `host:5OOO`, `host:70000` or `[::1]junk` and leaves the port out, and a
//! caller filling in the scheme's port would then send the credentials to
//! port 80. Here a port that is written must be digits, 1..65535, a
//! host is letters, digits, `-`, `_` and `.` or a bracketed IPv6 address,
//! and a host that ends in a number must be a dotted-quad IPv4 address
//! (`getaddrinfo` reads `127.1`, `0x7f.1` and `010.0.0.1`, octal, as
//! addresses the user did not write).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ureq::http::Uri;

/// The server end of an `http://` or `https://` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint<'a> {
    /// `"http"` or `"https"`.
    pub scheme: &'static str,
    /// The host as written, without the brackets of an IPv6 address.
    pub host: &'a str,
    /// The port written in the URL, else the scheme's (80, 443).
    pub port: u16,
}

impl<'a> Endpoint<'a> {
    /// The endpoint of `uri`; `None` without a host, for another scheme, or
    /// for an authority [`split_authority`] refuses.
    pub fn of(uri: &'a Uri) -> Option<Endpoint<'a>> {
        let (scheme, default_port) = match uri.scheme_str()? {
            "http" => ("http", 80),
            "https" => ("https", 443),
            _ => return None,
        };
        let (host, port) = split_authority(uri.authority()?.as_str(), default_port).ok()?;
        Some(Endpoint { scheme, host, port })
    }

    /// The host when it is an address (`127.0.0.1`, `[::1]`), not a name.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// The host (IPv6 without brackets) and port of `host`, `host:port`,
/// `[v6]` or `[v6]:port`, the port `default_port` when none is written.
/// Anything else (user information included) is refused with the reason.
pub fn split_authority(authority: &str, default_port: u16) -> Result<(&str, u16), String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (address, after) = rest.split_once(']').ok_or_else(|| {
            format!("has an IPv6 address without its closing ']' in {authority:?}")
        })?;
        if address.parse::<Ipv6Addr>().is_err() {
            return Err(format!("has [{address}], which is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':').ok_or_else(|| {
                format!("has {after:?} after the IPv6 address where only :port may be")
            })?),
        };
        (address, port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        };
        check_host(host)?;
        (host, port)
    };
    let port = match port {
        None => default_port,
        Some(port) => parse_port(port)?,
    };
    Ok((host, port))
}

/// A written port: ASCII digits only (no sign, not empty), 1..65535.
fn parse_port(port: &str) -> Result<u16, String> {
    let bad = || format!("has port {port:?}: a port is a number in 1..65535");
    if port.is_empty() {
        return Err("has ':' without a port after it".to_owned());
    }
    if !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match port.trim_start_matches('0').parse::<u16>() {
        Ok(p) if p != 0 => Ok(p),
        _ => Err(bad()),
    }
}

/// A host name (letters, digits, `-`, `_`, `.`; at most 253 characters) or
/// a dotted-quad IPv4 address.
fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("has no host".to_owned());
    }
    if host.len() > 253
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(format!(
            "has host {host:?}: a host is a name of letters, digits, '-', '_' and '.', \
             an IPv4 address or a bracketed IPv6 address"
        ));
    }
    // A name's last label is never a number (RFC 3696 2.); getaddrinfo would
    // read such a host as an address in one of inet_aton's legacy forms.
    let last = host.trim_end_matches('.').rsplit('.').next().unwrap_or("");
    let numeric =
        last.bytes().all(|b| b.is_ascii_digit()) || last.to_ascii_lowercase().starts_with("0x");
    if numeric && host.trim_end_matches('.').parse::<Ipv4Addr>().is_err() {
        return Err(format!(
            "has host {host:?}, which is not an IPv4 address of four decimal numbers \
             0-255 without leading zeros"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(url: &str) -> Option<(&'static str, String, u16, Option<IpAddr>)> {
        let uri: Uri = url.parse().unwrap();
        Endpoint::of(&uri).map(|e| (e.scheme, e.host.to_owned(), e.port, e.ip()))
    }

    #[test]
    fn ports_come_from_the_url_or_the_scheme() {
        assert_eq!(
            endpoint("http://tf:5000/api/"),
            Some(("http", "tf".to_owned(), 5000, None))
        );
        assert_eq!(
            endpoint("https://10.1.2.3/api/"),
            Some(("https", "10.1.2.3".to_owned(), 443, "10.1.2.3".parse().ok()))
        );
        assert_eq!(
            endpoint("http://[::1]/"),
            Some(("http", "::1".to_owned(), 80, "::1".parse().ok()))
        );
        assert_eq!(
            endpoint("http://[::1]:65535/"),
            Some(("http", "::1".to_owned(), 65535, "::1".parse().ok()))
        );
        assert_eq!(endpoint("ftp://tf/"), None);
        assert_eq!(endpoint("/api/token"), None);
    }

    #[test]
    fn a_written_port_that_is_not_1_to_65535_is_refused_not_defaulted() {
        for url in [
            "http://127.0.0.1:5OOO/api/",
            "http://h:abc/",
            "http://h:70000/",
            "http://h:65536/",
            "http://h:99999/",
            "http://h:-1/",
            "http://h:/",
            "http://h:+80/",
            "http://h:0/",
            "http://h:0000/",
            "http://h:99999999999999999999/",
            "http://h:5000x/",
            "http://[::1]x/",
            "http://[::1]:/",
            "http://[::1]:99999/",
        ] {
            assert_eq!(endpoint(url), None, "{url}");
        }
        assert_eq!(endpoint("http://h:080/").map(|e| e.2), Some(80));
        assert_eq!(endpoint("http://h:000080/").map(|e| e.2), Some(80));
    }

    #[test]
    fn hosts_are_names_or_addresses_as_written() {
        for (authority, why) in [
            (":5000", "has no host"),
            ("127.1", "not an IPv4 address"),
            ("010.0.0.1", "not an IPv4 address"),
            ("0x7f.1", "not an IPv4 address"),
            ("2130706433", "not an IPv4 address"),
            ("5000", "not an IPv4 address"),
            ("host.256", "not an IPv4 address"),
            ("tf.0x1f", "not an IPv4 address"),
            ("h;x", "a host is a name"),
            ("h!$&'()*+,=", "a host is a name"),
            ("u@h", "a host is a name"),
            ("[fe80::1%25eth0]", "not an IPv6 address"),
            ("[v1.x]", "not an IPv6 address"),
            ("[::1", "closing"),
        ] {
            let err = split_authority(authority, 80).unwrap_err();
            assert!(err.contains(why), "{authority}: {err}");
        }
        for (authority, host, port) in [
            ("tf", "tf", 80),
            ("tf.cluster.:5000", "tf.cluster.", 5000),
            ("node_7-b", "node_7-b", 80),
            ("10.0.0.1", "10.0.0.1", 80),
            ("tf.x0", "tf.x0", 80),
            ("h2.example.org", "h2.example.org", 80),
        ] {
            assert_eq!(
                split_authority(authority, 80),
                Ok((host, port)),
                "{authority}"
            );
        }
    }
}
